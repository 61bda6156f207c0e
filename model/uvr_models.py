"""UVR's known VR checkpoints: the hash UVR identifies a file by, and what UVR's table says about it.

``uvr_model_data.json`` is our copy of UVR's table (30 entries) plus the two
audio-separator adds: MD5 hash → band table, primary stem and, for some VR 5.1
models, nout/nout_lstm. The network itself is always detected from the
weights (``model.detect``); the table supplies what the weights cannot say:
the band table, the stem names and whether aggression is flipped.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

import fsspec

from stemforge.model.checkpoint import checkpoint_error
from stemforge.transforms.redaction import redact_uri

HASH_TAIL_BYTES = 10_000 * 1024
"""UVR hashes only the file's last 10,240,000 bytes (the whole file when it is smaller)."""

NON_ACCOMPANIMENT_STEMS = frozenset(
    {"Vocals", "Other", "Bass", "Drums", "Guitar", "Piano", "Synthesizer", "Strings", "Woodwinds", "Brass", "Wind Inst"}
)
"""Primary stems for which UVR flips aggression (``aggr = 1 - aggr``)."""

_STEM_PAIRS = {"Vocals": "Instrumental", "Instrumental": "Vocals"}
_CHUNK = 1 << 20


@dataclass(frozen=True)
class KnownModel:
    """One entry of UVR's table.

    ``stems`` are snake_case names of mask·X (the primary stem) and
    (1 − mask)·X, e.g. ``("instrumental", "vocals")`` or ``("no_echo", "echo")``.
    ``nout``/``nout_lstm`` are None where the table omits them (the weights
    decide). ``flip_aggression`` is True when the primary stem is a
    non-accompaniment stem.
    """

    hash: str
    band_params: str
    primary_stem: str
    stems: tuple[str, str]
    nout: int | None
    nout_lstm: int | None
    is_karaoke: bool
    flip_aggression: bool


def secondary_stem(primary: str) -> str:
    """UVR's partner of a primary stem: Vocals↔Instrumental, "No X"→"X", otherwise "X"→"No X"."""
    if primary in _STEM_PAIRS:
        return _STEM_PAIRS[primary]
    if primary.startswith("No "):
        return primary[len("No ") :]
    return f"No {primary}"


def stem_slug(name: str) -> str:
    """A UVR stem name in snake_case: "No Echo" → "no_echo", "Wind Inst" → "wind_inst"."""
    return "_".join(name.lower().split())


FLIPPED_STEMS = frozenset(stem_slug(s) for s in NON_ACCOMPANIMENT_STEMS)
"""The same stems as snake_case stem names (``vocals``, ``wind_inst``): a first stem among them flips aggression."""


def uvr_hash(path_or_url: str | os.PathLike[str], storage_options: Mapping | None = None) -> str:
    """UVR's model hash: hex MD5 of the file's last 10,240,000 bytes, or of all of it when smaller.

    Reads through fsspec like ``load_checkpoint``, fetching only the tail.
    A read failure is a one-line ``CheckpointError`` naming the file.
    """
    digest = hashlib.md5(usedforsecurity=False)
    try:
        fs, fs_path = fsspec.core.url_to_fs(os.fspath(path_or_url), **dict(storage_options or {}))
        size = fs.size(fs_path)
        with fs.open(fs_path, "rb") as f:
            if size is None:  # a server that does not say: read it all, keep the tail
                digest.update(f.read()[-HASH_TAIL_BYTES:])
                return digest.hexdigest()
            f.seek(max(size - HASH_TAIL_BYTES, 0))
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                digest.update(chunk)
    except Exception as exc:  # noqa: BLE001 - any storage failure becomes one scrubbed CheckpointError naming the file
        raise checkpoint_error(f"cannot read checkpoint {redact_uri(path_or_url)}", exc, path_or_url, storage_options,
                            io=True) from None
    return digest.hexdigest()


@functools.cache
def _table() -> dict[str, dict]:
    text = importlib.resources.files(__package__).joinpath("uvr_model_data.json").read_text(encoding="utf-8")
    return json.loads(text)


def known_hashes() -> frozenset[str]:
    """Every hash in the table."""
    return frozenset(_table())


def known_model(md5: str) -> KnownModel | None:
    """The table's entry for a ``uvr_hash`` value (case-insensitive), or None for an unknown file."""
    key = md5.strip().lower()
    entry = _table().get(key)
    if entry is None:
        return None
    primary = entry["primary_stem"]
    return KnownModel(
        hash=key,
        band_params=entry["vr_model_param"],
        primary_stem=primary,
        stems=(stem_slug(primary), stem_slug(secondary_stem(primary))),
        nout=entry.get("nout"),
        nout_lstm=entry.get("nout_lstm"),
        is_karaoke=bool(entry.get("is_karaoke", False)),
        flip_aggression=primary in NON_ACCOMPANIMENT_STEMS,
    )
