"""The lease on an output root: one run at a time writes under it, so runs that overlap (a slow scheduled
run still going when the next slot fires, a rerun by hand) never commit the same tracks twice, never delete
each other's scratch and never replace each other's manifest.

The launcher takes the lease (``OUT/_lease.json``) after its refusal checks and before any work, with an
atomic create: ``O_EXCL`` through a hard link locally, a conditional PUT on S3 (``If-None-Match: *``) and
GCS (``ifGenerationMatch=0``), both through fsspec's ``pipe_file(mode="create")``. The
lease names the run (id, host, pid, start) and a heartbeat time that a daemon thread refreshes every
``run.lease_heartbeat_seconds``. It is released when the run commits or fails, also when a signal stops it.
A second run finds the lease held and exits 2 naming the live run, or waits for it (``run.on_lease``).

A lease whose holder died is taken over, and the takeover logged: on the same host as soon as its process
is gone, from another host once its heartbeat is ``TIMEOUT_HEARTBEATS`` beats old. Only then is the dead
run's scratch (``OUT/_tmp/<its run id>``) removed. Contenders for one dead lease race for a marker file
named after it (an atomic create again), so only one of them replaces it.
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

from pipeline.config import RUN_ID_PATTERN, Config, ConfigError
from pipeline.interrupts import at_exit_now
from pipeline.scratch import is_alive, process_start
from pipeline.storage import filesystem, is_local, join, redact_uri

LOG = logging.getLogger("stemforge")
LEASE = "_lease.json"
TIMEOUT_HEARTBEATS = 5  # a lease is dead once its heartbeat is this many beats old
# object stores whose pipe_file(mode="create") is a conditional create: s3fs (If-None-Match: *), gcsfs
# (ifGenerationMatch=0); both raise FileExistsError when the object is there
CREATE_PROTOCOLS = ("s3", "s3a", "gs", "gcs")

_held: list[Lease] = []


class LeaseHeld(ConfigError):
    """The output root is leased by a live run (a fatal refusal: exit 2, before any work)."""


def _protocol(fs: fsspec.AbstractFileSystem) -> str:
    protocol = fs.protocol
    return protocol if isinstance(protocol, str) else protocol[0]


def create(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> bool:
    """Write ``data`` at ``path`` only if nothing is there, atomically; False if something was. Locally the
    file is written whole under another name, then hard-linked (which fails if the name exists)."""
    if is_local(fs):
        partial = f"{path}.{uuid.uuid4().hex}.partial"
        with open(partial, "wb") as handle:
            handle.write(data)
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
    raise ConfigError(f"output.uri: the {_protocol(fs)}:// filesystem has no atomic create, so stemforge cannot "
                      "lease the output root against overlapping runs; write to a local folder, s3:// or gs://")


def describe_holder(record: dict[str, Any], now: float) -> str:
    """The live run that holds a lease, in words (run id, host, pid, age, heartbeat)."""
    started, beat = now - float(record.get("started", now)), now - float(record.get("heartbeat", now))
    return (f"run {record.get('run_id')} (host {record.get('host')}, pid {record.get('pid')}, started "
            f"{started:.0f} s ago, heartbeat {beat:.0f} s ago)")


def is_dead(record: dict[str, Any], now: float, heartbeat_seconds: float) -> bool:
    """Whether a lease's holder died: its process is gone (same host), or its heartbeat is too old."""
    if record.get("host") == socket.gethostname() and isinstance(record.get("pid"), int):
        start = record.get("process_start")
        if not is_alive(record["pid"], start if isinstance(start, int) else None):
            return True
    return now - float(record.get("heartbeat", 0)) > TIMEOUT_HEARTBEATS * heartbeat_seconds


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
                self.fs.pipe_file(self.path, json.dumps(self.record).encode())
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


def _take_over(fs: fsspec.AbstractFileSystem, root: str, path: str, dead: dict[str, Any]) -> bool:
    """Replace a dead run's lease, if this process wins the race for it; then remove its scratch."""
    if not create(fs, f"{path}.takeover-{dead.get('token')}", b""):
        return False  # another contender is taking it over
    with contextlib.suppress(FileNotFoundError, ValueError):
        if json.loads(fs.cat_file(path)).get("token") == dead.get("token"):
            fs.rm_file(path)
    run_id = str(dead.get("run_id", ""))
    if re.fullmatch(RUN_ID_PATTERN, run_id):  # a lease file is data: only a run id that names one folder
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


def acquire(config: Config, run_id: str, poll_seconds: float = 1.0) -> Lease:
    """Take the lease on ``config.output.uri`` for ``run_id``: refuse (LeaseHeld) or wait while a live run
    holds it (``run.on_lease``), take it over from a dead one."""
    fs, root = filesystem(config.output.uri, config.storage_options)
    path = f"{root}/{LEASE}"
    if is_local(fs):
        fs.makedirs(root, exist_ok=True)
    heartbeat = config.run.lease_heartbeat_seconds
    waiting = False
    while True:
        now = time.time()
        record = {"run_id": run_id, "host": socket.gethostname(), "pid": os.getpid(),
                  "process_start": process_start(os.getpid()), "started": now, "heartbeat": now,
                  "token": uuid.uuid4().hex}
        if create(fs, path, json.dumps(record).encode()):
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
        if is_dead(current, now, heartbeat) and _take_over(fs, root, path, current):
            continue
        if config.run.on_lease == "fail":
            raise LeaseHeld(f"output.uri: {redact_uri(config.output.uri)} is leased by "
                            f"{describe_holder(current, now)}; runs on one output never overlap "
                            "(wait for it, or set run.on_lease=wait)")
        if not waiting:
            LOG.info("waiting for the lease on %s, held by %s", redact_uri(config.output.uri),
                     describe_holder(current, now))
            waiting = True
        time.sleep(poll_seconds)


@contextlib.contextmanager
def hold(config: Config, run_id: str) -> Iterator[Lease]:
    """The lease on the run's output root while the block runs, released when it ends however it ends."""
    lease = acquire(config, run_id)
    at_exit_now(release_held)
    try:
        yield lease
    finally:
        lease.release()
