"""The lease on an output root: one run at a time writes under it, so runs that overlap (a slow scheduled
run still going when the next slot fires, a rerun by hand) never commit the same tracks twice, never delete
each other's scratch and never replace each other's manifest.

The launcher takes the lease (``OUT/_lease.json``) after its refusal checks and before any work, with an
atomic create: ``O_EXCL`` through a hard link locally, a conditional PUT on S3 (``If-None-Match: *``) and
GCS (``ifGenerationMatch=0``), both through fsspec's ``pipe_file(mode="create")``. The
lease names the run (id, host, pid, start) and a heartbeat time that a daemon thread refreshes every
``run.lease_heartbeat_seconds``. It is released when the run commits or fails, also when a signal stops it.
A second run finds the lease held and exits 2 naming the live run, or waits for it (``run.on_lease``).

A run that writes stems into another folder than its output root (``output.stems_uri``, or the default
``OUTPUT/stems``) leases that folder too, with the same token, so two runs with different outputs never
write the same stem files at once; leases are taken in one order (sorted by URI), so two waiting runs never
wait for each other. The commit is fenced: immediately before the error log and again before the manifest
are written, the commit step checks that every lease still carries its run's token (:func:`check_held`),
so a run that stalled past the heartbeat timeout and lost its lease to another run fails instead of
committing.

A lease whose holder died is taken over, and the takeover logged: on the same host as soon as its process
is gone, from another host once its heartbeat is ``TIMEOUT_HEARTBEATS`` beats old. Only then is the dead
run's scratch (``OUT/_tmp/<its run id>``) removed. Contenders for one dead lease race for a marker file
named after it (an atomic create again), so only one of them replaces it; a marker older than the lease's
timeout is a contender's that died mid-takeover, and is removed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import fsspec

from stemforge.config.run import RUN_ID_PATTERN, Config, ConfigError
from stemforge.pipeline.interrupts import at_exit_now
from stemforge.pipeline.scratch import is_alive, process_start
from stemforge.pipeline.storage import filesystem, is_local, join, modified_time, redact_uri, retrying

LOG = logging.getLogger("stemforge")
LEASE = "_lease.json"
TIMEOUT_HEARTBEATS = 5  # a lease is dead once its heartbeat is this many beats old
# object stores whose pipe_file(mode="create") is a conditional create: s3fs (If-None-Match: *), gcsfs
# (ifGenerationMatch=0); both raise FileExistsError when the object is there
CREATE_PROTOCOLS = ("s3", "s3a", "gs", "gcs")

_held: list[Lease] = []


class LeaseHeld(ConfigError):
    """The output root is leased by a live run (a fatal refusal: exit 2, before any work); ``holder`` is
    that run's lease record."""

    def __init__(self, message: str, holder: dict[str, Any]) -> None:
        super().__init__(message)
        self.holder = holder


class LeaseLost(RuntimeError):
    """A run's lease was taken over by another run while it stalled: it must not commit (exit 1)."""


def lease_roots(config: Config) -> list[tuple[str, str]]:
    """(config key, URI) of every folder a run leases, in the one order every run takes them: its output
    root, and its stems root when stems are written elsewhere than the output root itself."""
    roots = {"output.uri": config.output.uri}
    stems = config.output.stems_root if config.output.write_stems else None
    if stems and stems.rstrip("/") != config.output.uri.rstrip("/"):
        roots["output.stems_uri"] = stems
    return sorted(roots.items(), key=lambda item: item[1])


def _protocol(fs: fsspec.AbstractFileSystem) -> str:
    protocol = fs.protocol
    return protocol if isinstance(protocol, str) else protocol[0]


def _partial(path: str, data: bytes) -> str:
    """A local file beside ``path`` holding ``data``, to be linked or renamed into place."""
    partial = f"{path}.{uuid.uuid4().hex}.partial"
    with open(partial, "wb") as handle:
        handle.write(data)
    return partial


def create(fs: fsspec.AbstractFileSystem, path: str, data: bytes, key: str = "output.uri") -> bool:
    """Write ``data`` at ``path`` only if nothing is there, atomically; False if something was. Locally the
    file is written whole under another name, then hard-linked (which fails if the name exists). A filesystem
    without an atomic create is a ConfigError naming config ``key``, the folder being leased."""
    if is_local(fs):
        partial = _partial(path, data)
        try:
            os.link(partial, path)
        except FileExistsError:
            return False
        finally:
            os.unlink(partial)
        return True
    if _protocol(fs) in CREATE_PROTOCOLS:
        try:
            fs.pipe_file(path, data, mode="create")
        except FileExistsError:
            return False
        return True
    raise ConfigError(f"{key}: the {_protocol(fs)}:// filesystem has no atomic create, so stemforge cannot "
                      "lease the output root against overlapping runs; write to a local folder, s3:// or gs://")


