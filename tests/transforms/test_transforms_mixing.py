"""transforms.mixing: the plan a mixture variant is drawn from, and the length rules of a track's stems."""

import json

import numpy as np
import pytest

from transforms import AugmentChain
from transforms.mixing import draw_mix, excerpt_start, fit_length, fitted

CATALOG = {key: {"vocals": f"{key}/v.wav", "drums": f"{key}/d.wav", "bass": f"{key}/b.wav"} for key in "abcde"}
CATALOG["f"] = {"vocals": "f/v.wav"}  # no drums or bass: never a partner for them
TARGETS = {"vocals": ("vocals",), "instruments": ("drums", "bass")}


def test_the_same_seed_track_and_variant_give_the_same_plan():
    first = draw_mix(7, "a", 1, TARGETS, CATALOG, (-6.0, 6.0), 0.5, 0.2)
    assert first == draw_mix(7, "a", 1, TARGETS, CATALOG, (-6.0, 6.0), 0.5, 0.2)
    others = {draw_mix(seed, "a", variant, TARGETS, CATALOG, (-6.0, 6.0), 0.5, 0.2)
              for seed in (7, 8) for variant in (0, 1, 2)}
    assert len(others) == 6


def test_a_remix_takes_another_track_that_has_the_stems():
    plans = [draw_mix(1, "a", v, TARGETS, CATALOG, (0.0, 0.0), 1.0, 0.0) for v in range(40)]
    for plan in plans:
        vocals, instruments = plan.stems
        assert vocals.track == "a" and vocals.offset == 0.0 and vocals.sources == ("a/v.wav",)
        assert instruments.track in "bcde" and 0.0 <= instruments.offset < 1.0
        assert instruments.sources == (f"{instruments.track}/d.wav", f"{instruments.track}/b.wav")
    assert {p.stems[1].track for p in plans} == set("bcde")  # uniform over the partners


def test_gains_lie_in_range_and_no_remix_keeps_the_track():
    for v in range(30):
        plan = draw_mix(3, "b", v, TARGETS, CATALOG, (-6.0, 3.0), 0.0, 0.0)
        assert all(-6.0 <= s.gain_db <= 3.0 and s.track == "b" and not s.dropped for s in plan.stems)
        assert all(np.isclose(s.ratio, 10 ** (s.gain_db / 20)) for s in plan.stems)


def test_never_every_target_is_dropped():
    plans = [draw_mix(5, "c", v, TARGETS, CATALOG, (0.0, 0.0), 0.0, 0.95) for v in range(50)]
    assert all(len(p.dropped) < 2 for p in plans)
    assert any(p.dropped == ("instruments",) for p in plans)
    assert all(p.stems[0].ratio == 0.0 for p in plans if "vocals" in p.dropped)
    record = json.loads(plans[0].to_json())
    assert [d["target"] for d in record] == ["vocals", "instruments"] and set(record[0]) == {
        "target", "track", "sources", "offset", "gain_db", "dropped"}


def test_mixing_draws_leave_the_augmentation_draws_alone():
    chain = AugmentChain.from_config([{"transform": "Gain", "min_gain_db": -6, "max_gain_db": 6, "p": 0.5}])
    before = chain.draw(9, "a", 0, 44100, 2).params
    draw_mix(9, "a", 0, TARGETS, CATALOG, (-6.0, 6.0), 0.5, 0.5)
    assert chain.draw(9, "a", 0, 44100, 2).params == before


def test_lengths():
    assert excerpt_start(0.5, 1000, 400) == 300 and excerpt_start(0.9, 300, 400) == 0
    assert fit_length({"a.wav": 44100, "b.wav": 44000}, 44100, 0.1) == 44100
    with pytest.raises(ValueError, match=r"stems differ in length \(a.wav 1.000 s, b.wav 0.500 s\), more than "
                                         r"mix.max_length_difference_seconds 0.1"):
        fit_length({"a.wav": 44100, "b.wav": 22050}, 44100, 0.1)
    block = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(fitted(block, 5), [[1, 1, 1, 0, 0]] * 2)
    np.testing.assert_array_equal(fitted(block, 2), [[1, 1]] * 2)
