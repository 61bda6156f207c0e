"""`stemforge report`: one self-contained HTML page (inline PNGs and audio, no scripts, no links out, so it can
be mailed or archived) of one committed run or of every run of an output root: per run its summary and
redacted config, rejected inputs, spectrograms, stem waveforms and audio clips (:mod:`pipeline.report_audio`)
of a few tracks, the augmentation draws against their configured ranges, its shards, and audio length against
processing time. This module renders; what it shows is read by :mod:`pipeline.report_reading`. Every text shown
is scrubbed of secrets (:func:`transforms.redaction.scrub`) and HTML-escaped."""

from __future__ import annotations

import datetime as dt
import html
from collections import Counter
from typing import Any

import numpy as np
import yaml

from stemforge.pipeline import report_audio, report_plots as plots
from stemforge.config.run import Config
from stemforge.pipeline.report_reading import ReportError, RunReader, ShardIndex
from stemforge.pipeline.engine.rows import tensor_columns
from stemforge.pipeline.engine.layout import recorded_layout
from stemforge.pipeline.storage import StorageOptions, join, publish_bytes, redact_uri, scrub
from stemforge.text import count, duration, wall_seconds
from stemforge.shards import RunManifest
from stemforge.transforms import AugmentChain

__all__ = ["ReportError", "build_report", "write_report"]

MAX_TABLE_ROWS = 500  # rows of the error and shard tables; the files themselves hold the rest
CSS = """
body{margin:0;background:#f4f5f7;color:#1d2330;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header{background:#1d2330;color:#fff;padding:18px 32px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#b8c0cc;font-size:13px}main{max-width:1000px;margin:0 auto;padding:8px 24px 48px}
section{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:4px 24px 18px;margin:20px 0}
h2{font-size:19px;border-bottom:2px solid #1f5fa8;padding-bottom:6px}h3{font-size:15px;margin:24px 0 8px;color:#1f5fa8}
h4{font-size:13px;margin:18px 0 4px}table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #dde1e7;padding:4px 9px;text-align:left;vertical-align:top}th{background:#eef1f5}
tr:nth-child(even) td{background:#f9fafb}td.num{text-align:right;font-variant-numeric:tabular-nums}
table.kv th{width:150px}td.long{overflow-wrap:anywhere;min-width:160px}pre{font:12px/1.4 ui-monospace,Menlo,monospace}
pre{background:#f4f5f7;padding:10px;border-radius:6px;overflow:auto;max-height:480px}figure{margin:10px 0}
figure img{max-width:100%;height:auto;display:block}figcaption{color:#5b6472;font-size:12px;margin-top:4px}
.note{color:#5b6472;font-style:italic}summary{cursor:pointer;color:#1f5fa8;margin:6px 0}
.warn{background:#fdecea;border:1px solid #f5c2bd;color:#8a1c12;padding:8px 12px;border-radius:6px}
"""


class _Html(str):
    """Markup that goes into the page as it is (every other value is scrubbed and escaped)."""




def _speed(audio: float, seconds: float | None) -> str:
    return f"{audio / seconds:,.1f}× real time" if seconds else "n/a"


