"""Stable per-(seed, track, variant) seeds for augmentation.

Python's ``hash()`` is salted per process, so seeds are derived with SHA-256:
the same inputs give the same seed in any process, thread, machine or retry.
"""

from __future__ import annotations

import hashlib
import json
import operator

_DOMAIN = b"stemforge.augment.v1\x00"


def derive_seed(seed: int, track_key: str, variant: int) -> int:
    """A 63-bit seed from the run seed, the track's key and the variant index."""
    if not isinstance(track_key, str):
        raise TypeError(f"track_key must be str, got {type(track_key).__name__}")
    payload = json.dumps([operator.index(seed), track_key, operator.index(variant)]).encode()
    return int.from_bytes(hashlib.sha256(_DOMAIN + payload).digest()[:8], "big") >> 1
