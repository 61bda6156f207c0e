"""A mix run's track: each target stem decoded, cut, gained and summed as its MixPlan says, into local scratch
waveforms (block by block, so a long track costs no more memory than a short one). Beam-free; used by
``pipeline.engine.track.PreparedTrack``."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Protocol

import numpy as np

from stemforge.pipeline.storage import redact_uri
from stemforge.transforms.mixing import MixPlan, excerpt_start, fit_length, fitted


class ScratchLike(Protocol):
    """What mixing needs of a scratch waveform (``pipeline.engine.track.ScratchAudio``)."""

    length: int

    def read(self, start: int, stop: int) -> np.ndarray: ...

    def write(self, start: int, block: np.ndarray) -> None: ...


Scratch = Callable[[str, int], ScratchLike]


def mix_targets(plan: MixPlan, track_key: str, decode: Callable[[str, str], ScratchLike], scratch: Scratch,
                sample_rate: int, tolerance_seconds: float, chunk: int) -> dict[str, ScratchLike]:
    """Each target's waveform before augmentation, all of the track's own length.

    ``decode(url, name)`` decodes and resamples one stem file into a scratch waveform; every file is decoded
    once. The track's own stems set the length (padded to the longest, or refused past the tolerance);
    a remixed target is the excerpt of its track's stems at the drawn offset, zero-padded if that track is
    shorter; a dropped target is silence.
    """
    urls = list(dict.fromkeys(url for draw in plan.stems for url in draw.sources))
    decoded = {url: decode(url, f"source-{number}") for number, url in enumerate(urls)}
    own = {url: decoded[url].length for draw in plan.stems if draw.track == track_key for url in draw.sources}
    named = {posixpath.basename(redact_uri(url)) or url: n for url, n in own.items()}
    length = fit_length(named if len(named) == len(own) else {redact_uri(u): n for u, n in own.items()},
                        sample_rate, tolerance_seconds)
    targets = {}
    for draw in plan.stems:
        starts = [(decoded[url], excerpt_start(draw.offset, decoded[url].length, length)) for url in draw.sources]
        out = scratch(f"target-{draw.target}", length)
        ratio = np.float32(draw.ratio)
        for position in range(0, length, chunk):
            n = min(chunk, length - position)
            block = np.zeros((2, n), np.float32)
            if not draw.dropped:
                for source, start in starts:
                    block += fitted(source.read(start + position, start + position + n), n)
                block *= ratio
            out.write(position, block)
        targets[draw.target] = out
    return targets


def sum_into(out: ScratchLike, parts: list[ScratchLike], chunk: int) -> ScratchLike:
    """``out`` = the sample-wise sum of ``parts`` (all of ``out``'s length), block by block."""
    for position in range(0, out.length, chunk):
        stop = min(position + chunk, out.length)
        block = np.zeros((2, stop - position), np.float32)
        for part in parts:
            block += part.read(position, stop)
        out.write(position, block)
    return out
