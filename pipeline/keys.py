"""Which source holds which track key, and which listed sources an earlier run already committed.

The listing gives each source a base key (``pipeline.listing.sanitize_key``). Keys are stable: a source's key
never changes because another source appeared, and the committed history decides. Every committed run
manifest records which source holds which key (``sources``: key, source, size, version), so:

* a source listed twice (the same file through two inputs) is processed once, under a key it already
  holds, else under its smallest base key;
* a key that a committed run records for a source stays that source's; any other source with that base key
  gets ``{key}~{hash of its source}``;
* a key no committed run records goes to the first of its sources (sorted), the others get the suffix.

A listed source is skipped (``run.skip_existing``) when a committed run with the same fingerprint records its
key for the same source with the same content (size and version, where both sides know them). Manifests of
earlier versions, which record only ``tracks`` (keys), skip by key alone and name no holder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from pipeline.listing import MixRef, TrackRef, content_of
from pipeline.storage import StorageOptions, filesystem, redact_uri


@dataclass(frozen=True)
class Holding:
    """One key a committed run holds: for which source and content (None: a manifest that recorded only the
    key), and whether that run's fingerprint is this run's (its outputs are reusable)."""

    track_key: str
    source: str | None
    size: int | None
    version: str | None
    reusable: bool
    run: tuple[str, str]  # (started_at, run_id): the earliest run's record decides the holder


KeyIndex = dict[str, tuple[Holding, ...]]


def holdings(manifest: dict[str, Any], fingerprint: str) -> Iterator[Holding]:
    """The keys a committed run manifest holds."""
    reusable = manifest.get("fingerprint") == fingerprint
    run = (str(manifest.get("started_at", "")), str(manifest.get("run_id", "")))
    records = manifest.get("sources")
    if records is None:
        for key in manifest.get("tracks", []):
            yield Holding(key, None, None, None, reusable, run)
        return
    for record in records:
        yield Holding(record["track_key"], record["source"], record.get("size"), record.get("version"), reusable, run)


def key_index(found: Iterable[Holding]) -> KeyIndex:
    """Every committed key with its holdings, earliest run first."""
    index: dict[str, list[Holding]] = {}
    for holding in sorted(found, key=lambda h: (h.run, h.track_key, h.source or "")):
        index.setdefault(holding.track_key, []).append(holding)
    return {key: tuple(found) for key, found in index.items()}


def shown_source(ref: TrackRef) -> str:
    """A source as manifests record it: without credentials."""
    return redact_uri(ref.source)


def holder(index: KeyIndex, key: str) -> str | None:
    """The source that holds a key (the earliest committed run's record), or None when none is recorded."""
    return next((h.source for h in index.get(key, ()) if h.source is not None), None)


def suffixed(key: str, source: str) -> str:
    """The key a source gets when another source holds its base key."""
    return f"{key}~{hashlib.sha256(source.encode()).hexdigest()[:8]}"


def one_per_source(refs: Iterable[TrackRef], index: KeyIndex) -> TrackRef:
    """One ref for a source that was listed more than once: the one whose key it holds, else the smallest key."""
    ordered = sorted(refs, key=lambda r: r.track_key)
    shown = shown_source(ordered[0])
    for ref in ordered:
        if shown in (holder(index, ref.track_key), holder(index, suffixed(ref.track_key, ref.source))):
            return ref
    return ordered[0]


def assign_keys(refs: Iterable[TrackRef], index: KeyIndex) -> list[TrackRef]:
    """Distinct keys for the sources of one base key: its recorded holder keeps it (else the first source,
    sorted), every other source gets the suffixed key."""
    ordered = sorted(refs, key=lambda r: r.source)
    key = ordered[0].track_key
    owner = holder(index, key) or shown_source(ordered[0])
    out, granted = [], False
    for ref in ordered:
        if not granted and shown_source(ref) == owner:
            out.append(ref)
            granted = True
        else:
            out.append(replace(ref, track_key=suffixed(key, ref.source)))
    return out


def with_content(ref: TrackRef, storage_options: StorageOptions) -> TrackRef:
    """A ref with its content fingerprint, asking the store for it when the listing gave none (a manifest's
    entries); unknown when the store cannot say (the read then names the problem) and for a stem set."""
    if ref.size is not None or ref.version is not None or isinstance(ref, MixRef):
        return ref
    try:
        fs, path = filesystem(ref.source, storage_options)
        info = fs.info(path)
    except Exception:  # noqa: BLE001 - any failure leaves the fingerprint unknown; reading the source reports it
        return ref
    return replace(ref, **content_of(info))


def _same_content(holding: Holding, ref: TrackRef) -> bool:
    return all(old is None or new is None or old == new
               for old, new in ((holding.size, ref.size), (holding.version, ref.version)))


def is_committed(ref: TrackRef, index: KeyIndex) -> bool:
    """Whether a run with this fingerprint committed this source, with this content, under this key (or, for a
    manifest that recorded only keys, this key)."""
    shown = shown_source(ref)
    return any(h.reusable and (h.source is None or (h.source == shown and _same_content(h, ref)))
               for h in index.get(ref.track_key, ()))


def source_record(ref: TrackRef) -> dict[str, Any]:
    """What a run manifest records of a committed source (its ``sources`` list)."""
    return {"track_key": ref.track_key, "source": shown_source(ref), "size": ref.size, "version": ref.version}
