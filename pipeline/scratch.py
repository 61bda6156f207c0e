"""Local scratch folders in the system temp dir, owned so that nothing outlives its run.

Every local scratch folder (a track's, a shard writer's, a stem writer's) is made inside one root folder
``$TMPDIR/stemforge-run-*`` that holds an owner file: pid, host and the process's start time. The launcher
makes the root of a run and names it in ``$STEMFORGE_SCRATCH_ROOT``, so the Beam worker subprocesses it
starts (``--direct_running_mode multi_processing``, a local Dask cluster) make their folders inside it too;
a worker on another machine makes a root of its own, removed when its process exits. A run removes its root
when it ends, also when interrupted, and removes at start the roots of runs that died on this host: a root
whose owner process is gone, or an unowned ``stemforge-*`` folder (left by older versions) older than
``UNOWNED_STALE_SECONDS``. A live run's root is never touched.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator

ENV = "STEMFORGE_SCRATCH_ROOT"
PREFIX = "stemforge-"
OWNER = "owner.json"
UNOWNED_STALE_SECONDS = 24 * 3600  # longer than any track's scratch folder lives between two writes to it

_lock = threading.Lock()
_own_root: str | None = None
_owned: set[str] = set()


class ScratchGone(RuntimeError):
    """The run's scratch root named by ``$STEMFORGE_SCRATCH_ROOT`` was removed: the run was stopped."""


def process_start(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux ``/proc``), None where unknown;
    with the pid it names one process, also after the pid is reused."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19]) if len(fields) > 19 and fields[19].isdigit() else None


def is_alive(pid: int, start: int | None) -> bool:
    """Whether the process ``pid`` that started at ``start`` (None: any start) still runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = process_start(pid) if start is not None else None
    return now is None or now == start


def new_root() -> str:
    """Make a scratch root owned by this process (removed by :func:`remove_tree`)."""
    root = tempfile.mkdtemp(prefix=f"{PREFIX}run-")
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "process_start": process_start(os.getpid()),
             "created": time.time()}
    partial = os.path.join(root, f".{OWNER}.{uuid.uuid4().hex}")
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(owner, handle)
    os.replace(partial, os.path.join(root, OWNER))
    with _lock:
        _owned.add(root)
    return root


def scratch_root() -> str:
    """The root this process makes its scratch folders in: the run's (``$STEMFORGE_SCRATCH_ROOT``), else one
    of its own, made on first use and removed when the process exits."""
    global _own_root
    shared = os.environ.get(ENV)
    if shared:
        if not os.path.isdir(shared):
            raise ScratchGone(f"the run's scratch folder {shared} was removed: the run was stopped")
        return shared
    with _lock:
        if _own_root is not None and os.path.isdir(_own_root):
            return _own_root
    root = new_root()
    with _lock:
        _own_root = root
    atexit.register(remove_tree, root)
    return root


def make_scratch(prefix: str) -> str:
    """A new local scratch folder (``prefix`` + random) in this process's scratch root."""
    return tempfile.mkdtemp(prefix=prefix, dir=scratch_root())


def remove_tree(path: str) -> None:
    """Remove a scratch folder, also while threads still write into it: it is first renamed (so no new
    file or folder can appear under its name), then deleted."""
    with _lock:
        _owned.discard(path)
    doomed = f"{path}-removing-{uuid.uuid4().hex[:8]}"
    try:
        os.rename(path, doomed)
    except OSError:
        doomed = path
    shutil.rmtree(doomed, ignore_errors=True)


def remove_owned() -> None:
    """Remove every scratch root this process made (what an interrupted process does before it exits)."""
    with _lock:
        roots = sorted(_owned)
    for root in roots:
        remove_tree(root)


def _owner(folder: str) -> dict | None:
    try:
        with open(os.path.join(folder, OWNER), encoding="utf-8") as handle:
            owner = json.load(handle)
        return owner if isinstance(owner, dict) and isinstance(owner.get("pid"), int) else None
    except (OSError, ValueError):
        return None


def is_stale(folder: str, now: float) -> bool:
    """Whether a ``stemforge-*`` folder belongs to no live process on this host: its owner file names a
    process of this host that is gone, or it has none and was last changed over UNOWNED_STALE_SECONDS ago.
    A folder owned on another host is never stale here (its pid means nothing on this one)."""
    owner = _owner(folder)
    if owner is None:
        with contextlib.suppress(OSError):
            return now - os.stat(folder).st_mtime > UNOWNED_STALE_SECONDS
        return False
    if owner.get("host") != socket.gethostname():
        return False
    start = owner.get("process_start")
    return not is_alive(owner["pid"], start if isinstance(start, int) else None)


def remove_stale(now: float | None = None) -> list[str]:
    """Remove the stale ``stemforge-*`` folders in the system temp dir; returns their paths."""
    now = time.time() if now is None else now
    removed = []
    with contextlib.suppress(OSError), os.scandir(tempfile.gettempdir()) as entries:
        for entry in entries:
            if (entry.name.startswith(PREFIX) and entry.is_dir(follow_symlinks=False)
                    and entry.path not in _owned and is_stale(entry.path, now)):
                remove_tree(entry.path)
                removed.append(entry.path)
    return removed


@contextlib.contextmanager
def run_scratch() -> Iterator[str]:
    """A run's scratch root, named in ``$STEMFORGE_SCRATCH_ROOT`` for the processes it starts while the
    block runs, and removed (with whatever its workers left in it) when the block ends."""
    previous = os.environ.get(ENV)
    root = new_root()
    os.environ[ENV] = root
    try:
        yield root
    finally:
        if previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous
        remove_tree(root)
