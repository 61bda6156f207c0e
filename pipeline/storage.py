"""fsspec plumbing for every read and write of a run: per-protocol options, atomic publishing,
retries of whole-object operations, and scrubbed messages (the rule: ``transforms.redaction``).

On a local filesystem a file is written under a temporary name (in the run's staging folder when
one is given, else beside the target) and renamed into place; on an object store it is uploaded as
one complete object, which readers never see half-written. Whole-object operations are retried
with exponential backoff when the failure is transient (``transforms.errors.is_transient`` asks the
error's class, errno or service code: connection, timeout, 5xx, throttling); a permanent failure
(missing object, permission denied, bad request) is raised at once.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import fsspec
from fsspec.implementations.local import LocalFileSystem
from fsspec.utils import get_protocol

from stemforge.shards.paths import PathEscape as PathEscape, join as join  # re-exported: the one join of every write
from stemforge.transforms.errors import is_transient as is_transient  # re-exported: the one classification of failures
from stemforge.transforms.redaction import redact_uri as redact_uri, scrub as scrub  # re-exported: the one scrubber

LOG = logging.getLogger(__name__)
StorageOptions = dict[str, dict[str, Any]]
T = TypeVar("T")

RETRY_ATTEMPTS = 5
RETRY_BASE_SECONDS = 0.5


class StorageError(OSError):
    """A storage operation that failed for good; the message is scrubbed of secrets."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def protocol_of(uri: str) -> str:
    """fsspec's protocol name for a URL; plain paths are 'file'."""
    protocol = get_protocol(uri)
    return "file" if protocol in ("file", "local") else protocol


def options_for(uri: str, storage_options: StorageOptions) -> dict[str, Any]:
    """The keyword arguments configured for the URL's protocol (s3a/s3 and gs/gcs share theirs)."""
    protocol = protocol_of(uri)
    aliases = {"s3a": "s3", "gcs": "gs", "abfs": "az", "abfss": "az", "https": "http"}
    return dict(storage_options.get(protocol) or storage_options.get(aliases.get(protocol, protocol)) or {})


