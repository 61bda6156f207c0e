"""Dynamic mixing: how one variant of a simulated mixture is made from isolated stems.

A :class:`MixPlan` is drawn per (seed, track, variant), like an augmentation plan, from a stream of its own
(so adding mixing never changes the augmentation drawn for the same seed). For every target column it
records where the target comes from (the track's own stems, or with ``remix_p`` another track's, at a random
offset), its gain in dB and whether it is dropped (a silent target). The plan is plain data: it travels with
the track through a pipeline and is written next to every row, so any mixture can be rebuilt from it.

:func:`excerpt` and :func:`fit_length` are the two length rules: a remixed stem is cut from its own track at
the drawn offset, and the stems of one track, which may differ by a few samples after resampling, are
padded to a common length, or refused when they differ by more than a tolerance.

A run indexes its stem set once as a :class:`MixCatalog`, so that drawing a variant costs O(log C) in the
catalogue's size C rather than a sort and a scan of all C tracks per variant; the draws are the same.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from stemforge.transforms.seeding import derive_seed

_MIX_STREAM = 0x6D6978  # "mix": the plan's draws never share a stream with the augmentation's


@dataclass(frozen=True)
class StemDraw:
    """One target column of a mixture: the stem-set stems summed into it, from which track, at which offset
    (a fraction of the spare length of a longer track; 0 for the track's own stems), with which gain."""

    target: str
    track: str
    sources: tuple[str, ...]
    offset: float
    gain_db: float
    dropped: bool

    @property
    def ratio(self) -> float:
        """The linear gain (0 when dropped)."""
        return 0.0 if self.dropped else float(10.0 ** (self.gain_db / 20.0))


@dataclass(frozen=True)
class MixPlan:
    """Every random choice of one mixture variant, in target order."""

    stems: tuple[StemDraw, ...]

    @property
    def dropped(self) -> tuple[str, ...]:
        return tuple(s.target for s in self.stems if s.dropped)

    def to_json(self) -> str:
        """The plan as the JSON text stored in each row's ``mix_params`` column."""
        return json.dumps([asdict(s) for s in self.stems], sort_keys=True)


class MixCatalog:
    """A stem set's tracks (key → stem name → URL), indexed once for the remix draws of a whole run.

    For each set of stems a target sums, it keeps the sorted keys of the tracks that have them all. A draw
    then finds its partner by position in that list, skipping the drawing track itself, which is exactly
    the choice a sort and scan of the whole catalogue per variant made, at O(log C) instead of O(C log C).
    """

    def __init__(self, catalog: Mapping[str, Mapping[str, str]], stem_sets: Iterable[Sequence[str]] = ()):
        self.stems: dict[str, dict[str, str]] = {key: dict(stems) for key, stems in catalog.items()}
        self._keys = sorted(self.stems)
        self._having: dict[tuple[str, ...], list[str]] = {}
        for sources in stem_sets:
            self.having(tuple(sources))

    def __len__(self) -> int:
        return len(self.stems)

    def having(self, sources: tuple[str, ...]) -> list[str]:
        """The sorted keys of the tracks that have every stem of ``sources`` (found once per set of stems)."""
        found = self._having.get(sources)
        if found is None:
            found = self._having[sources] = [k for k in self._keys if all(s in self.stems[k] for s in sources)]
        return found

    def partner(self, sources: tuple[str, ...], track_key: str, rng: np.random.Generator) -> str:
        """A track other than ``track_key`` that has ``sources``, uniformly drawn from ``rng`` (one integer
        draw, none when there is no such track; then ``track_key`` itself)."""
        having = self.having(sources)
        at = bisect_left(having, track_key)
        own = at < len(having) and having[at] == track_key
        count = len(having) - own
        if count == 0:
            return track_key
        index = int(rng.integers(count))
        return having[index + 1 if own and index >= at else index]


def draw_mix(seed: int, track_key: str, variant: int, targets: Mapping[str, Sequence[str]],
             catalog: MixCatalog | Mapping[str, Mapping[str, str]], gain_db: tuple[float, float] = (0.0, 0.0),
             remix_p: float = 0.0, drop_p: float = 0.0) -> MixPlan:
    """The plan of one variant of ``track_key``.

    ``targets`` maps each target column to the stem-set stems summed into it; ``catalog`` maps every track of
    the stem set to its stems (name → URL), the partners a remix draws from. The first target always comes
    from the track itself, so a variant is anchored to its track; each other target comes from a different
    track, chosen uniformly among those that have its stems, with probability ``remix_p``. Each target is
    dropped with probability ``drop_p``, but never all of them: if every draw says drop, the first target stays.
    A plain mapping is indexed on the spot, O(C) per call; a run builds one :class:`MixCatalog` for all draws.
    """
    index = catalog if isinstance(catalog, MixCatalog) else MixCatalog(catalog)
    rng = np.random.default_rng([derive_seed(seed, track_key, variant), _MIX_STREAM])
    draws = []
    for number, (target, sources) in enumerate(targets.items()):
        sources = tuple(sources)
        remix = number > 0 and rng.random() < remix_p
        track = index.partner(sources, track_key, rng) if remix else track_key
        offset = float(rng.random()) if track != track_key else 0.0
        gain = float(rng.uniform(*gain_db)) if gain_db[1] > gain_db[0] else float(gain_db[0])
        dropped = bool(rng.random() < drop_p)
        urls = tuple(index.stems[track][s] for s in sources)
        draws.append(StemDraw(target, track, urls, offset, gain, dropped))
    if all(d.dropped for d in draws):
        draws[0] = replace(draws[0], dropped=False)
    return MixPlan(tuple(draws))


def excerpt_start(offset: float, source_length: int, length: int) -> int:
    """The first sample of a ``length``-sample excerpt of a ``source_length``-sample stem at ``offset``."""
    return round(offset * max(source_length - length, 0))


def fit_length(lengths: Mapping[str, int], sample_rate: int, tolerance_seconds: float) -> int:
    """The common length of one track's stems: the longest, when they all lie within ``tolerance_seconds`` of
    it (shorter ones are then padded with zeros); otherwise ValueError naming every stem's length."""
    longest = max(lengths.values())
    if longest - min(lengths.values()) > tolerance_seconds * sample_rate:
        described = ", ".join(f"{name} {n / sample_rate:.3f} s" for name, n in lengths.items())
        raise ValueError(f"stems differ in length ({described}), more than mix.max_length_difference_seconds "
                         f"{tolerance_seconds:g}")
    return longest


def fitted(block: np.ndarray, length: int) -> np.ndarray:
    """``block`` ``[C, n]`` cut or zero-padded to ``length`` samples."""
    if block.shape[1] >= length:
        return block[:, :length]
    return np.pad(block, ((0, 0), (0, length - block.shape[1])))
