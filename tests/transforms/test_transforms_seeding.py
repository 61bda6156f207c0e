"""derive_seed: stable, distinct, typed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stemforge.transforms import derive_seed


def test_pinned_values_never_change():
    # Changing these silently changes every augmentation ever drawn: bump the domain tag instead.
    assert derive_seed(0, "a", 0) == 6304683538386930138
    assert derive_seed(1234, "artist/track.flac", 3) == 4060195574504973524


def test_same_in_another_process_with_other_hash_seed():
    code = "from stemforge.transforms import derive_seed; print(derive_seed(1234, 'artist/track.flac', 3))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert int(out.stdout) == derive_seed(1234, "artist/track.flac", 3)


def test_distinct_inputs_give_distinct_63_bit_seeds():
    seeds = {derive_seed(s, k, v) for s in range(3) for k in ("a", "b", "a/b", "") for v in range(3)}
    assert len(seeds) == 36
    assert all(0 <= s < 2**63 for s in seeds)
    assert derive_seed(1, "12", 3) != derive_seed(11, "2", 3)  # no ambiguity from concatenation


@pytest.mark.parametrize(("seed", "key", "variant"), [(1.5, "a", 0), (1, 2, 0), (1, "a", "0")])
def test_rejects_wrong_types(seed, key, variant):
    with pytest.raises(TypeError):
        derive_seed(seed, key, variant)
