"""transforms.mixing: the plan a mixture variant is drawn from, and the length rules of a track's stems."""

import json
from collections.abc import Iterator, Mapping

import numpy as np
import pytest

from stemforge.transforms import AugmentChain
from stemforge.transforms.mixing import MixCatalog, draw_mix, excerpt_start, fit_length, fitted
from stemforge.transforms.seeding import derive_seed

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


def _old_draws(seed, track_key, variant, targets, catalog, gain_db, remix_p, drop_p):
    """The draws as stemforge made them before the catalogue was indexed: the whole catalogue sorted and
    scanned for partners per variant, on the mixing stream (0x6D6978) of derive_seed(seed, track, variant)."""
    rng = np.random.default_rng([derive_seed(seed, track_key, variant), 0x6D6978])
    ordered = sorted(catalog)
    out = []
    for number, sources in enumerate(targets.values()):
        remix = number > 0 and rng.random() < remix_p
        candidates = [k for k in ordered if k != track_key and set(sources) <= set(catalog[k])] if remix else []
        track = candidates[int(rng.integers(len(candidates)))] if candidates else track_key
        offset = float(rng.random()) if track != track_key else 0.0
        gain = float(rng.uniform(*gain_db)) if gain_db[1] > gain_db[0] else float(gain_db[0])
        out.append([track, offset, gain, bool(rng.random() < drop_p)])
    if all(d[3] for d in out):
        out[0][3] = False
    return [tuple(d) for d in out]


def _catalog(size: int, seed: int) -> dict[str, dict[str, str]]:
    """A stem set whose even tracks have every stem and whose odd ones a random subset (so some are no
    partner for some targets), with keys that do not sort as they are made."""
    rng = np.random.default_rng(seed)
    catalog = {}
    for number in range(size):
        key = f"t{rng.integers(10 ** 6):06d}-{number}"
        names = [s for s in ("vocals", "drums", "bass", "other") if number % 2 == 0 or rng.random() < 0.6]
        catalog[key] = {s: f"{key}/{s}.wav" for s in names}
    return catalog


@pytest.mark.parametrize("size", [1, 2, 3, 10, 300])
def test_an_indexed_catalogue_draws_exactly_what_the_old_sort_and_scan_drew(size):
    targets = {"vocals": ("vocals",), "drums": ("drums",), "rest": ("bass", "other")}
    catalog = _catalog(size, seed=size)
    index = MixCatalog(catalog, targets.values())
    keys = sorted(k for k, stems in catalog.items() if len(stems) == 4)  # a track mixes its own stems too
    remixed = 0
    for seed in (0, 1, 2024):
        for remix_p in (0.0, 0.3, 0.5, 1.0):
            for key in keys[:6] + keys[-3:]:
                for variant in range(8):
                    args = (seed, key, variant, targets)
                    params = ((-6.0, 6.0), remix_p, 0.3)
                    plan = draw_mix(*args, index, *params)
                    assert [(s.track, s.offset, s.gain_db, s.dropped) for s in plan.stems] == _old_draws(
                        *args, catalog, *params)
                    assert plan == draw_mix(*args, catalog, *params)  # a plain mapping, indexed on the spot
                    assert all(s.sources == tuple(catalog[s.track][n] for n in targets[s.target])
                               for s in plan.stems)
                    remixed += sum(s.track != key for s in plan.stems)
    assert remixed > 0 or size <= 2  # one or two tracks may have no partner at all


class _CountingCatalog(Mapping):
    """A catalogue that counts how often it is walked through."""

    def __init__(self, entries: dict) -> None:
        self.entries, self.walks = entries, 0

    def __getitem__(self, key: str) -> dict:
        return self.entries[key]

    def __iter__(self) -> Iterator[str]:
        self.walks += 1
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


def test_a_run_walks_the_catalogue_once_not_once_per_variant():
    counting = _CountingCatalog(CATALOG)
    index = MixCatalog(counting, TARGETS.values())
    plans = [draw_mix(2, key, v, TARGETS, index, (0.0, 0.0), 1.0, 0.0) for key in "abcde" for v in range(20)]
    assert counting.walks == 1
    assert {p.stems[1].track for p in plans} == set("abcde")


def test_lengths():
    assert excerpt_start(0.5, 1000, 400) == 300 and excerpt_start(0.9, 300, 400) == 0
    assert fit_length({"a.wav": 44100, "b.wav": 44000}, 44100, 0.1) == 44100
    with pytest.raises(ValueError, match=r"stems differ in length \(a.wav 1.000 s, b.wav 0.500 s\), more than "
                                         r"mix.max_length_difference_seconds 0.1"):
        fit_length({"a.wav": 44100, "b.wav": 22050}, 44100, 0.1)
    block = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(fitted(block, 5), [[1, 1, 1, 0, 0]] * 2)
    np.testing.assert_array_equal(fitted(block, 2), [[1, 1]] * 2)
