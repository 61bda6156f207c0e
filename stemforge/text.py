"""Counts, durations and sizes in what stemforge prints: "1 track", "2 tracks", never "1 tracks"."""

from __future__ import annotations

import datetime as dt
from typing import Any


def count(number: int, noun: str, plural: str | None = None, grouped: bool = False) -> str:
    """``number`` and ``noun``, in the plural (``plural``, default noun + "s") unless the number is 1;
    ``grouped`` writes thousands separators."""
    shown = f"{number:,}" if grouped else str(number)
    return f"{shown} {noun if number == 1 else plural or noun + 's'}"


def duration(seconds: float | None) -> str:
    """A wall time in words: "42 s", "3 min 05 s", "2 h 07 min"; "unknown" for None."""
    whole = round(seconds or 0)
    return ("unknown" if seconds is None else f"{whole} s" if whole < 60 else f"{whole // 60} min {whole % 60:02d} s"
            if whole < 3600 else f"{whole // 3600} h {whole % 3600 // 60:02d} min")


def wall_seconds(manifest: dict[str, Any]) -> float | None:
    """A committed run's wall time, from its manifest's ``started_at`` to its ``finished_at``."""
    try:
        return (dt.datetime.fromisoformat(manifest["finished_at"])
                - dt.datetime.fromisoformat(manifest["started_at"])).total_seconds()
    except (KeyError, TypeError, ValueError):
        return None


def size(number: int) -> str:
    """A byte count in words: "512 B", "3.4 kB", "1.2 MB", "5.0 GB" (powers of 1000)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if number >= scale:
            return f"{number / scale:.1f} {unit}"
    return f"{number} B"
