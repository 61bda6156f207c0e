"""The last step of a run: the error log, the key index (runs/{run_id}.keys.parquet) and the per-track detail
(runs/{run_id}.tracks.parquet, ``shards.manifest``), then the run manifest (written last: the commit), then the
run's scratch folder removed. A manifest never lists a shard that is not
there, a run that listed nothing (no input matched) writes nothing, and a run that lost its lease
(``pipeline.lease``) writes nothing."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

from stemforge.pipeline.engine.job import Job
from stemforge.pipeline.lease import check_held
from stemforge.pipeline.sinks import ErrorRecord, TrackDone, versions, write_errors, write_manifest
from stemforge.pipeline.storage import filesystem, join, publish_bytes, retrying
from stemforge.text import count
from stemforge.shards.key_index import key_index_bytes, key_index_name
from stemforge.shards.manifest import detail_bytes, detail_name


def commit(_: Any, job: Job, sources: list[dict[str, Any]], skipped: list[int], shards: list[str],
           done: list[TrackDone], errors: list[ErrorRecord], timing: list[tuple[str, int, float]],
           ignored: list[tuple[str, int]] = ()) -> str:
    """Writes the error log, then the run manifest (last), then drops the run's scratch folder; returns the
    manifest's URI. ``sources``: the ``pipeline.keys.source_record`` of every source the run processed;
    ``skipped``: counts of the sources it skipped as committed (one per decided batch);
    ``ignored``: (extension, count) of the files directory listings skipped as not audio.

    When nothing was listed (every input failed to list as a whole, or matched nothing) it writes nothing
    and returns "": the launcher says no input matched."""
    config = job.config
    if not sources and not sum(skipped) and all(e.track_key == "" for e in errors):
        remove_scratch(job)
        return ""
    missing = missing_shards(job, shards)
    if missing:  # never commit a manifest that lists a shard that is not there
        raise RuntimeError(f"run {job.run_id} not committed: {count(len(missing), 'shard')} "
                           f"{'is' if len(missing) == 1 else 'are'} missing, e.g. {missing[0]}")
    fence(job)
    write_errors(errors, config, job.run_id, config.storage_options, staging=job.staging)
    variants = config.augment.variants
    per_track: dict[str, int] = {}
    for item in done:
        per_track[item.track_key] = per_track.get(item.track_key, 0) + 1
    failed = {e.source for e in errors}
    skipped_files: Counter[str] = Counter()  # per extension, over every input URI
    for extension, number in ignored:
        skipped_files[extension] += number
    succeeded = sorted(k for k, n in per_track.items() if n == variants)
    committed = set(succeeded)
    rows = detail_rows(done, timing, committed)
    manifest = {
        "run_id": job.run_id,
        "started_at": job.started_at,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "status": "committed",
        "fingerprint": job.fingerprint,
        "random_init": job.random_init,
        "config": config.redacted(),
        "checkpoint": {"uri": config.redacted()["model"]["checkpoint"], "sha256": job.checkpoint_sha256},
        "versions": versions(),
        "counts": {
            "inputs": len(sources),
            "skipped": sum(skipped),
            "succeeded": len(succeeded),
            "failed": len(failed),
            "errors": len(errors),
            "variants": len(done),
            "rows": sum(d.rows for d in done),
            "audio_seconds": round(sum(d.audio_seconds for d in done), 3),
            "ignored": sum(skipped_files.values()),
            "rescaled": sum(1 for r in rows if r["gain"] is not None and r["gain"] != 1.0),
            "clamped": sum(1 for r in rows if r["clamped"]),
        },
        "ignored": dict(sorted(skipped_files.items())),
        "clipping": {"mode": config.output.clip},  # which variants it rescaled or clamped: in the detail
        "keys": key_index_name(job.run_id),  # both written before this manifest (shards.key_index, .manifest)
        "detail": detail_name(job.run_id),
        "shards": sorted(shards),
    }
    held = (s for s in sources if s["track_key"] in committed)
    keys = key_index_bytes(held, job.run_id, job.started_at, job.fingerprint)
    publish_bytes(keys, join(config.output.uri, "runs", manifest["keys"]), config.storage_options, job.staging)
    publish_bytes(detail_bytes(rows), join(config.output.uri, "runs", manifest["detail"]), config.storage_options,
                  job.staging)
    fence(job)
    uri = write_manifest(manifest, config, config.storage_options, staging=job.staging)
    remove_orphans(job, shards)
    remove_scratch(job)
    return uri


def remove_orphans(job: Job, shards: list[str]) -> None:
    """Removes the files of the run's shard folder that its manifest does not list (failed bundle attempts),
    so that no later launch has to list a committed run's shards to find them."""
    options = job.config.storage_options
    fs, root = filesystem(job.config.output.uri, options)
    folder, listed = f"{root}/spectrograms/{job.run_id}", {f"{root}/{shard}" for shard in shards}
    for path in retrying(lambda: fs.find(folder), f"list {folder}", options):
        if path not in listed:
            retrying(lambda p=path: fs.rm(p), f"remove {path}", options)


def fence(job: Job) -> None:
    """LeaseLost when the run no longer holds its leases (it stalled and another run took them over): asked
    immediately before each write of the commit, so such a run writes neither an error log nor a manifest."""
    if job.lease_token is not None:
        check_held(job.config, job.run_id, job.lease_token)


def remove_scratch(job: Job) -> None:
    """Drops the run's scratch folder, and OUTPUT/_tmp when no other run's is left in it."""
    fs, scratch = filesystem(job.scratch, job.config.storage_options)
    if fs.exists(scratch):
        fs.rm(scratch, recursive=True)
    parent = scratch.rsplit("/", 1)[0]
    if fs.isdir(parent) and not fs.ls(parent):
        fs.rmdir(parent)


def missing_shards(job: Job, shards: list[str]) -> list[str]:
    """The listed shards that are not under the output root, from one listing of the run's shard folders."""
    if not shards:
        return []
    options = job.config.storage_options
    fs, root = filesystem(job.config.output.uri, options)
    fs.invalidate_cache()
    present: set[str] = set()
    for folder in sorted({s.rsplit("/", 1)[0] for s in shards}):
        if retrying(lambda f=folder: fs.exists(f"{root}/{f}"), f"check {folder}", options):
            found = retrying(lambda f=folder: fs.find(f"{root}/{f}"), f"list {folder}", options)
            present.update(p[len(root.rstrip("/")) + 1:] for p in found)
    return [s for s in sorted(shards) if s not in present]


def detail_rows(done: list[TrackDone], prepared: list[tuple[str, int, float]],
                committed: set[str]) -> list[dict[str, Any]]:
    """Per assembled track variant (``shards.manifest.DETAIL``): whether its track committed, its audio length
    and the worker seconds spent preparing and assembling it (the model's time is shared by the batches of
    many tracks, so it is not per track), which decoder read its source and whether the length was declared
    by the file or counted by decoding it, and what ``output.clip`` did to its stems."""
    prepare = {(key, variant): seconds for key, variant, seconds in prepared}
    return [{"track_key": d.track_key, "variant": d.variant, "committed": d.track_key in committed,
             "audio_seconds": round(d.audio_seconds, 3),
             "prepare_seconds": round(prepare.get((d.track_key, d.variant), 0.0), 4), "assemble_seconds": d.seconds,
             "decoded": d.decoded, "gain": d.stem_gain,
             "clamped": json.dumps(d.clipped, sort_keys=True) if d.clipped else None}
            for d in done]
