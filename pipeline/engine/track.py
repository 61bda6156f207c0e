"""One track variant prepared in bounded memory, and the reader of its masks.

A track is decoded and resampled block by block into a local scratch file (read and written by range, never
memory-mapped), augmented as a stream (the low-pass's padding at the track's ends only), and every later step
reads frame ranges from that file: the peak pass, the model windows, the stems and the Parquet rows. So an
hour-long file needs no more memory than a minute-long one, and the results equal the whole-track computation
of ``model.Separator``.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import torch

from stemforge.model import Aggression, MaskAssembler, WindowGrid, mask_grids
from stemforge.config.run import Config
from stemforge.pipeline.engine.inference import ResolvedModel
from stemforge.pipeline.engine.mixture import mix_targets, sum_into
from stemforge.pipeline.scratch import make_scratch
from stemforge.pipeline.engine.frame_source import Encode, MaskRange
from stemforge.pipeline.engine.layout import FrameReader, FrameSource, frame_layout
from stemforge.pipeline.storage import StorageOptions, options_for
from stemforge.transforms import (
    AugmentChain,
    AugmentPlan,
    Resampler,
    derive_seed,
    open_audio,
    resampled_length,
    to_model_channels,
)
from stemforge.transforms.mixing import MixPlan


class TrackError(Exception):
    """A per-track failure with the stage it happened in; ``cause`` is the original error."""

    def __init__(self, stage: str, cause: Exception) -> None:
        super().__init__(str(cause))
        self.stage = stage
        self.cause = cause


@dataclass(frozen=True)
class TrackMeta:
    """What every stage needs to know about a prepared track variant (small, picklable)."""

    source: str
    track_key: str
    variant: int
    seed: int
    sample_rate: int
    num_samples: int
    num_frames: int
    peak: float
    params: tuple[dict[str, Any], ...] = field(default=())
    mix: MixPlan | None = None  # a mix run's draws (the mixture is rebuilt from them)
    decoded: str = ""  # which decoder read the source(s) and whether the length was declared or counted

    @property
    def audio_seconds(self) -> float:
        return self.num_samples / self.sample_rate


def grids(meta: TrackMeta, config: Config, offset: int) -> list[WindowGrid]:
    """The window grids of vocal-remover's inference: one pass, or two with TTA."""
    return mask_grids(meta.num_frames, config.model.cropsize, offset, config.model.tta)