def _rewrite(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    """Replace the file at ``path`` whole, so that a reader (the commit's fence) never sees it half written:
    locally through a rename, on an object store with one PUT."""
    if is_local(fs):
        os.replace(_partial(path, data), path)
    else:
        fs.pipe_file(path, data)


def describe_holder(record: dict[str, Any], now: float) -> str:
    """The live run that holds a lease, in words (run id, host, pid, age, heartbeat)."""
    started, beat = now - float(record.get("started", now)), now - float(record.get("heartbeat", now))
    return (f"run {record.get('run_id')} (host {record.get('host')}, pid {record.get('pid')}, started "
            f"{started:.0f} s ago, heartbeat {beat:.0f} s ago)")


def is_dead(record: dict[str, Any], now: float, heartbeat_seconds: float) -> bool:
    """Whether a lease's holder died: its process is gone (same host), or its heartbeat is older than
    TIMEOUT_HEARTBEATS of the holder's own beats (recorded in the lease; ``heartbeat_seconds`` for a lease
    written before they were)."""
    if record.get("host") == socket.gethostname() and isinstance(record.get("pid"), int):
        start = record.get("process_start")
        if not is_alive(record["pid"], start if isinstance(start, int) else None):
            return True
    return now - float(record.get("heartbeat", 0)) > _timeout(record, heartbeat_seconds)


def _timeout(record: dict[str, Any], heartbeat_seconds: float) -> float:
    """How long a lease's heartbeat may be silent: TIMEOUT_HEARTBEATS of its holder's beats."""
    beat = record.get("heartbeat_seconds")
    return TIMEOUT_HEARTBEATS * (float(beat) if isinstance(beat, int | float) and beat > 0 else heartbeat_seconds)


class Lease:
    """A lease this process holds on an output root, kept alive by a heartbeat thread until released."""

    def __init__(self, fs: fsspec.AbstractFileSystem, path: str, record: dict[str, Any], heartbeat: float) -> None:
        self.fs, self.path, self.record, self.heartbeat = fs, path, record, heartbeat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="stemforge-lease", daemon=True)

    def _read(self) -> dict[str, Any] | None:
        with contextlib.suppress(FileNotFoundError, ValueError):
            return json.loads(self.fs.cat_file(self.path))
        return None

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            current = self._read()
            if current is None or current.get("token") != self.record["token"]:
                LOG.error("lost the lease on %s: another run took it over", redact_uri(self.path))
                return
            self.record["heartbeat"] = time.time()
            try:
                _rewrite(self.fs, self.path, json.dumps(self.record).encode())
            except OSError as exc:  # a missed beat; the next one retries
                LOG.warning("lease heartbeat on %s failed: %s", redact_uri(self.path), exc)

    def release(self) -> None:
        """Stop the heartbeat and remove the lease if it is still this run's."""
        self._stop.set()
        if self in _held:
            _held.remove(self)
        current = self._read()
        if current is not None and current.get("token") == self.record["token"]:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self.path)


def release_held() -> None:
    """Release every lease this process holds (what a process stopped by a signal does before it exits)."""
    for lease in list(_held):
        lease.release()


def _claim(fs: fsspec.AbstractFileSystem, marker: str, stale_after: float) -> bool:
    """Create the takeover marker of a dead lease; False while another contender's is there. A marker older
    than ``stale_after`` is a contender's that died mid-takeover: it is removed and the claim tried again (two
    claims that both get through are harmless, only one of them then creates the new lease)."""
    if create(fs, marker, b""):
        return True
    with contextlib.suppress(FileNotFoundError):
        stamp = modified_time(fs.info(marker))
        if stamp is not None and time.time() - stamp > stale_after:
            LOG.warning("removing the takeover marker %s of a run that died while taking the lease over",
                        redact_uri(marker))
            fs.rm_file(marker)
            return create(fs, marker, b"")
    return False


