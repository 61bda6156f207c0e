"""The model package's own error, in a module of its own: the command line catches it without importing torch."""

from __future__ import annotations

from typing import Any


class CheckpointError(ValueError):
    """A checkpoint could not be read, verified or matched to the network. ``transient``: reading or writing
    it failed for a storage reason that may go away (never for its content)."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.transient))