class ScratchAudio:
    """A stereo float32 waveform in a local scratch file, written and read by sample range.

    Reads and writes go through ``pread``/``pwrite`` rather than a memory map: the kernel's page cache
    still holds the data, but a long track's pages are never mapped into the worker, so its resident
    memory (what ``top`` shows) does not grow with the track.
    """

    def __init__(self, path: str, length: int) -> None:
        self.length = length
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.ftruncate(self._fd, 2 * length * 4)

    def write(self, start: int, block: np.ndarray) -> None:
        """Store ``block`` ``[2, n]`` at samples ``[start, start + n)``."""
        block = np.asarray(block, np.float32)
        for channel in range(2):
            os.pwrite(self._fd, np.ascontiguousarray(block[channel]).data, 4 * (channel * self.length + start))

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` (clipped to the waveform) as float32 ``[2, n]``."""
        start, stop = min(max(start, 0), self.length), min(max(stop, 0), self.length)
        out = np.empty((2, max(stop - start, 0)), np.float32)
        for channel in range(2):
            data = os.pread(self._fd, out.shape[1] * 4, 4 * (channel * self.length + start))
            out[channel] = np.frombuffer(data, np.float32)
        return out

    def close(self) -> None:
        os.close(self._fd)


class PreparedTrack:
    """A track variant decoded, resampled and augmented into a local scratch folder.

    Use as a context manager: the scratch folder is removed on exit.
    """

    def __init__(self, source: str, track_key: str, variant: int, config: Config, storage_options: StorageOptions,
                 chain: AugmentChain, model: ResolvedModel, mix: MixPlan | None = None) -> None:
        self._dir = make_scratch("track-")
        self._files: list[ScratchAudio] = []
        self._decoded: list[str] = []
        self._frames: FrameSource | None = None
        self.targets: dict[str, ScratchAudio] = {}
        try:
            self._prepare(source, track_key, variant, config, storage_options, chain, model, mix)
        except BaseException:
            self._remove()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._remove()

    def close(self) -> None:
        """Remove the scratch folder (what leaving the ``with`` block does)."""
        self._remove()

    def scratch_path(self, name: str) -> str:
        """A path in the track's local scratch folder (removed with it)."""
        return os.path.join(self._dir, name)

    def _remove(self) -> None:
        if self._frames is not None:
            self._frames.close()
        for scratch in self._files:
            scratch.close()
        self._files = []
        self.samples = self.clean = None
        self.targets = {}
        shutil.rmtree(self._dir, ignore_errors=True)

    def _scratch(self, name: str, length: int) -> ScratchAudio:
        scratch = ScratchAudio(f"{self._dir}/{name}.f32", length)
        self._files.append(scratch)
        return scratch

    def _prepare(self, source: str, track_key: str, variant: int, config: Config,
                 storage_options: StorageOptions, chain: AugmentChain, resolved: ResolvedModel,
                 mix: MixPlan | None) -> None:
        chunk = max(int(config.run.chunk_seconds * config.audio.sample_rate), 1)
        clean_targets: dict[str, ScratchAudio] = {}
        try:
            if mix is None:
                clean = self._decode(source, config, options_for(source, storage_options))
            else:
                clean_targets = mix_targets(
                    mix, track_key, lambda url, name: self._decode(url, config, options_for(url, storage_options),
                                                                    name),
                    self._scratch, config.audio.sample_rate, config.mix.max_length_difference_seconds, chunk)
        except Exception as exc:
            raise TrackError("read", exc) from exc
        try:
            plan = chain.draw(config.augment.seed, track_key, variant, config.audio.sample_rate, 2)
            if mix is None:
                samples = self._augment(clean, plan, config)
            else:  # the chain is linear (config checks), so the augmented targets sum to the augmented mixture
                self.targets = {t: self._augment(s, plan, config, f"augmented-{t}") for t, s in clean_targets.items()}
                length = next(iter(self.targets.values())).length
                samples = sum_into(self._scratch("mixture", length), list(self.targets.values()), chunk)
                clean = samples  # the un-augmented mixture is summed only when it differs and is kept
                if config.augment.chain and config.augment.keep_clean:
                    clean = sum_into(self._scratch("clean", length), list(clean_targets.values()), chunk)
        except Exception as exc:
            raise TrackError("augment", exc) from exc
        self.samples = samples
        self.clean = clean if config.augment.keep_clean else None
        length = samples.length
        model = config.model
        try:
            readers = {"mix": self.read, "clean": self.read_clean,
                       **{f"target:{t}": scratch.read for t, scratch in self.targets.items()}}
            self.layout = frame_layout(resolved, model)
            self._frames = self.layout.open(readers, length, self._dir, block_frames=4 * model.cropsize,
                                            block_samples=chunk)
            peak = self._frames.peak_pass("mix")
        except Exception as exc:
            raise TrackError("separate", exc) from exc
        seed = derive_seed(config.augment.seed, track_key, variant)
        self.meta = TrackMeta(source, track_key, variant, seed, config.audio.sample_rate, length, self.frames().total,
                              peak, tuple(plan.params), mix, ",".join(sorted(set(self._decoded))))

    def _decode(self, source: str, config: Config, options: dict[str, Any], name: str = "clean") -> ScratchAudio:
        """Decode block by block, convert to stereo and resample into the scratch file ``name``."""
        sr = config.audio.sample_rate
        with open_audio(source, storage_options=options, scratch_dir=self._dir) as reader:
            info = reader.info
            self._decoded.append(f"{info.decoder}:{info.length}")
            length = resampled_length(info.frames, info.sample_rate, sr)
            clean = self._scratch(name, length)
            resampler = Resampler(info.sample_rate, sr, 2)
            block = max(int(config.run.chunk_seconds * info.sample_rate), 1)
            written = 0
            for number, samples in enumerate(reader.blocks(block), 1):
                stereo = to_model_channels(samples, config.audio.multichannel, uri=source)
                out = resampler.process(stereo, last=number * block >= info.frames)[:, : length - written]
                clean.write(written, out)
                written += out.shape[1]
        if written != length:
            raise RuntimeError(f"{source}: resampler gave {written} samples, expected {length}")
        return clean

    def _augment(self, clean: ScratchAudio, plan: AugmentPlan, config: Config,
                 name: str = "augmented") -> ScratchAudio:
        """The augmented waveform: streamed when every transform allows it, else whole."""
        if not config.augment.chain:
            return clean
        length = clean.length
        samples = self._scratch(name, length)
        if plan.is_streamable:
            position = 0
            chunk = max(int(config.run.chunk_seconds * config.audio.sample_rate), 1)
            for out in plan.apply_stream(clean.read, length, chunk):
                samples.write(position, out)
                position += out.shape[1]
        else:
            samples.write(0, plan.apply(clean.read(0, length)))
        return samples

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop) of the augmented waveform the model sees."""
        return self.samples.read(start, stop)

    def read_clean(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop) of the un-augmented waveform (keep_clean only)."""
        return self.clean.read(start, stop)

    def frames(self, padded: bool = False, clean: bool = False) -> FrameReader:
        """The spectrogram frames the model reads (of the clean waveform with ``clean``); ``padded``:
        of the waveform followed by zeros, which the stems are inverted from."""
        return self._frames.frames("clean" if clean else "mix", padded)

    def target_frames(self, target: str, padded: bool = False) -> FrameReader:
        """The spectrogram frames of one of a mix run's augmented target stems."""
        return self._frames.frames(f"target:{target}", padded)

    def columns(self, spec: np.ndarray, mask: np.ndarray | None, dtype: np.dtype, frames: int) -> list[np.ndarray]:
        """A row's magnitude columns of frames ``spec`` (``FrameSource.columns``)."""
        return self._frames.columns(spec, mask, dtype, frames)

    def synthesise(self, masks: MaskRange, encode: Encode) -> None:
        """The two stems of the mixture under ``masks``, block by block into ``encode(k, samples)``
        (``FrameSource.synthesise``)."""
        self._frames.synthesise(masks, encode)

    def windows(self, passes: list[WindowGrid]) -> Iterator[tuple[int, int, np.ndarray | torch.Tensor]]:
        """(pass, index, peak-normalised magnitude window) for every model window of the grids ``passes``
        (``grids``), in order (on the model's device when the spectrograms are computed there)."""
        cache = self.frames()
        peak = self.meta.peak if self.meta.peak > 0 else 1.0
        for pass_index, grid in enumerate(passes):
            for i in grid.contributing():
                start, stop = grid.input_span(i)
                yield pass_index, i, self._frames.window(cache.get(start, stop), peak)


class MaskReader(MaskAssembler):
    """The track's mask, frame range by frame range (``model.MaskAssembler``: ``model.Separator``'s
    procedure), from the windows' centre masks that ``load_window(pass, window)`` reads back from the
    track's scratch file.

    Consecutive ranges (a row segment, a block of stems) mostly fall in the window the last range read, and
    the artifact merge reads every window once up front, so the last few windows read are kept: at most
    ``CACHED_WINDOWS`` (about 2 MiB each at 1025 bins and a 256-frame roi), enough for both TTA passes of
    the rows' and the stems' current positions."""

    CACHED_WINDOWS = 8

    def __init__(self, meta: TrackMeta, passes: list[WindowGrid], config: Config,
                 load_window: Callable[[int, int], np.ndarray], aggression: Aggression | None = None) -> None:
        threshold = config.model.postprocess_threshold if config.model.postprocess else None
        super().__init__(meta.num_frames, passes, functools.lru_cache(self.CACHED_WINDOWS)(load_window),
                         aggression, threshold)
