"""What the launcher shows while a run works: a live line on a terminal, a plain log line (logger
``stemforge.progress``) every N seconds elsewhere (CI, Dataflow logs, a file), nothing with ``--quiet``. It
polls the counters that the workers publish (pipeline.progress), so it is live on every runner that can write
the output."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import sys
import threading
import time
from typing import Any, Self, TextIO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from stemforge import text
from stemforge.config.run import ConfigError
from stemforge.pipeline.listing import describe_ignored
from stemforge.pipeline.logs import printable
from stemforge.pipeline.progress import STAGES, read_progress
from stemforge.pipeline.storage import StorageOptions

LOG = logging.getLogger("stemforge.progress")
LIVE_SECONDS = 1.0
PLAIN_SECONDS = 30.0


def add_progress_arguments(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` and ``--progress-interval``, for every command that runs a job."""
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument("--progress-interval", type=float, default=None, metavar="SECONDS",
                        help=f"seconds between progress updates (default: {LIVE_SECONDS:g} on a terminal, where "
                             f"the line is redrawn; {PLAIN_SECONDS:g} elsewhere, one log line each)")


def checked_interval(seconds: float | None) -> float | None:
    """``--progress-interval`` checked before any work: a positive, finite number of seconds (None: the
    default); a non-positive one would redraw the line as fast as the CPU allows."""
    if seconds is not None and not 0 < seconds < math.inf:
        raise ConfigError(f"--progress-interval must be a positive number of seconds, got {seconds:g}")
    return seconds


def _clock(seconds: float) -> str:
    return str(dt.timedelta(seconds=int(seconds)))


class ProgressDisplay:
    """Polls a run's progress folder in a background thread and shows what it finds.

    ``mode`` is ``live`` (rich, redrawn in place on ``stream``), ``plain`` (one log line per interval, no
    control characters) or ``off``. Shown counts never go down, even if a poll races the workers' writes.
    """

    def __init__(self, folder: str, storage_options: StorageOptions, inputs: int, variants: int, mode: str,
                 interval: float | None = None, stream: TextIO | None = None, separates: bool = True) -> None:
        self._folder = folder
        self._separates = separates  # a mix run without a model has no "separated" stage to show
        self._options = storage_options
        self._inputs = inputs
        self._variants = variants
        self.mode = mode
        self._interval = interval or (LIVE_SECONDS if mode == "live" else PLAIN_SECONDS)
        self._stream = stream or sys.stderr
        self._shown = {stage: {"tracks": 0, "audio_seconds": 0.0} for stage in STAGES}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Live | None = None
        self._started = time.monotonic()

    @staticmethod
    def choose_mode(quiet: bool, stream: TextIO | None = None) -> str:
        """``off`` when quiet, ``live`` on a terminal, ``plain`` otherwise."""
        if quiet:
            return "off"
        return "live" if (stream or sys.stderr).isatty() else "plain"

    def __enter__(self) -> Self:
        if self.mode == "off":
            return self
        self._started = time.monotonic()
        if self.mode == "live":
            console = Console(file=self._stream, highlight=False)
            self._live = Live(Text("stemforge: starting"), console=console, auto_refresh=False, transient=False)
            self._live.start()
        self._thread = threading.Thread(target=self._loop, name="stemforge-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._live is not None:
            self._live.stop()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.poll()

    def poll(self) -> str:
        """Read the counters once, show them, and return the line shown."""
        found = read_progress(self._folder, self._options)
        for stage, value in found.items():
            shown = self._shown[stage]
            shown["tracks"] = max(shown["tracks"], value["tracks"])
            shown["audio_seconds"] = max(shown["audio_seconds"], value["audio_seconds"])
        line = printable(self.line(time.monotonic() - self._started))
        if self._live is not None:
            self._live.update(Text(f"stemforge {line}"), refresh=True)
        elif self.mode == "plain":
            LOG.info("%s", line)
        return line

    def line(self, elapsed: float) -> str:
        """One ASCII line: tracks per stage ("listed 4+" while listing goes on), error records (one per
        rejected track variant), audio hours written, × real time and the ETA."""
        count = {stage: int(value["tracks"]) for stage, value in self._shown.items()}
        audio = self._shown["written"]["audio_seconds"]
        listing_done = count["inputs_done"] >= self._inputs
        total = (count["listed"] - count["skipped"]) * self._variants if listing_done else None
        eta = "ETA -"  # from the rate of written tracks: rejections are quick and would make it look close
        if total is not None and count["written"] and elapsed > 0:
            remaining = max(total - count["written"] - count["rejected"], 0)
            eta = f"ETA {_clock(remaining * elapsed / count['written'])}"
        listed = f"listed {count['listed']}" + ("" if listing_done else "+")
        written = f"written {count['written']}" + (f"/{total}" if total is not None else "")
        skipped = f" | skipped {count['skipped']}" if count["skipped"] else ""
        skipped += f" | ignored {text.count(count['ignored'], 'file')}" if count["ignored"] else ""
        speed = audio / elapsed if elapsed > 0 else 0.0
        separated = f"separated {count['separated']} | " if self._separates else ""
        return (f"[{_clock(elapsed)}] {listed}{skipped} | prepared {count['prepared']} | "
                f"{separated}{written} | errors {count['rejected']} | "
                f"{audio / 3600:.3f} h audio | {speed:.1f}x real time | {eta}")

    def finish(self, manifest: dict[str, Any]) -> None:
        """The last line, from the committed manifest (the workers' counters are gone with the scratch)."""
        if self.mode == "off":
            return
        counts = manifest["counts"]
        elapsed = time.monotonic() - self._started
        speed = counts["audio_seconds"] / elapsed if elapsed > 0 else 0.0
        line = (f"[{_clock(elapsed)}] done | listed {counts['inputs'] + counts['skipped']} | "
                f"written {counts['variants']} | errors {counts['errors']} "
                f"({text.count(counts['failed'], 'input')} rejected) | skipped {counts['skipped']} | "
                + (f"{describe_ignored(manifest['ignored'])} | " if manifest.get("ignored") else "")
                + f"{counts['audio_seconds'] / 3600:.3f} h audio | {speed:.1f}x real time")
        line = printable(line)
        if self.mode == "live":
            print(f"stemforge {line}", file=self._stream, flush=True)
        else:
            LOG.info("%s", line)
