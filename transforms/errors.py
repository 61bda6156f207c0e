"""AudioError: the one exception that bad audio input raises.

Reason codes (``AudioError.reason``), stable and machine-readable:

``not_found``
    the file or object does not exist.
``is_directory``
    the URI names a directory (or an object-store prefix), not a file.
``io_error``
    the storage could not be read (permission denied, network failure,
    missing fsspec backend, unknown protocol); possibly transient.
``unreadable``
    the bytes are not audio that the installed libsndfile decodes
    (unknown format, garbage, a header it rejects).
``truncated``
    a known format that is truncated or corrupt: the header promises more
    than the stream holds, or decoding fails or stops early part-way.
``empty``
    the file decodes to zero frames.
``non_finite``
    the decoded samples contain NaN or infinity.
``too_many_channels``
    more than two channels where the channel policy is ``"reject"``.

Messages name the file (with any ``user:password@`` part of the URI removed)
and the reason; they never contain ``storage_options`` values, which may hold
secrets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

REASONS = frozenset(
    {
        "not_found",
        "is_directory",
        "io_error",
        "unreadable",
        "truncated",
        "empty",
        "non_finite",
        "too_many_channels",
    }
)

_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def redact_uri(uri: str) -> str:
    """The URI without credentials embedded as ``scheme://user:password@host``."""
    return _USERINFO.sub("***@", str(uri))


def secret_strings(value: Any) -> Iterable[str]:
    """Every string (and stringified scalar) of 4+ characters nested in a storage_options value."""
    if isinstance(value, Mapping):
        for item in value.values():
            yield from secret_strings(item)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from secret_strings(item)
    elif isinstance(value, (str, bytes)):
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        if len(text) >= 4:
            yield text
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        text = str(value)
        if len(text) >= 4:
            yield text


def scrub(text: str, storage_options: Mapping[str, Any] | None) -> str:
    """``text`` with every storage_options value (and URI credentials) masked."""
    text = redact_uri(text)
    if storage_options:
        for secret in sorted(set(secret_strings(storage_options)), key=len, reverse=True):
            text = text.replace(secret, "***")
    return text


class AudioError(ValueError):
    """Bad audio input: ``uri`` names the file, ``reason`` is one of :data:`REASONS`."""

    def __init__(self, uri: str, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown AudioError reason {reason!r}")
        self.uri = redact_uri(uri)
        self.reason = reason
        self.detail = detail
        super().__init__(f"{self.uri}: {reason}: {detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.uri, self.reason, self.detail))
