"""Live progress of a run on any runner.

Beam's metrics are final only when a local run ends, so workers publish their own: each DoFn instance keeps
counters per stage and writes them, when they changed, at most once a second on a local disk (every 30 s on an
object store, where each write is a billed request) and at the end of every bundle, as one small JSON file under
the run's scratch folder (OUTPUT/_tmp/{run_id}/progress/). The launcher sums those files. They
are written with the run's storage options, so this works wherever the workers can write the output: the
default runner, multi_processing, the PortableRunner, or a Dask cluster. Progress is best effort: a failed
write is logged at debug level and never fails a track.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from stemforge.pipeline.storage import StorageOptions, filesystem, join, protocol_of, publish_bytes

LOG = logging.getLogger(__name__)
T = TypeVar("T")
FLUSH_SECONDS = {"file": 1.0}  # by protocol
REMOTE_FLUSH_SECONDS = 30.0  # 64 DoFn instances of a 16-vCPU worker: ~7,700 PUTs (~$0.04) an hour
# listed: inputs found; inputs_done: input URIs fully expanded (the total is known when all are);
# prepared: track variants decoded and windowed; separated: all their masks made; written: stems and rows
# out; rejected: error records; skipped: tracks an earlier run committed; ignored: listed files that are not audio.
STAGES = ("listed", "inputs_done", "skipped", "prepared", "separated", "written", "rejected", "ignored")


def progress_folder(scratch: str) -> str:
    """Where a run's workers publish their counters."""
    return join(scratch, "progress")


class ProgressWriter:
    """One DoFn instance's counters: tracks and audio seconds per stage, published throttled."""

    def __init__(self, folder: str | None, storage_options: StorageOptions) -> None:
        self._uri = join(folder, f"{uuid.uuid4().hex}.json") if folder else None
        self._options = storage_options
        self._every = FLUSH_SECONDS.get(protocol_of(folder), REMOTE_FLUSH_SECONDS) if folder else 0.0
        self._counts: dict[str, list[float]] = {}
        self._flushed = 0.0
        self._dirty = False

    def add(self, stage: str, tracks: int = 1, audio_seconds: float = 0.0) -> None:
        """Count tracks (and their audio) reaching a stage; publishes when the last write is old enough."""
        if self._uri is None:
            return
        entry = self._counts.setdefault(stage, [0, 0.0])
        entry[0] += tracks
        entry[1] += audio_seconds
        self._dirty = True
        if time.monotonic() - self._flushed >= self._every:
            self.flush()

    def flush(self) -> None:
        """Publish the counters now (atomically: readers see the old file or the new one)."""
        if self._uri is None or not self._dirty:
            return
        data = {stage: {"tracks": int(n), "audio_seconds": round(s, 3)} for stage, (n, s) in self._counts.items()}
        try:
            publish_bytes(json.dumps(data).encode(), self._uri, self._options)
        except Exception as exc:  # noqa: BLE001 - progress is best effort, the track's work is not at stake
            LOG.debug("progress not published: %s", exc)
        self._flushed = time.monotonic()
        self._dirty = False


def read_progress(folder: str, storage_options: StorageOptions) -> dict[str, dict[str, float]]:
    """The sum of every worker's published counters (empty before the first is written or after commit)."""
    totals = {stage: {"tracks": 0, "audio_seconds": 0.0} for stage in STAGES}
    try:
        fs, path = filesystem(folder, storage_options)
        fs.invalidate_cache()
        files = fs.glob(f"{path}/*.json")
    except (OSError, ValueError):
        return totals
    for name in files:
        try:
            data = json.loads(fs.cat_file(name))
        except (OSError, ValueError):
            continue  # removed by the commit in between, or unreadable: the next poll sees it
        for stage, value in data.items():
            if stage in totals:
                totals[stage]["tracks"] += int(value.get("tracks", 0))
                totals[stage]["audio_seconds"] += float(value.get("audio_seconds", 0.0))
    return totals


def timed(items: Iterable[T], seconds: list[float], clock: Callable[[], float] = time.perf_counter) -> Iterator[T]:
    """Yields ``items`` and adds to ``seconds[0]`` the time spent producing them, not the consumer's time
    between them (in a fused Beam stage, the work of the stages downstream)."""
    iterator = iter(items)
    while True:
        start = clock()
        try:
            item = next(iterator)
        except StopIteration:
            seconds[0] += clock() - start
            return
        seconds[0] += clock() - start
        yield item