class _Page:
    """One page being written from what ``read`` (the output root's reader) finds; every text scrubbed of the
    storage option values that reach the root, and escaped."""

    def __init__(self, output_uri: str, storage_options: StorageOptions | None, samples: int) -> None:
        self.read, self.samples = RunReader(output_uri, storage_options), samples

    def esc(self, value: Any) -> str:
        """A value as page text: scrubbed of secrets and HTML-escaped (markup passes as it is)."""
        return value if isinstance(value, _Html) else html.escape(scrub(str(value), self.read.options))

    def table(self, head: list[str] | None, rows: list[list[Any]]) -> str:
        """A table (numbers right-aligned); without a head, a key/value table whose first column is the keys."""
        def cell(tag: str, value: Any) -> str:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return f'<{tag} class="num">{value:,}</{tag}>'
            long = ' class="long"' if len(str(value)) > 40 else ""  # paths, messages: may break anywhere
            return f"<{tag}{long}>{self.esc(value)}</{tag}>"
        if head is None:
            body = "".join(f"<tr>{cell('th', k)}{cell('td', v)}</tr>" for k, v in rows)
            return f'<table class="kv">{body}</table>'
        body = "".join(f"<tr>{''.join(cell('td', v) for v in row)}</tr>" for row in rows)
        return f'<table><tr>{"".join(cell("th", h) for h in head)}</tr>{body}</table>'

    def figure(self, uri: str, alt: str, *caption: str) -> str:
        """An inline picture with its alt text and a caption (several lines become a list)."""
        items = "".join(f"<li>{self.esc(c)}</li>" for c in caption)
        text = self.esc(caption[0]) if len(caption) == 1 else f"<ul>{items}</ul>"
        return f'<figure><img src="{uri}" alt="{self.esc(alt)}"><figcaption>{text}</figcaption></figure>'

    def note(self, text: str) -> str:
        return f'<p class="note">{self.esc(text)}</p>'

    def overview(self, runs: list[dict[str, Any]]) -> str:
        rows = []
        for m in (run.raw for run in runs):
            counts, wall = m.get("counts", {}), wall_seconds(m)
            audio = counts.get("audio_seconds", 0)
            link = _Html(f'<a href="#run-{self.esc(m["run_id"])}">{self.esc(m["run_id"])}</a>')
            rows.append([link, m.get("started_at", ""), counts.get("succeeded", 0), counts.get("failed", 0),
                         counts.get("rows", 0), round(audio / 3600, 3), duration(wall), _speed(audio, wall),
                         len(m.get("shards", []))])
        head = ["run", "started (UTC)", "tracks", "failed", "rows", "audio (h)", "wall time", "speed", "shards"]
        return f"<section><h2>Runs</h2>{self.table(head, rows)}</section>"

    def run(self, committed: RunManifest) -> str:
        manifest, detail = committed.raw, committed.detail()
        run_id, config, shards = committed.run_id, self.read.config(manifest), self.read.shards(manifest)
        parts = {"Summary": self.summary(manifest, committed.clip_counts()), "Errors": self.errors(run_id),
                 "Spectrograms and stems": self.pictures(detail.tracks, config, shards),
                 "Augmentation": self.augmentation(config, shards), "Shards": self.shard_table(shards),
                 "Timing": self.timing(detail.timing)}
        body = "".join(f"<h3>{title}</h3>{part}" for title, part in parts.items())
        return f'<section id="run-{self.esc(run_id)}"><h2>Run {self.esc(run_id)}</h2>{body}</section>'

    def summary(self, m: dict[str, Any], clipping: tuple[Any, int, int]) -> str:
        counts, wall, checkpoint = m.get("counts", {}), wall_seconds(m), m.get("checkpoint") or {}
        audio, versions = counts.get("audio_seconds", 0), m.get("versions") or {}
        keys = ["inputs", "succeeded", "failed", "skipped", "variants", "rows"]
        numbers = self.table([*keys[:4], "track variants", "rows"], [[counts.get(k, 0) for k in keys]])
        clip = f"{clipping[0]}: {clipping[1]} track variants rescaled, {clipping[2]} clamped"
        facts = [("status", m.get("status")), ("started", m.get("started_at")), ("finished", m.get("finished_at")),
                 ("wall time", duration(wall)), ("audio", f"{audio / 3600:.4f} h ({audio:,.1f} s)"),
                 ("speed", _speed(audio, wall)), ("fingerprint", m.get("fingerprint")),
                 ("checkpoint", checkpoint.get("uri")), ("checkpoint sha256", checkpoint.get("sha256")),
                 ("clipping", clip), ("versions", " · ".join(f"{k} {v}" for k, v in sorted(versions.items())))]
        warn = ('<p class="warn">Random weights (model.allow_random_init): the stems are not a real separation.</p>'
                if m.get("random_init") else "")
        config = self.esc(yaml.safe_dump(m.get("config") or {}, sort_keys=False))
        return (f"{warn}{numbers}{self.table(None, facts)}"
                f"<details><summary>config (storage option values redacted)</summary><pre>{config}</pre></details>")

    def errors(self, run_id: str) -> str:
        records = self.read.error_records(run_id)
        if records is None:
            return self.note("No input was rejected.")
        by_reason = Counter((r.get("stage", ""), r.get("error", "")) for r in records)
        summary = self.table(["stage", "reason", "records"], [[*k, n] for k, n in by_reason.most_common()])
        rows = [[r.get(k, "") for k in ("source", "track_key", "stage", "error", "message")] for r in records]
        full = self.table(["source", "track key", "stage", "reason", "message"], rows[:MAX_TABLE_ROWS])
        shown = f"; the first {MAX_TABLE_ROWS} below, all in errors/{run_id}.jsonl" * (len(rows) > MAX_TABLE_ROWS)
        sources = len({r.get("source") for r in records})
        counted = (f"{count(len(records), 'error record', grouped=True)} from "
                   f"{count(sources, 'rejected input', grouped=True)}")
        return f"<p>{counted}{self.esc(shown)}.</p>{summary}{full}"

    def pictures(self, tracks: list[str], config: Config | str, shards: ShardIndex) -> str:
        if isinstance(config, str):
            return self.note(config)
        tracks = sorted(tracks)
        if not tracks or not self.samples:
            return self.note("No track to show." if not tracks else "No samples were asked for.")
        picks = np.linspace(0, len(tracks) - 1, min(self.samples, len(tracks))).round().astype(int)
        parts = [self.note(f"{len(picks)} of {count(len(tracks), 'track')} (evenly spaced by key), variant 0.")]
        for key in (tracks[i] for i in picks):
            parts += [f"<h4>{self.esc(key)}</h4>", self.spectrogram(config, shards, key, 0),
                      self.waveform(config, key, 0)]
        return "".join(parts)

    def spectrogram(self, config: Config, shards: ShardIndex, key: str, variant: int) -> str:
        """Mixture and stems of one track variant from its rows, channel mean, on one dB scale."""
        places = shards.places.get((key, variant))
        if not places:
            why = "" if config.output.write_spectrograms else " (output.write_spectrograms is false)"
            return self.note(f"No spectrogram rows for this track in the run's shards{why}.")
        names, segments = tensor_columns(config), self.read.spectrogram_segments(config, shards, key, variant)
        pooled = {n: plots.pool_frames(np.concatenate([s[1][n] for s in segments], axis=1)) for n in names}
        step, rows = pooled[names[0]][1], recorded_layout(shards.metadata, config.model)
        picture, vmin, vmax = plots.spectrograms({n: m for n, (m, _) in pooled.items()},
                                                 step * config.model.hop_length / config.audio.sample_rate,
                                                 rows.bin_hz(config.audio.sample_rate))
        frames = sum(s[1][names[0]].shape[1] for s in segments)
        return self.figure(picture, f"Spectrograms of {key}, variant {variant}: {', '.join(names)}",
                           f"Magnitude, mean of both channels, {frames} frames; one colour scale for all panels: "
                           f"{vmin:.1f} to {vmax:.1f} dB.")

    def waveform(self, config: Config, key: str, variant: int) -> str:
        stems = self.read.stem_audio(config, key, variant)
        if stems.missing:
            why = " (output.write_stems is false)" if not config.output.write_stems else ""
            return self.note(f"Stem files not found{why}: {', '.join(stems.missing)}")
        figure = self.figure(plots.waveforms(stems.envelopes, stems.steps),
                             f"Waveforms of the stems of {key}, variant {variant}",
                             f"Stem files ({', '.join(stems.envelopes)}): minimum and maximum of both channels.")
        return figure + report_audio.clips(stems.clips)

    def augmentation(self, config: Config | str, shards: ShardIndex) -> str:
        if isinstance(config, str):
            return self.note(config)
        chain = AugmentChain.from_config(list(config.augment.chain)).transforms
        if not chain:
            return self.note("No augmentation configured.")
        if not shards.params:
            return self.note("No recorded values: this run wrote no spectrogram rows.")
        picture, lines = plots.augmentation(chain, list(shards.params.values()))
        return self.figure(picture, "Histograms of the drawn augmentation parameters", *lines)

    def shard_table(self, shards: ShardIndex) -> str:
        if not shards.files:
            return self.note("This run wrote no shards.")
        rows = [f[1] for f in shards.files if f[1] is not None]
        size = sum(f[3] for f in shards.files if f[3] is not None)
        text = (f"{count(len(shards.files), 'shard', grouped=True)}, {count(size, 'byte', grouped=True)} "
                f"({size / 2**20:,.1f} MiB), {count(sum(rows), 'row', grouped=True)}; "
                f"rows per shard: min {min(rows, default=0):,}, median {int(np.median(rows)) if rows else 0:,}, "
                f"max {max(rows, default=0):,}.")
        listed = [[p, *("—" if v is None else v for v in f), e] for p, *f, e in shards.files[:MAX_TABLE_ROWS]]
        table = self.table(["shard", "rows", "row groups", "bytes", "problem"], listed)
        return f"<p>{self.esc(text)}</p>{table}"

    def timing(self, records: list[dict[str, Any]] | None) -> str:
        if records is None:
            return self.note("This run's manifest has no per-track timing (an older stemforge wrote it).")
        if not records:
            return self.note("No track variant was processed in this run.")
        audio, prepare, assemble = ([float(r[k]) for r in records]
                                    for k in ("audio_seconds", "prepare_seconds", "assemble_seconds"))
        work = sum(prepare) + sum(assemble)
        return self.figure(plots.timing(audio, prepare, assemble), "Processing time against audio length",
                           f"{count(len(records), 'track variant', grouped=True)}, {sum(audio):,.1f} s of audio, "
                           f"{work:,.1f} s of prepare and "
                           f"assemble in the workers ({_speed(sum(audio), work)}); model inference is batched across "
                           "tracks, so it is not counted per track.")


