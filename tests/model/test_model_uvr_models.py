"""UVR's model hash, the known-checkpoint table, stem naming, and UVR's aggressiveness."""

from __future__ import annotations

import hashlib
import re

import fsspec
import numpy as np
import pytest
from uvr_reference import uvr_or_skip

from stemforge.model import CheckpointError, adjust_aggression, known_model, secondary_stem, stem_slug, uvr_hash
from stemforge.model.uvr_models import HASH_TAIL_BYTES, known_hashes

# Every primary stem in the table, with the secondary stem UVR pairs it with.
PAIRS = {
    "Instrumental": ("instrumental", "vocals"),
    "Vocals": ("vocals", "instrumental"),
    "No Echo": ("no_echo", "echo"),
    "No Reverb": ("no_reverb", "reverb"),
    "No Woodwinds": ("no_woodwinds", "woodwinds"),
    "No Piano": ("no_piano", "piano"),
    "Noise": ("noise", "no_noise"),
    "Dry": ("dry", "no_dry"),
}


@pytest.mark.parametrize("size", [0, 1000, HASH_TAIL_BYTES, HASH_TAIL_BYTES + 123_457])
def test_uvr_hash_is_md5_of_the_last_10240000_bytes(tmp_path, size):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    path = tmp_path / "model.pth"
    path.write_bytes(data)
    assert HASH_TAIL_BYTES == 10_240_000
    expected = hashlib.md5(data[-HASH_TAIL_BYTES:] if size > HASH_TAIL_BYTES else data).hexdigest()
    assert uvr_hash(path) == uvr_hash(str(path)) == expected
    if size > HASH_TAIL_BYTES:
        assert expected != hashlib.md5(data).hexdigest()


def test_uvr_hash_reads_fsspec_urls():
    data = b"\x01\x02" * 5000
    with fsspec.open("memory://stemforge-tests/uvr/m.pth", "wb") as f:
        f.write(data)
    assert uvr_hash("memory://stemforge-tests/uvr/m.pth") == hashlib.md5(data).hexdigest()


def test_uvr_hash_of_a_missing_file_is_a_one_line_error(tmp_path):
    with pytest.raises(CheckpointError) as exc:
        uvr_hash(tmp_path / "absent.pth")
    assert "absent.pth" in str(exc.value) and "\n" not in str(exc.value)


def test_every_table_entry_resolves_with_sensible_stems(tmp_path):
    ref = uvr_or_skip()
    band_tables = {p.stem for p in ref["modelparams"].glob("*.json")}
    hashes = known_hashes()
    assert len(hashes) == 32  # UVR's 30 plus audio-separator's 2
    for md5 in hashes:
        model = known_model(md5)
        assert model is not None and model.hash == md5 and re.fullmatch(r"[0-9a-f]{32}", md5)
        assert model.band_params in band_tables
        assert model.stems == PAIRS[model.primary_stem]
        assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", stem) for stem in model.stems)
        assert model.flip_aggression == (model.primary_stem == "Vocals")
        assert (model.nout is None) == (model.nout_lstm is None)


def test_known_entries_carry_the_tables_details():
    karaoke = known_model("F6EA8473FF86017B5EBD586CCACF156B ")  # case and whitespace do not matter
    assert karaoke is not None
    assert (karaoke.band_params, karaoke.stems, karaoke.is_karaoke) == ("4band_v2_sn", ("instrumental", "vocals"), True)
    denoise = known_model("44c55d8b5d2e3edea98c2b2bf93071c7")
    assert (denoise.band_params, denoise.nout, denoise.nout_lstm, denoise.stems) == ("4band_v3", 48, 128, ("noise", "no_noise"))
    assert not denoise.flip_aggression  # "Noise" is not one of UVR's non-accompaniment stems
    wind = known_model("0ec76fd9e65f81d8b4fbd13af4826ed8")
    assert (wind.nout, wind.stems, wind.flip_aggression) == (None, ("no_woodwinds", "woodwinds"), False)
    vocals = known_model("911d4048eee7223eca4ee0efb7d29256")
    assert (vocals.stems, vocals.flip_aggression) == (("vocals", "instrumental"), True)
    assert known_model("0" * 32) is None


def test_stem_naming_rules():
    assert [secondary_stem(s) for s in ("Vocals", "Instrumental", "No Echo", "Dry", "Noise")] == [
        "Instrumental",
        "Vocals",
        "Echo",
        "No Dry",
        "No Noise",
    ]
    assert stem_slug("Wind Inst") == "wind_inst" and stem_slug("No Woodwinds") == "no_woodwinds"


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("aggression", [0, 5, 10])
def test_adjust_aggression_equals_uvrs(aggression, flip):
    spec_utils = uvr_or_skip()["spec_utils"]
    mask = np.random.default_rng(aggression).uniform(0, 1, (2, 65, 40)).astype(np.float32)
    split_bin = 21
    expected = spec_utils.adjust_aggr(
        mask.copy(), flip, {"value": aggression / 100, "split_bin": split_bin, "aggr_correction": None}
    )
    ours = adjust_aggression(mask, aggression, split_bin, flip)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, expected)
    assert (ours is mask) == (aggression == 0)


def test_adjust_aggression_exponents_and_batches():
    mask = np.full((3, 2, 10, 4), 0.5)
    out = adjust_aggression(mask, 5, 4, flip=False)
    np.testing.assert_allclose(out[..., :4, :], 0.5 ** (1 + 0.1 / 3))
    np.testing.assert_allclose(out[..., 4:, :], 0.5**1.1)
    flipped = adjust_aggression(mask, 5, 4, flip=True)
    np.testing.assert_allclose(flipped[..., :4, :], 0.5**1.3)
    np.testing.assert_allclose(flipped[..., 4:, :], 0.5**1.9)
    assert np.all(mask == 0.5)  # the input is not modified
