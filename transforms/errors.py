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

Messages name the file (its URI redacted by :mod:`transforms.redaction`: no
``user:password@``, query string or fragment) and the reason; they never contain
``storage_options`` values, which may hold secrets.

Every error says whether it may go away when the operation is repeated: an
attribute ``transient`` (``AudioError``, ``CheckpointError``, ``StorageError``)
set where it is raised, from :func:`is_transient` of the storage failure behind
it. Retries ask that, never the message text.
"""

from __future__ import annotations

import errno
import socket
import sys
from collections.abc import Iterator
from typing import Any

from stemforge.transforms.redaction import redact_uri

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

# failures that repeating cannot fix: absent, denied, a bad request or a bug
PERMANENT = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError, FileExistsError,
             ValueError, TypeError, KeyError, NotImplementedError, ImportError, AttributeError)
TRANSIENT_ERRNOS = frozenset({errno.EIO, errno.EBUSY, errno.EAGAIN, errno.ETIMEDOUT, errno.ECONNRESET,
                              errno.ECONNREFUSED, errno.ECONNABORTED, errno.EPIPE, errno.EREMOTEIO,
                              errno.EHOSTUNREACH, errno.ENETUNREACH})
# S3's (and botocore's) error codes for a server that is busy, throttling or failed inside
TRANSIENT_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "ThrottledException",
                             "RequestThrottled", "RequestLimitExceeded", "TooManyRequestsException",
                             "RequestTimeout", "RequestTimeoutException", "InternalError", "ServiceUnavailable",
                             "BandwidthLimitExceeded", "ProvisionedThroughputExceededException"})
# storage clients' connection and protocol failures that do not subclass ConnectionError or TimeoutError;
# looked up only in modules already imported (an exception of a module never imported cannot occur)
TRANSIENT_CLASSES = (("botocore.exceptions", "HTTPClientError"), ("botocore.exceptions", "ConnectionError"),
                     ("aiohttp", "ClientConnectionError"),
                     ("aiohttp", "ClientPayloadError"), ("http.client", "IncompleteRead"),
                     ("urllib3.exceptions", "ProtocolError"), ("urllib3.exceptions", "TimeoutError"),
                     ("requests.exceptions", "ConnectionError"), ("requests.exceptions", "Timeout"),
                     ("google.auth.exceptions", "TransportError"))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and the ones behind it (``__cause__``, else ``__context__``), outermost first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _http_status(exc: BaseException) -> int | str | None:
    """A service's answer carried by the error: botocore's error code (else its HTTP status), or the
    HTTP status of aiohttp's and gcsfs's response errors."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and isinstance(response.get("Error"), dict):
        code = response["Error"].get("Code")
        return code if code in TRANSIENT_CODES else response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    for name in ("status", "code"):
        value = getattr(exc, name, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    return None


def _client_classes() -> tuple[type[BaseException], ...]:
    found = (getattr(sys.modules.get(module), name, None) for module, name in TRANSIENT_CLASSES)
    return tuple(cls for cls in found if isinstance(cls, type))


def is_transient(exc: BaseException) -> bool:
    """Whether a failure may go away when the operation is repeated, decided by what the error is: its own
    ``transient`` attribute; else a permanent class (absent, denied, bad request); else, along its causes, a
    service's answer (S3 throttling or internal error codes, HTTP 429 and 5xx), a connection or timeout class,
    or a transient errno (EIO, EBUSY, ECONNRESET…). Anything else is permanent."""
    known = getattr(exc, "transient", None)
    if isinstance(known, bool):
        return known
    if isinstance(exc, PERMANENT):
        return False
    chain = list(_chain(exc))
    for cause in chain:
        status = _http_status(cause)
        if status is not None:
            return status in TRANSIENT_CODES or status == 429 or (isinstance(status, int) and status >= 500)
    transient_classes = (ConnectionError, TimeoutError, socket.timeout, *_client_classes())
    return any(isinstance(cause, transient_classes)
               or (isinstance(cause, OSError) and cause.errno in TRANSIENT_ERRNOS) for cause in chain)


class AudioError(ValueError):
    """Bad audio input: ``uri`` names the file, ``reason`` is one of :data:`REASONS`; ``transient`` is true only
    for an ``io_error`` whose storage failure may go away (bad audio is never worth another try)."""

    def __init__(self, uri: str, reason: str, detail: str, transient: bool = False) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown AudioError reason {reason!r}")
        self.uri = redact_uri(uri)
        self.reason = reason
        self.detail = detail
        self.transient = transient and reason == "io_error"
        super().__init__(f"{self.uri}: {reason}: {detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.uri, self.reason, self.detail, self.transient))
