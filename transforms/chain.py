"""Reproducible, thread-safe augmentation chains of audiomentations waveform transforms.

audiomentations draws parameters from the process-global ``random`` module,
which threads share and which differs between processes. Here a chain is first
*drawn* for one ``(seed, track_key, variant)``: every random choice comes from a
numpy Generator seeded with :func:`~transforms.seeding.derive_seed` (one
independent child stream per chain position, so editing one entry does not
change the draws of the others) and is frozen into per-plan copies of the
transforms. The resulting :class:`AugmentPlan` is immutable as far as its
output is concerned: the same key gives bit-identical audio in any process,
thread or retry, and plans applied concurrently do not touch each other.

* a :class:`~transforms.linear.LinearTransform` (``ZeroPhaseBiquadLowPass``,
  ``Gain``): ``should_apply``, then its ``draw_parameters``, from the Generator;
  applied lock-free, and streamable.
* any other audiomentations waveform transform: ``should_apply`` and a 63-bit
  sub-seed from the Generator. Such transforms may look at the signal to choose
  their parameters (``Normalize``, ``Shift``…), so they are randomised inside
  :meth:`AugmentPlan.apply`, where their module-level ``random`` /
  ``np.random`` calls are redirected to per-thread generators seeded from the
  sub-seed (:mod:`transforms.rng_isolation`); the process-global generators are
  neither used nor disturbed. Their ``parameters`` appear in
  :attr:`AugmentPlan.params` once ``apply`` has run.

Provenance (:attr:`AugmentPlan.params`) is a list in chain order of plain dicts
``{"transform": ClassName, "applied": bool, ...}``: a linear transform's draw
(``cutoff_hz`` and ``q``, the jittered values used, for the low-pass; ``gain_db``
for Gain), the JSON-safe ``parameters`` of anything else.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import audiomentations
import numpy as np
from audiomentations.core.transforms_interface import BaseWaveformTransform

from stemforge.transforms import rng_isolation
from stemforge.transforms.gain import Gain
from stemforge.transforms.linear import LinearTransform, ReadFn
from stemforge.transforms.seeding import derive_seed
from stemforge.transforms.zero_phase_biquad_lowpass import ZeroPhaseBiquadLowPass

DEFAULT_STREAM_CHUNK_FRAMES = 1 << 18
# ours, by chain name; in the order of their shard row columns
LINEAR_TRANSFORMS: dict[str, type[LinearTransform]] = {"ZeroPhaseBiquadLowPass": ZeroPhaseBiquadLowPass,
                                                        "Gain": Gain}


def resolve_transform(name: str) -> type[BaseWaveformTransform]:
    """The waveform transform class called ``name`` (ours, or audiomentations')."""
    cls = LINEAR_TRANSFORMS.get(name) or getattr(audiomentations, str(name), None)
    if not (isinstance(cls, type) and issubclass(cls, BaseWaveformTransform)):
        message = f"unknown transform {name!r}: not ZeroPhaseBiquadLowPass nor an audiomentations waveform transform"
        raise ValueError(message)  # noqa: TRY004 - a bad config value, not a bad argument type
    return cls


def _json_safe(value: Any) -> Any:
    """``value`` as plain Python (numpy scalars and arrays converted, unknowns repr'd)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return repr(value)


@dataclass
class _Step:
    """One chain position of a drawn plan."""

    name: str
    applied: bool
    transform: BaseWaveformTransform
    params: dict[str, Any] = field(default_factory=dict)
    sub_seed: int | None = None

    @property
    def linear(self) -> bool:
        return isinstance(self.transform, LinearTransform)


class AugmentPlan:
    """A chain with every random parameter drawn and frozen for one (seed, track, variant)."""

    def __init__(self, steps: list[_Step], seed: int, sample_rate: int, num_channels: int) -> None:
        self._steps = steps
        self.seed = seed
        self.sample_rate = sample_rate
        self.num_channels = num_channels
        self._lock = threading.Lock()

    @property
    def params(self) -> list[dict[str, Any]]:
        """Provenance: ``{"transform", "applied", ...params}`` per chain position, in order."""
        with self._lock:
            return [{"transform": s.name, "applied": s.applied, **copy.deepcopy(s.params)} for s in self._steps]

    @property
    def is_streamable(self) -> bool:
        """True when every applied transform is linear (:class:`~transforms.linear.LinearTransform`)."""
        return all(s.linear for s in self._steps if s.applied)

    def _check(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 2 or samples.shape[0] != self.num_channels:
            raise ValueError(f"plan drawn for [{self.num_channels}, N] samples, got shape {samples.shape}")
        return samples

    def _apply_generic(self, step: _Step, samples: np.ndarray) -> np.ndarray:
        """Randomise and apply a third-party transform with this thread's RNGs seeded from the plan."""
        mono = samples.shape[0] == 1 and not step.transform.supports_multichannel
        x = samples[0] if mono else samples
        with rng_isolation.seeded(step.sub_seed):
            transform = copy.deepcopy(step.transform)
            transform.p = 1.0
            transform.randomize_parameters(x, self.sample_rate)
            transform.freeze_parameters()
            out = transform(x, self.sample_rate)
        drawn = {k: v for k, v in transform.parameters.items() if k != "should_apply"}
        with self._lock:
            step.params = _json_safe(drawn)
        out = np.asarray(out, dtype=np.float32)
        return out[np.newaxis] if mono else out

    def apply(self, samples: np.ndarray) -> np.ndarray:
        """The augmented signal, float32 ``[C, N']`` (N' = N unless a transform changes length)."""
        x = self._check(samples)
        for step in self._steps:
            if not step.applied:
                continue
            if step.linear:
                x = np.asarray(step.transform(x, self.sample_rate), dtype=np.float32)
            else:
                x = self._apply_generic(step, x)
        return x

    def apply_stream(self, read: ReadFn, n_frames: int,
                     chunk_frames: int = DEFAULT_STREAM_CHUNK_FRAMES) -> Iterator[np.ndarray]:
        """Output chunks of at most ``chunk_frames`` whose concatenation is ``apply`` of the whole.

        ``read(start, stop)`` returns input frames ``[start, stop)`` as ``[C, stop - start]``;
        it is called several times per range: each low-pass reads its input
        three times, so k stacked low-passes read the track 3^k times. Memory
        is O(chunk_frames) (plus two floats per channel and chunk boundary);
        the low-pass padding reflects the track's ends, not the chunks'.
        Output is bit-identical to :meth:`apply`.
        """
        if not self.is_streamable:
            raise ValueError(f"plan is not streamable: it applies transforms other than "
                             f"{' and '.join(LINEAR_TRANSFORMS)}")
        if chunk_frames <= 0 or n_frames < 0:
            raise ValueError("chunk_frames must be positive and n_frames >= 0")
        return self._stream(read, n_frames, chunk_frames)

    def _stream(self, read: ReadFn, n_frames: int, chunk_frames: int) -> Iterator[np.ndarray]:
        def source(start: int, stop: int) -> np.ndarray:
            block = self._check(read(start, stop))
            if block.shape[1] != stop - start:
                raise ValueError(f"read({start}, {stop}) returned {block.shape[1]} frames")
            return block

        for step in self._steps:
            if not step.applied:
                continue
            source = step.transform.stream(source, n_frames, self.sample_rate, chunk_frames)
        for start in range(0, n_frames, chunk_frames):
            yield np.array(source(start, min(start + chunk_frames, n_frames)), dtype=np.float32)


class AugmentChain:
    """An ordered list of waveform transforms, drawn per track into an :class:`AugmentPlan`."""

    def __init__(self, transforms: Sequence[BaseWaveformTransform]) -> None:
        for transform in transforms:
            if not isinstance(transform, BaseWaveformTransform):
                raise TypeError(f"{transform!r} is not an audiomentations waveform transform")
        self._templates = tuple(copy.deepcopy(t) for t in transforms)

    @property
    def transforms(self) -> tuple[BaseWaveformTransform, ...]:
        """Copies of the configured transforms, in order."""
        return tuple(copy.deepcopy(t) for t in self._templates)

    @classmethod
    def from_config(cls, config: Sequence[Mapping[str, Any]]) -> AugmentChain:
        """Build from ``[{"transform": ClassName, **constructor_kwargs}, ...]``.

        Raises ValueError naming the entry for an unknown class or bad arguments.
        """
        transforms = []
        for index, entry in enumerate(config):
            if not isinstance(entry, Mapping) or "transform" not in entry:
                raise ValueError(f"chain entry {index} must be a mapping with a 'transform' key, got {entry!r}")
            name = entry["transform"]
            transform_cls = resolve_transform(name)
            kwargs = {k: v for k, v in entry.items() if k != "transform"}
            try:
                transforms.append(transform_cls(**kwargs))
            except (TypeError, ValueError, AssertionError) as exc:
                raise ValueError(f"chain entry {index} ({name}): invalid arguments {kwargs!r}: {exc}") from exc
        return cls(transforms)

    def draw(self, seed: int, track_key: str, variant: int, sample_rate: int, num_channels: int) -> AugmentPlan:
        """Draw every random parameter for this (seed, track_key, variant) and freeze them."""
        if sample_rate <= 0 or num_channels <= 0:
            raise ValueError("sample_rate and num_channels must be positive")
        derived = derive_seed(seed, track_key, variant)
        steps = []
        for index, template in enumerate(self._templates):
            rng = np.random.default_rng(np.random.SeedSequence(derived, spawn_key=(index,)))
            step = _Step(name=type(template).__name__, applied=bool(rng.random() < template.p),
                         transform=template)
            if step.applied:
                step = self._freeze(step, template, rng)
            steps.append(step)
        return AugmentPlan(steps, derived, int(sample_rate), int(num_channels))

    @staticmethod
    def _freeze(step: _Step, template: BaseWaveformTransform, rng: np.random.Generator) -> _Step:
        """Draw ``step``'s parameters from ``rng`` into a frozen copy of ``template``."""
        transform = copy.deepcopy(template)
        if isinstance(transform, LinearTransform):
            step.params = transform.draw_parameters(rng)
            transform.freeze(step.params)
        else:
            step.sub_seed = int(rng.integers(0, 2**63))
            transform.freeze_parameters()
        step.transform = transform
        return step


def is_linear(name: str) -> bool:
    """Whether the chain transform called ``name`` is linear: applied to each of a mix run's stems, the stems
    still sum to the mixture."""
    return name in LINEAR_TRANSFORMS


def recorded_draws(params: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """The shard row columns of a plan's provenance (``AugmentPlan.params``): each linear transform's first
    applied draw, None where none was applied."""
    values: dict[str, float | None] = {c: None for cls in LINEAR_TRANSFORMS.values() for c in cls.ROW_COLUMNS}
    for entry in params:
        cls = LINEAR_TRANSFORMS.get(entry.get("transform", ""))
        for column, name in (cls.ROW_COLUMNS.items() if cls and entry.get("applied") else ()):
            if values[column] is None:
                values[column] = float(entry[name])
    return values
