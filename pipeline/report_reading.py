"""What `stemforge report` reads from an output root, and nothing about how it is shown (``pipeline.report``
renders the page): the committed run manifests, a run's config and error records, its shards' scalar columns,
one track's spectrogram rows and its stem files. Shards are read by column and row group: spectrogram columns
only of the groups that hold a sampled track."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import soundfile as sf

from stemforge.pipeline import report_audio, report_plots as plots
from stemforge.config.run import Config, ConfigError, build_config
from stemforge.pipeline.engine.rows import audio_stems, tensor_columns
from stemforge.pipeline.storage import PathEscape, StorageOptions, filesystem, join, options_for, redact_uri
from stemforge.text import count
from stemforge.shards import RunManifest, committed_runs, reading, tensor_to_numpy

SCALARS = ["track_key", "variant", *plots.PARAMETERS]


class ReportError(ValueError):
    """An output root, run or argument the report cannot describe, with the reason in one line."""


@dataclass
class ShardIndex:
    """A run's shards from their scalar columns: per shard (path, rows, row groups, bytes, problem); per
    track variant its recorded augmentation draws (``plots.PARAMETERS``) and the row groups, by shard, that
    hold its rows; the schema metadata of the shards (a run's shards share it)."""

    files: list[tuple[str, int | None, int | None, int | None, str]] = field(default_factory=list)
    params: dict[tuple[str, int], tuple[float | None, ...]] = field(default_factory=dict)
    places: dict[tuple[str, int], dict[str, list[int]]] = field(default_factory=dict)
    metadata: dict[bytes, bytes] = field(default_factory=dict)


@dataclass
class StemAudio:
    """A track variant's stem files: per stem its min/max envelope (and frames per point) and an audio clip;
    the (redacted) URIs of the stems not found."""

    envelopes: dict[str, np.ndarray] = field(default_factory=dict)
    steps: dict[str, int] = field(default_factory=dict)
    clips: dict[str, np.ndarray] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


class RunReader:
    """Reads one output root: its filesystem, the storage options to reach it, its name as shown (redacted)."""

    def __init__(self, output_uri: str, storage_options: StorageOptions | None) -> None:
        self.uri, self.options = output_uri, storage_options or {}
        self.fs, root = filesystem(output_uri, self.options)
        self.root, self.shown = root.rstrip("/"), redact_uri(output_uri).rstrip("/")

    def manifests(self) -> list[RunManifest]:
        """The committed runs (``shards.committed_runs``), newest first."""
        runs = committed_runs(self.uri, options_for(self.uri, self.options))
        if not runs:
            paths = self.fs.glob(f"{self.root}/runs/*.json")
            if not paths:
                raise ReportError(f"{self.shown}: not a stemforge output root (no runs/*.json)")
            raise ReportError(f"{self.shown}: no committed run in runs/ "
                              f"({count(len(paths), 'manifest')}, none committed)")
        return runs[::-1]

    def config(self, manifest: dict[str, Any]) -> Config | str:
        """The run's config, with its output at this root (where the report finds it); or why not."""
        data = json.loads(json.dumps(manifest.get("config") or {}))
        data.setdefault("output", {})["uri"] = self.uri
        try:
            return build_config(data)
        except ConfigError as exc:
            return f"this run's config cannot be read by this stemforge version ({exc})"

    def error_records(self, run_id: str) -> list[dict[str, Any]] | None:
        """The run's error records; None when it wrote no error file (no input was rejected)."""
        try:
            text = self.fs.cat_file(f"{self.root}/errors/{run_id}.jsonl").decode("utf-8", "replace")
        except FileNotFoundError:
            return None
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def shards(self, manifest: dict[str, Any]) -> ShardIndex:
        """The scalar columns of every shard the manifest lists; a shard that cannot be read is a problem
        in its row, not a failure of the report."""
        out = ShardIndex()
        for relative in manifest.get("shards", []):
            try:
                path = join(self.root, relative)
                with reading(self.fs, path) as (parquet, threads):
                    for group in range(parquet.metadata.num_row_groups):
                        table = parquet.read_row_group(group, columns=SCALARS, use_threads=threads)
                        unique = table.group_by(SCALARS[:2]).aggregate([(c, "min") for c in SCALARS[2:]])
                        columns = [unique.column(c).to_pylist() for c in SCALARS[:2]]
                        columns += [unique.column(f"{c}_min").to_pylist() for c in SCALARS[2:]]
                        for key, variant, *values in zip(*columns):
                            out.params[(key, variant)] = tuple(values)
                            out.places.setdefault((key, variant), {}).setdefault(relative, []).append(group)
                    meta = parquet.metadata
                    out.metadata = parquet.schema_arrow.metadata or {}
                out.files.append((relative, meta.num_rows, meta.num_row_groups, self.fs.size(path), ""))
            except PathEscape as exc:  # an edited manifest: never read outside the output folder
                out.files.append((relative, None, None, None, f"not read: {exc}"))
            except (OSError, pa.ArrowInvalid) as exc:  # FileNotFoundError included
                problem = "missing" if isinstance(exc, FileNotFoundError) else f"unreadable: {str(exc).splitlines()[0]}"
                out.files.append((relative, None, None, None, problem))
        return out

    def spectrogram_segments(self, config: Config, shards: ShardIndex, key: str,
                             variant: int) -> list[tuple[int, dict[str, np.ndarray]]]:
        """One track variant's rows in segment order: per segment, each tensor column's frames (padding cut
        off), mean of both channels."""
        names, segments = tensor_columns(config), []
        for relative, groups in shards.places.get((key, variant), {}).items():
            with reading(self.fs, f"{self.root}/{relative}") as (parquet, threads):
                for group in groups:
                    table = parquet.read_row_group(group, columns=[*SCALARS[:2], "segment", "num_frames", *names],
                                                   use_threads=threads)
                    table = table.filter(pc.and_(pc.equal(table["track_key"], key),
                                                 pc.equal(table["variant"], variant)))
                    arrays = {n: tensor_to_numpy(table[n]) for n in names}
                    for i, (segment, end) in enumerate(zip(table["segment"].to_pylist(),
                                                           table["num_frames"].to_pylist())):
                        segments.append((segment, {n: a[i, ..., :end].mean(axis=0, dtype=np.float32)
                                                   for n, a in arrays.items()}))
        return sorted(segments, key=lambda s: s[0])

    def stem_audio(self, config: Config, key: str, variant: int) -> StemAudio:
        """The envelopes and clips of one track variant's stem files."""
        out = StemAudio()
        for stem in audio_stems(config):
            uri = config.output.stem_uri(key, variant, stem)
            fs, path = filesystem(uri, self.options)
            try:
                with fs.open(path, "rb") as handle, sf.SoundFile(handle) as sound:
                    out.envelopes[stem], out.steps[stem] = plots.envelope(sound)
                    out.clips[stem] = report_audio.read_clip(sound)
            except FileNotFoundError:
                out.missing.append(redact_uri(uri))
        return out
