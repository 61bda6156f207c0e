"""The model package's own error, in a module of its own: the command line catches it without importing torch."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint could not be read, verified or matched to the network."""
