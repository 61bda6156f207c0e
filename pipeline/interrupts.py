"""SIGINT and SIGTERM stop a command in one line, with the shell's exit codes (130, 143), and leave no local
scratch behind.

The first signal kills the processes the command started (Beam's worker subprocesses, which would each
report their own end) and raises :class:`Interrupted` in the main thread, so the run unwinds as after an
error and every ``finally`` removes what it made. Beam wraps what it
catches in its own exceptions, so the command line asks :func:`received` which signal stopped it rather
than trusting the exception it gets. Should unwinding take longer than ``GRACE_SECONDS`` (a worker thread
deep in a model call), or a second signal come, the process removes its scratch roots and exits at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType

from stemforge.pipeline.scratch import remove_owned

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
GRACE_SECONDS = 20.0

_received: signal.Signals | None = None
_said = threading.Event()
_thread_hooks: list = []
_exit_callbacks: list[Callable[[], None]] = []


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread by SIGINT or SIGTERM (a KeyboardInterrupt, so ``except Exception`` code
    does not swallow it)."""


def received() -> signal.Signals | None:
    """The signal that stopped this process, if one did."""
    return _received


def stop_line(signum: signal.Signals) -> str:
    """The one line an interrupted command prints on stderr."""
    return f"stemforge: stopped by {signum.name} (exit {EXIT_CODES[signum]}); local scratch removed"


def say_stopped(signum: signal.Signals) -> None:
    """Print :func:`stop_line` once per process."""
    if not _said.is_set():
        _said.set()
        print(stop_line(signum), file=sys.stderr, flush=True)


def _children() -> dict[int, list[int]]:
    """Every process's children, from Linux ``/proc`` (empty elsewhere)."""
    children: dict[int, list[int]] = {}
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc"):
            if name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError), open(f"/proc/{name}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
                    children.setdefault(parent, []).append(int(name))
    return children


def stop_descendants() -> list[int]:
    """SIGKILL every process this one started, parents before their children (a shell that Beam starts a
    worker through dies before it can report its child's death); returns their pids. Their scratch is in
    the run's root, which this process removes."""
    children = _children()
    order, queue = [], list(children.get(os.getpid(), []))
    while queue:
        pid = queue.pop(0)
        order.append(pid)
        queue.extend(children.get(pid, []))
    for pid in order:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return order


def at_exit_now(callback: Callable[[], None]) -> None:
    """Have ``callback`` run when a stopped process exits at once (what must not outlive it: a lease)."""
    if callback not in _exit_callbacks:
        _exit_callbacks.append(callback)


def _exit_now(signum: signal.Signals) -> None:
    for callback in _exit_callbacks:
        with contextlib.suppress(Exception):
            callback()
    remove_owned()
    say_stopped(signum)
    os._exit(EXIT_CODES[signum])


def _handle(signum: int, _frame: FrameType | None) -> None:
    global _received
    sig = signal.Signals(signum)
    if _received is not None:
        _exit_now(_received)
    _received = sig
    stop_descendants()
    timer = threading.Timer(GRACE_SECONDS, _exit_now, args=(sig,))
    timer.daemon = True
    timer.start()
    raise Interrupted(sig.name)


class QuietAfterSignal(logging.Filter):
    """Drops every log record once a signal stopped the process: what Beam's threads log while they unwind
    (each an error with a traceback) says nothing the one stop line does not."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _received is None


def _quiet_excepthook(args: threading.ExceptHookArgs) -> None:
    """Threads that die while the process stops (Beam's, waiting on a worker subprocess that is gone) are not
    reported; before a signal, the hook installed before ours reports them."""
    if _received is None:
        _thread_hooks[0](args)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Handle SIGINT and SIGTERM as the module says while the block runs (only in the main thread, where
    Python delivers signals; elsewhere the block runs unchanged)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, QuietAfterSignal) for f in handler.filters):
            handler.addFilter(QuietAfterSignal())
    if threading.excepthook is not _quiet_excepthook:
        _thread_hooks.append(threading.excepthook)
        threading.excepthook = _quiet_excepthook
    previous = {sig: signal.signal(sig, _handle) for sig in EXIT_CODES}
    try:
        yield
    finally:
        if _received is None:  # after a signal the handlers stay: a second one ends the process at once
            for sig, handler in previous.items():
                signal.signal(sig, handler)
