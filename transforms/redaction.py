"""The one scrubber: what of a URL, a storage option or an environment credential may reach a message.

The rule, applied to every message stemforge emits (errors, logs, error records, manifests, reports):

* a URL keeps its scheme, host and path; ``user:password@`` becomes ``***@``, a query string ``?***`` and a
  fragment ``#***`` (signed URLs carry their credentials there: ``X-Amz-Signature``, SAS tokens, ``token=``);
* every value in ``storage_options`` (4+ characters, nested ones included) is masked, endpoint URLs too:
  masking too much costs a little readability, leaking a key costs a lot;
* so is every value of the credential environment variables (``SECRET_ENV_VARS``);
* a URI the message is about (``uris``) has its userinfo, query and fragment masked wherever they appear,
  also where a storage client echoed them without the scheme (``bucket/key?X-Amz-Signature=…``).

It lives in ``transforms`` because every layer reports storage failures: ``transforms`` (audio, band tables),
``model`` (checkpoints) and ``pipeline`` (storage, config, CLI) import it from here.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

MASK = "***"
SECRET_ENV_VARS = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    "AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_SECRET", "GOOGLE_OAUTH_ACCESS_TOKEN", "HF_TOKEN",
)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_uri(uri: str | os.PathLike[str]) -> str:
    """A URL without ``user:password@``, query string or fragment (masked); a plain path unchanged."""
    text = os.fspath(uri)
    if "://" not in text:
        return text
    parts = urllib.parse.urlsplit(text)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if "@" in parts.netloc:
        netloc = f"{MASK}@{netloc}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, MASK if parts.query else "",
                                    MASK if parts.fragment else ""))


def secret_strings(value: Any) -> Iterator[str]:
    """Every string (and stringified number) of 4+ characters nested in a storage_options value."""
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
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and len(str(value)) >= 4:
        yield str(value)


def secrets(storage_options: Mapping[str, Any] | None = None) -> list[str]:
    """Every storage option value and credential environment value to mask, longest first."""
    found = set(secret_strings(storage_options or {}))
    found.update(value for name in SECRET_ENV_VARS if len(value := os.environ.get(name, "")) >= 4)
    return sorted(found, key=len, reverse=True)


def _credential_parts(uri: str | os.PathLike[str]) -> Iterator[str]:
    """The parts of a URI that may carry credentials: ``user:password``, the query and the fragment."""
    text = os.fspath(uri)
    if "://" not in text:
        return
    parts = urllib.parse.urlsplit(text)
    if "@" in parts.netloc:
        yield parts.netloc.rsplit("@", 1)[0]
    yield from (part for part in (parts.query, parts.fragment) if part)


def scrub(text: str, storage_options: Mapping[str, Any] | None = None,
          uris: Iterable[str | os.PathLike[str]] = ()) -> str:
    """``text`` by the rule above: URLs redacted, storage option and credential environment values masked,
    and the credential parts of ``uris`` masked wherever they appear."""
    text = _URL.sub(lambda m: redact_uri(m.group(0)), str(text))
    parts = [part for uri in uris for part in _credential_parts(uri) if len(part) >= 4]
    for secret in sorted({*parts, *secrets(storage_options)}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
