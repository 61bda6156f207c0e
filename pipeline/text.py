"""Counts in what stemforge prints: "1 track", "2 tracks", never "1 tracks"."""

from __future__ import annotations


def count(number: int, noun: str, plural: str | None = None, grouped: bool = False) -> str:
    """``number`` and ``noun``, in the plural (``plural``, default noun + "s") unless the number is 1;
    ``grouped`` writes thousands separators."""
    shown = f"{number:,}" if grouped else str(number)
    return f"{shown} {noun if number == 1 else plural or noun + 's'}"
