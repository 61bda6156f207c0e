"""The trainer's live line: redrawn in place on a terminal, a log line every 30 s elsewhere."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

LOG = logging.getLogger("stemforge.train")
PLAIN_SECONDS = 30.0


class StepProgress:
    """Epoch, step, loss and speed while training; one summary line per epoch."""

    def __init__(self, epochs: int, stream: TextIO | None = None, quiet: bool = False) -> None:
        self._epochs = epochs
        self._stream = stream or sys.stderr
        self._live = not quiet and self._stream.isatty()
        self._quiet = quiet
        self._last = 0.0
        self._started = time.monotonic()

    def update(self, epoch: int, step: int, loss: float) -> None:
        """Show the current step (at most 4 times a second on a terminal)."""
        now = time.monotonic()
        line = f"epoch {epoch + 1}/{self._epochs} | step {step} | loss {loss:.5f} | {now - self._started:.0f} s"
        if self._live and now - self._last >= 0.25:
            self._stream.write(f"\r{line}\x1b[K")
            self._stream.flush()
            self._last = now
        elif not self._live and not self._quiet and now - self._last >= PLAIN_SECONDS:
            LOG.info("%s", line)
            self._last = now

    def epoch_done(self, row: dict[str, Any]) -> None:
        """The epoch's metrics, on their own line."""
        if self._quiet:
            return
        if self._live:
            self._stream.write("\r\x1b[K")
        shown = " | ".join(f"{k} {v:.5g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()
                           if v is not None)
        LOG.info("%s", shown)