def build_report(output_uri: str, run_id: str | None = None, samples: int = 3,
                 storage_options: dict | None = None) -> str:
    """The HTML page of one committed run (``run_id``) or of every run under ``output_uri``, newest first."""
    if samples < 0:
        raise ReportError(f"samples: must be 0 or more, got {samples}")
    report = _Page(output_uri, storage_options, samples)
    runs = report.read.manifests()
    if run_id is not None:
        ids = [m.run_id for m in runs]
        runs = [m for m in runs if m.run_id == run_id]
        if not runs:
            raise ReportError(f"{report.read.shown}: no committed run {run_id!r}; committed runs: {', '.join(ids)}")
    body = ([] if run_id else [report.overview(runs)]) + [report.run(m) for m in runs]
    title = f"stemforge report: {run_id}" if run_id else "stemforge report"
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = f"{report.read.shown} · {count(len(runs), 'committed run', grouped=True)} · generated {generated}"
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{report.esc(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
            f"<body><header><h1>{report.esc(title)}</h1><p>{report.esc(subtitle)}</p></header>"
            f"<main>{''.join(body)}</main></body></html>\n")


def write_report(output_uri: str, destination: str | None = None, run_id: str | None = None, samples: int = 3,
                 storage_options: dict | None = None) -> str:
    """Write the report to ``destination`` (default OUTPUT/report.html), atomically; returns where (redacted)."""
    text = build_report(output_uri, run_id, samples, storage_options)
    target = destination or join(output_uri, "report.html")
    publish_bytes(text.encode("utf-8"), target, storage_options or {})
    return redact_uri(target)