def _take_over(fs: fsspec.AbstractFileSystem, root: str, path: str, dead: dict[str, Any], remove_scratch: bool,
               heartbeat_seconds: float) -> bool:
    """Replace a dead run's lease, if this process wins the race for it; then remove its scratch (an output
    root's ``_tmp/<run id>``; a stems root has none)."""
    if not _claim(fs, f"{path}.takeover-{dead.get('token')}", _timeout(dead, heartbeat_seconds)):
        return False  # another contender is taking it over
    with contextlib.suppress(FileNotFoundError, ValueError):
        if json.loads(fs.cat_file(path)).get("token") == dead.get("token"):
            fs.rm_file(path)
    run_id = str(dead.get("run_id", ""))
    if not remove_scratch:
        LOG.warning("took over the lease on %s of %s, whose holder died", redact_uri(root),
                    describe_holder(dead, time.time()))
    elif re.fullmatch(RUN_ID_PATTERN, run_id):  # a lease file is data: only a run id that names one folder
        scratch = join(root, "_tmp", run_id)
        LOG.warning("took over the lease of %s, whose holder died; removing its scratch %s",
                    describe_holder(dead, time.time()), redact_uri(scratch))
        if fs.exists(scratch):
            fs.rm(scratch, recursive=True)
    else:
        LOG.warning("took over the lease of %s, whose holder died; its run id names no scratch folder, "
                    "so nothing is removed", describe_holder(dead, time.time()))
    with contextlib.suppress(FileNotFoundError):
        fs.rm_file(f"{path}.takeover-{dead.get('token')}")
    return True


def acquire(config: Config, run_id: str, poll_seconds: float = 1.0, token: str | None = None,
            key: str = "output.uri", remove_scratch: bool = True) -> Lease:
    """Take the lease on the folder of config ``key`` (``output.uri`` or ``output.stems_uri``) for ``run_id``:
    refuse (LeaseHeld) or wait while a live run holds it (``run.on_lease``), take it over from a dead one
    (and remove that run's scratch, unless ``remove_scratch`` is false: `stemforge gc` removes and names it)."""
    uri = dict(lease_roots(config)).get(key, config.output.uri)
    fs, root = filesystem(uri, config.storage_options)
    path = f"{root}/{LEASE}"
    if is_local(fs):
        fs.makedirs(root, exist_ok=True)
    heartbeat = config.run.lease_heartbeat_seconds
    token = token or uuid.uuid4().hex
    waiting = False
    while True:
        now = time.time()
        record = {"run_id": run_id, "host": socket.gethostname(), "pid": os.getpid(),
                  "process_start": process_start(os.getpid()), "started": now, "heartbeat": now,
                  "heartbeat_seconds": heartbeat, "token": token}
        if create(fs, path, json.dumps(record).encode(), key):
            lease = Lease(fs, path, record, heartbeat)
            _held.append(lease)
            lease._thread.start()
            return lease
        fs.invalidate_cache()
        try:
            current = json.loads(fs.cat_file(path))
        except (FileNotFoundError, ValueError):  # released (or being written) in between: try again
            time.sleep(poll_seconds / 10)
            continue
        scratch = remove_scratch and key == "output.uri"
        if is_dead(current, now, heartbeat) and _take_over(fs, root, path, current, scratch, heartbeat):
            continue
        if config.run.on_lease == "fail":
            raise LeaseHeld(f"{key}: {redact_uri(uri)} is leased by {describe_holder(current, now)}; runs on one "
                            "output never overlap (wait for it, or set run.on_lease=wait)", current)
        if not waiting:
            LOG.info("waiting for the lease on %s, held by %s", redact_uri(uri), describe_holder(current, now))
            waiting = True
        time.sleep(poll_seconds)


def check_held(config: Config, run_id: str, token: str) -> None:
    """LeaseLost unless every folder the run leases still holds its lease (``token``): what the commit step
    asks immediately before it writes, so a run whose stalled lease was taken over never commits."""
    for _, uri in lease_roots(config):
        fs, root = filesystem(uri, config.storage_options)
        path = f"{root}/{LEASE}"

        def current() -> dict[str, Any] | None:
            fs.invalidate_cache()
            with contextlib.suppress(FileNotFoundError, ValueError):
                return json.loads(fs.cat_file(path))
            return None

        record = retrying(current, f"check the lease {redact_uri(path)}", config.storage_options)
        if record is None or record.get("token") != token:
            holder = "nobody holds it now" if record is None else f"{describe_holder(record, time.time())} holds it"
            raise LeaseLost(f"run {run_id} not committed: it lost its lease on {redact_uri(uri)} to another run "
                            f"(it stalled longer than {TIMEOUT_HEARTBEATS} heartbeats and was taken over; {holder});"
                            " the next run redoes its work")


@contextlib.contextmanager
def hold(config: Config, run_id: str) -> Iterator[str]:
    """Every lease of the run (:func:`lease_roots`) while the block runs, released when it ends however it
    ends; yields the run's lease token, which the commit step checks (:func:`check_held`)."""
    token = uuid.uuid4().hex
    leases: list[Lease] = []
    at_exit_now(release_held)
    try:
        for key, _ in lease_roots(config):
            leases.append(acquire(config, run_id, token=token, key=key))
        yield token
    finally:
        for lease in leases:
            lease.release()
