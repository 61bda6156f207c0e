"""Band tables: the shipped files are UVR's, and they read as audio-separator's ModelParameters reads them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
from uvr_reference import uvr_or_skip

from stemforge.transforms import multiband as mb
from stemforge.transforms.bands import BandParams, BandParamsError, list_band_params, load_band_params, parse_band_params

SHIPPED = Path(__file__).resolve().parents[2] / "transforms" / "bandparams"
MODEL_TABLES = ["4band_v2", "4band_44100", "4band_v3", "3band_44100_msb2", "2band_32000",
                "1band_sr44100_hl1024", "4band_v4_ms_fullband"]
BAND_KEYS = ["sr", "hl", "n_fft", "crop_start", "crop_stop", "res_type", "lpf_start", "lpf_stop",
             "hpf_start", "hpf_stop", "convert_channels"]


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return uvr_or_skip()


def test_builtin_tables_are_uvrs_published_files(reference) -> None:
    names = list_band_params()
    assert set(MODEL_TABLES) <= set(names)
    assert names == sorted(p.stem for p in reference["modelparams"].glob("*.json"))
    for name in names:
        assert json.loads((SHIPPED / f"{name}.json").read_text()) == json.loads(
            (reference["modelparams"] / f"{name}.json").read_text()), name


@pytest.mark.parametrize("name", sorted(p.stem for p in SHIPPED.glob("*.json")))
def test_every_table_reads_as_model_parameters_does(reference, name: str) -> None:
    ours = load_band_params(name)
    theirs = reference["ModelParameters"](str(reference["modelparams"] / f"{name}.json")).param
    assert ours.name == name
    assert (ours.sr, ours.bins, ours.pre_filter_start, ours.pre_filter_stop) == (
        theirs["sr"], theirs["bins"], theirs["pre_filter_start"], theirs["pre_filter_stop"])
    for flag in ("mid_side", "mid_side_b", "mid_side_b2", "stereo_w", "stereo_n", "reverse"):
        assert getattr(ours, flag) == theirs[flag], flag
    assert len(ours.bands) == len(theirs["band"])
    for number, band in enumerate(ours.bands, start=1):
        for key in BAND_KEYS:
            assert getattr(band, key) == theirs["band"][number].get(key), (number, key)


def test_n_bins_replaces_bins_and_n_fft_is_twice_bins() -> None:
    table = load_band_params("4band_v4_ms_fullband")
    assert (table.bins, table.n_fft, table.top.n_fft) == (896, 1792, 1152)
    assert [b.convert_channels for b in table.bands] == ["mid_side"] * 4
    assert load_band_params("4band_v3_sn").bins == 672


def test_a_table_is_frozen_and_passes_through() -> None:
    table = load_band_params("4band_v2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        table.bins = 1  # type: ignore[misc]
    assert load_band_params(table) is table
    assert [b.rows for b in table.bands] == [85, 83, 199, 305]
    assert (table.bands[0].has_highpass, table.top.has_highpass) == (False, True)


def test_path_and_fsspec_url(tmp_path: Path) -> None:
    text = (SHIPPED / "4band_44100.json").read_text()
    local = tmp_path / "custom.json"
    local.write_text(text)
    from_path = load_band_params(local)
    assert from_path.name == str(local)
    assert from_path.bands == load_band_params("4band_44100").bands
    with fsspec.open("memory://tables/custom.json", "w") as f:
        f.write(text)
    assert load_band_params("memory://tables/custom.json").bands == from_path.bands


def _one_line(exc: pytest.ExceptionInfo[BandParamsError], *parts: str) -> None:
    message = str(exc.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, message


def test_missing_tables(tmp_path: Path) -> None:
    with pytest.raises(BandParamsError) as exc:
        load_band_params("5band_nonexistent")
    _one_line(exc, "'5band_nonexistent'", "built-in", "4band_v2")
    with pytest.raises(BandParamsError) as exc:
        load_band_params(tmp_path / "absent.json")
    _one_line(exc, "absent.json", "cannot read")


def test_secrets_never_appear_in_errors() -> None:
    with pytest.raises(BandParamsError) as exc:
        load_band_params("memory://user:hunter22@host/none.json", storage_options={"token": "sekrit-token"})
    assert "hunter22" not in str(exc.value) and "sekrit-token" not in str(exc.value)


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    return path


def test_invalid_tables(tmp_path: Path) -> None:
    good = json.loads((SHIPPED / "4band_v2.json").read_text())
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{nope")
    with pytest.raises(BandParamsError) as exc:
        load_band_params(bad_json)
    _one_line(exc, "bad.json", "not JSON")
    cases = [
        ({"bins": 10}, "'band' object"),
        ({**good, "band": {"1": good["band"]["1"], "3": good["band"]["3"]}}, "band keys must be 1..N"),
        ({**good, "band": {**good["band"], "2": {"sr": 7350}}}, "missing or invalid entry"),
        ({**good, "bins": 500}, "more than bins=500"),
        ({**good, "band": {**good["band"], "4": {**good["band"]["4"], "convert_channels": "spin"}}}, "band 4"),
        ({**good, "band": {**good["band"], "3": {**good["band"]["3"], "hl": 161}}}, "band 3: hop 161"),
        ({**good, "band": {**good["band"], "1": {**good["band"]["1"], "crop_stop": 400}}}, "band 1: crop"),
        ({**good, "band": {**good["band"], "2": {k: v for k, v in good["band"]["2"].items() if k != "hpf_stop"}}},
         "middle band"),
        ({**good, "sr": 48000}, "top band rate"),
    ]
    for data, part in cases:
        with pytest.raises(BandParamsError) as exc:
            load_band_params(_write(tmp_path, data))
        _one_line(exc, "t.json", part)


def test_parse_defaults() -> None:
    table = parse_band_params({"bins": 4, "band": {"1": {"sr": 44100, "hl": 4, "n_fft": 8, "crop_start": 0,
                                                          "crop_stop": 4, "res_type": "polyphase"}}}, "tiny")
    assert isinstance(table, BandParams)
    assert (table.sr, table.pre_filter_start, table.pre_filter_stop, table.mid_side, table.reverse) == (
        44100, -1, -1, False, False)
    assert table.top.lpf_start is None and not table.top.has_highpass


# ---- the tables' resamplers ------------------------------------------------------------------------


@pytest.mark.parametrize(("sr_in", "sr_out", "res_type"), [
    (44100, 14700, "polyphase"), (22050, 11025, "polyphase"), (44100, 32000, "sinc_medium"),
    (32000, 6000, "sinc_fastest"), (7350, 14700, "sinc_fastest"), (44100, 33075, "sinc_best")])
def test_resample_band_is_librosa_resample(sr_in: int, sr_out: int, res_type: str) -> None:
    """Bit-equal to librosa.resample, the length trim/pad to ceil(n · ratio) included."""
    librosa = pytest.importorskip("librosa")
    x = np.random.default_rng(8).standard_normal((2, 4001)).astype(np.float32)
    ours = mb.resample_band(x, sr_in, sr_out, res_type)
    theirs = librosa.resample(x, orig_sr=sr_in, target_sr=sr_out, res_type=res_type)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape == (2, mb.librosa_length(4001, sr_in, sr_out))
    assert np.array_equal(ours, theirs)
    assert mb.resample_band(x, sr_in, sr_in, res_type) is x
    with pytest.raises(ValueError, match="kaiser_fast"):
        mb.resample_band(x, sr_in, sr_out, "kaiser_fast")


def test_only_one_shipped_table_needs_resampy() -> None:
    """kaiser_* bands sit at 44.1 kHz (never resampled) except 1band_sr32000_hl512's top band."""
    for name in list_band_params():
        if name == "1band_sr32000_hl512":
            with pytest.raises(BandParamsError, match=r"'1band_sr32000_hl512': band 1 resamples 44100 -> 32000 Hz"):
                mb.check_resamplers(load_band_params(name))
        else:
            mb.check_resamplers(load_band_params(name))
    with pytest.raises(BandParamsError, match="kaiser_fast"):
        mb.analyse(np.zeros((2, 2000), np.float32), load_band_params("1band_sr32000_hl512"), False)