def filesystem(uri: str, storage_options: StorageOptions) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and in-filesystem path of a URL."""
    return fsspec.core.url_to_fs(uri, **options_for(uri, storage_options))


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    """True for the local filesystem, where rename is atomic."""
    return isinstance(fs, LocalFileSystem)


# ---------------------------------------------------------------- secrets (the rule: transforms.redaction)

class ScrubFilter(logging.Filter):
    """A logging filter that scrubs secrets from every record that passes a handler."""

    def __init__(self, storage_options: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self._options = storage_options

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        cleaned = scrub(message, self._options)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text, self._options)
        record.msg, record.args, record.exc_info = cleaned, None, None
        return True


# ---------------------------------------------------------------- retries

def is_transient_read(exc: BaseException) -> bool:
    """Whether reading an input failed for a reason worth another try: a failure of the read stage (a
    TrackError's ``stage``, when wrapped) whose error says it is transient. Bad audio never is."""
    if getattr(exc, "stage", "read") != "read":
        return False
    return is_transient(getattr(exc, "cause", exc))


def retry(operation: Callable[[], T], what: str, transient: Callable[[BaseException], bool] = is_transient,
          storage_options: Mapping[str, Any] | None = None, attempts: int | None = None) -> T:
    """Runs an operation, repeating it after transient failures with exponential backoff
    (RETRY_BASE_SECONDS, doubling, RETRY_ATTEMPTS in all); the last failure is re-raised as is."""
    attempts = attempts or RETRY_ATTEMPTS
    delay = RETRY_BASE_SECONDS
    for attempt in range(1, attempts + 1):
        try:
            return operation()
        except Exception as exc:
            if attempt == attempts or not transient(exc):
                raise
            LOG.warning("%s failed (%s), attempt %d of %d; retrying in %.1f s", scrub(what, storage_options),
                        describe(exc, storage_options), attempt, attempts, delay)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def describe(exc: BaseException, storage_options: Mapping[str, Any] | None = None) -> str:
    """One scrubbed line naming the exception type and its message."""
    return scrub(f"{type(exc).__name__}: {' '.join(str(exc).split())}", storage_options)[:500]


def retrying(operation: Callable[[], T], what: str, storage_options: Mapping[str, Any] | None = None) -> T:
    """``retry`` for whole-object operations; a failure that remains is raised as a scrubbed
    StorageError (or FileNotFoundError, so callers can still tell "absent")."""
    try:
        return retry(operation, what, is_transient, storage_options)
    except Exception as exc:  # noqa: BLE001 - re-raised scrubbed, without the chained original
        message = f"{scrub(what, storage_options)}: {describe(exc, storage_options)}"
        if isinstance(exc, FileNotFoundError):
            raise FileNotFoundError(message) from None
        transient = is_transient(exc)
        if transient:
            message += f" (gave up after {RETRY_ATTEMPTS} attempts)"
        raise StorageError(message, transient) from None


# ---------------------------------------------------------------- whole-object operations

def modified_time(info: dict[str, Any]) -> float | None:
    """An fsspec entry's modification time as a POSIX timestamp (None when the backend has none)."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "modified"):
        value = info.get(key)
        if value is None:
            continue
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
        try:
            return float(value)
        except (TypeError, ValueError):
            continue
    return None


def _local_temp(path: str, staging: str | None) -> str:
    name = f"{uuid.uuid4().hex[:16]}.tmp"
    if staging:
        os.makedirs(staging, exist_ok=True)
        return os.path.join(staging, name)
    return f"{path}.tmp-{name}"


def _replace(tmp: str, path: str) -> None:
    try:
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        sibling = f"{path}.tmp-{uuid.uuid4().hex[:16]}"  # staging on another filesystem: copy, then rename
        shutil.move(tmp, sibling)
        os.replace(sibling, path)


def _staging_path(staging: str | None, storage_options: StorageOptions) -> str | None:
    if not staging:
        return None
    fs, path = filesystem(staging, storage_options)
    return path if is_local(fs) else None


def _publish_local(fs: fsspec.AbstractFileSystem, path: str, fill: Callable[[str], None], what: str,
                   staging: str | None, storage_options: StorageOptions) -> None:
    """Fill a temporary file beside the target (or in ``staging``) and rename it into place."""
    def attempt() -> None:
        fs.makedirs(fs._parent(path), exist_ok=True)
        tmp = _local_temp(path, _staging_path(staging, storage_options))
        try:
            fill(tmp)
            _replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    retrying(attempt, what, storage_options)


def publish_file(local_path: str, uri: str, storage_options: StorageOptions, staging: str | None = None) -> None:
    """Move a finished local file to its final URL so that it appears whole or not at all.

    ``staging`` (a folder URL, normally the run's OUTPUT/_tmp/{run_id}/publish) holds the local
    temporary copy, so a process killed mid-copy leaves it where the next run cleans it up.
    """
    fs, path = filesystem(uri, storage_options)
    if is_local(fs):
        _publish_local(fs, path, lambda tmp: fs.put_file(local_path, tmp), f"publish {uri}", staging,
                       storage_options)
    else:
        retrying(lambda: fs.put_file(local_path, path), f"upload {uri}", storage_options)


def _write_synced(tmp: str, data: bytes) -> None:
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def publish_bytes(data: bytes, uri: str, storage_options: StorageOptions, staging: str | None = None) -> None:
    """Write bytes to a URL atomically (rename locally, a single object upload elsewhere)."""
    fs, path = filesystem(uri, storage_options)
    if is_local(fs):
        _publish_local(fs, path, lambda tmp: _write_synced(tmp, data), f"write {uri}", staging, storage_options)
    else:
        retrying(lambda: fs.pipe_file(path, data), f"upload {uri}", storage_options)


def read_bytes(uri: str, storage_options: StorageOptions) -> bytes:
    """Read a whole (small) object."""
    fs, path = filesystem(uri, storage_options)
    return retrying(lambda: fs.cat_file(path), f"read {uri}", storage_options)
