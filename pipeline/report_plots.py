"""The figures of `stemforge report`, returned as inline PNG ``data:`` URIs, and the reductions they need
(spectrogram frames averaged to the picture's width, waveform envelopes read block by block, the ranges an
augmentation chain allows).

Figures are built on :class:`matplotlib.figure.Figure` directly (the Agg canvas, no pyplot), so nothing
global is touched and nothing has to be closed; a low dpi and a 256-colour palette keep the page small.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import soundfile as sf
from audiomentations.core.transforms_interface import BaseWaveformTransform
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator
from PIL import Image

from stemforge.transforms.linear import LinearTransform

DPI = 90
WIDTH = 10.0  # inches: about 900 pixels, the width of the page's content column
COLOURS = ("#1f5fa8", "#d9822b", "#3a8f5c", "#8e44ad")
MAX_FRAMES = 1500  # spectrogram frames drawn per picture; longer tracks are averaged in blocks
ENVELOPE_POINTS = 1200  # min/max pairs drawn per waveform
DB_RANGE = 80.0  # a colour scale spans at most this far below the loudest value
LOWEST_HZ = 30.0  # the bottom of a spectrogram's log frequency axis
# the shards' recorded augmentation columns (the linear transforms' ROW_COLUMNS), in the order the report reads them
PARAMETERS = {"lowpass_cutoff_hz": "low-pass cutoff (Hz)", "lowpass_q": "low-pass Q", "gain_db": "gain (dB)"}


def _png(fig: Figure) -> str:
    """The figure as a 256-colour PNG data URI (half the bytes of a true-colour one, no visible loss)."""
    rendered, packed = io.BytesIO(), io.BytesIO()
    fig.savefig(rendered, format="png", dpi=DPI, facecolor="white")
    image = Image.open(rendered).convert("RGB").quantize(256, dither=Image.Dither.NONE)
    image.save(packed, format="png", optimize=True)
    return "data:image/png;base64," + base64.b64encode(packed.getvalue()).decode("ascii")


def pool_frames(magnitude: np.ndarray) -> tuple[np.ndarray, int]:
    """``[bins, frames]`` averaged over blocks of frames so at most MAX_FRAMES remain; and the block size."""
    step = -(-magnitude.shape[1] // MAX_FRAMES)
    if step == 1:
        return magnitude, 1
    padded = np.pad(magnitude, ((0, 0), (0, -magnitude.shape[1] % step)), mode="edge")
    return padded.reshape(magnitude.shape[0], -1, step).mean(axis=2), step


def envelope(sound: sf.SoundFile) -> tuple[tuple[np.ndarray, np.ndarray], float]:
    """Min and max over all channels of blocks of samples, read block by block; and seconds per block."""
    step = max(1, -(-sound.frames // ENVELOPE_POINTS))
    lows, highs = [np.zeros(0, np.float32)], [np.zeros(0, np.float32)]
    for block in sound.blocks(blocksize=step * 256, dtype="float32", always_2d=True):
        cut = -(-len(block) // step) * step
        shaped = np.pad(block, ((0, cut - len(block)), (0, 0)), mode="edge").reshape(-1, step * block.shape[1])
        lows.append(shaped.min(axis=1))
        highs.append(shaped.max(axis=1))
    return (np.concatenate(lows), np.concatenate(highs)), step / sound.samplerate


def spectrograms(magnitudes: dict[str, np.ndarray], seconds_per_frame: float,
                 hz_per_bin: float | None) -> tuple[str, float, float]:
    """One panel per column (``[bins, frames]`` magnitudes) in dB on one shared colour scale with one
    colour bar; time in seconds, frequency in Hz on a log axis, or in bins when it is not linear (``hz_per_bin`` None:
    UVR's combined multi-band rows). Returns the picture and the scale's lower and upper ends in dB."""
    panels = {name: 20 * np.log10(np.maximum(m, 1e-10)) for name, m in magnitudes.items()}
    vmax = max(float(p.max()) for p in panels.values())
    vmin = max(min(float(p.min()) for p in panels.values()), vmax - DB_RANGE)
    fig = Figure(figsize=(WIDTH, 0.5 + 1.45 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    image = None
    for ax, (name, db) in zip(axes, panels.items()):
        bins, frames = db.shape
        if hz_per_bin:  # a log frequency axis: music lives in the bottom few percent of a linear one
            times = np.arange(frames + 1) * seconds_per_frame
            edges = np.maximum((np.arange(bins + 1) - 0.5) * hz_per_bin, hz_per_bin / 2)
            image = ax.pcolormesh(times, edges, db, cmap="magma", vmin=vmin, vmax=vmax, shading="flat",
                                  rasterized=True)
            ax.set_yscale("log")
            ax.set_ylim(max(LOWEST_HZ, hz_per_bin), edges[-1])
            ax.yaxis.set_major_formatter(FuncFormatter(lambda hz, _: f"{hz / 1000:g}k" if hz >= 1000 else f"{hz:g}"))
        else:
            image = ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax,
                              extent=(0.0, frames * seconds_per_frame, 0.0, bins), interpolation="nearest")
        ax.set_ylabel("Hz" if hz_per_bin else "bin", fontsize=8)
        ax.set_title(name, loc="left", fontsize=9, fontweight="bold")
        ax.tick_params(labelsize=8)
    axes[-1].set_xlabel("seconds", fontsize=8)
    colorbar = fig.colorbar(image, ax=list(axes), pad=0.01, aspect=30)
    colorbar.set_label("magnitude (dB)", fontsize=8)
    colorbar.ax.tick_params(labelsize=8)
    return _png(fig), vmin, vmax


def waveforms(envelopes: dict[str, tuple[np.ndarray, np.ndarray]], seconds_per_point: dict[str, float]) -> str:
    """The min/max envelope of each stem file on one amplitude scale."""
    fig = Figure(figsize=(WIDTH, 0.5 + 1.1 * len(envelopes)), layout="constrained")
    axes = fig.subplots(len(envelopes), 1, sharex=True, sharey=True, squeeze=False)[:, 0]
    for index, (ax, (name, (low, high))) in enumerate(zip(axes, envelopes.items())):
        time = np.arange(len(low)) * seconds_per_point[name]
        ax.fill_between(time, low, high, color=COLOURS[index % len(COLOURS)], linewidth=0.4)
        ax.axhline(0, color="#888888", linewidth=0.5)
        ax.set_title(name, loc="left", fontsize=9, fontweight="bold")
        ax.set_ylabel("amplitude", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.margins(x=0)
    axes[-1].set_xlabel("seconds", fontsize=8)
    return _png(fig)


def augmentation(chain: Sequence[BaseWaveformTransform],
                 recorded: Sequence[tuple[float | None, ...]]) -> tuple[str, list[str]]:
    """Histograms of the recorded (cutoff, Q, gain) of each track variant, each against the ranges the chain
    allows (a shaded span with dashed edges: ``value × jitter`` for the low-pass, min to max gain); and one
    caption line per parameter that counts the draws and those outside every configured range."""
    ranges: dict[str, list[tuple[float, float]]] = {column: [] for column in PARAMETERS}
    linear = [t for t in chain if isinstance(t, LinearTransform)]
    for transform in linear:
        for column, span in transform.configured_ranges().items():
            ranges[column].append(span)
    columns = list(zip(*recorded)) or [(), (), ()]
    shown, lines = [], []
    for (column, label), values in zip(PARAMETERS.items(), columns):
        spans = ranges[column]
        drawn = [float(v) for v in values if v is not None]
        if drawn or spans:
            shown.append((label, drawn, spans))
            outside = sum(not any(lo * (1 - 1e-6) <= v <= hi * (1 + 1e-6) for lo, hi in spans) for v in drawn)
            configured = "; ".join(f"{lo:.4g} to {hi:.4g}" for lo, hi in spans) or "not configured"
            lines.append(f"{label}: drawn for {len(drawn)} of {len(recorded)} track variants; configured "
                         f"{configured}; {outside} outside the configured range.")
    others = {type(t).__name__ for t in chain if not isinstance(t, LinearTransform)}
    if others:
        lines.append(f"Not plotted (their draws are in the augment_params column): {', '.join(sorted(others))}.")
    fig = Figure(figsize=(WIDTH, 2.7), layout="constrained")
    axes = fig.subplots(1, max(len(shown), 1), squeeze=False)[0]
    for ax, (label, values, spans) in zip(axes, shown):
        for low, high in spans:
            ax.axvspan(low, high, color="#3a8f5c", alpha=0.15, label="configured range")
            for edge in (low, high):
                ax.axvline(edge, color="#3a8f5c", linestyle="--", linewidth=1)
        if values:
            ax.hist(values, bins=min(20, max(5, len(values) // 2)), color=COLOURS[0], edgecolor="white",
                    label="drawn values")
        ax.set_xlabel(label, fontsize=8)
        ax.set_ylabel("track variants", fontsize=8)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=8)
    labelled = dict(zip(*reversed(axes[0].get_legend_handles_labels())))
    if labelled:
        fig.legend(labelled.values(), labelled.keys(), loc="outside upper right", fontsize=8, ncols=2, frameon=False)
    return _png(fig), lines


def timing(audio_seconds: Sequence[float], prepare: Sequence[float], assemble: Sequence[float]) -> str:
    """Per track variant: processing seconds (prepare, assemble and their sum) against audio seconds,
    with the line where processing takes as long as the audio when that line is in view."""
    fig = Figure(figsize=(WIDTH * 0.62, 3.4), layout="constrained")
    ax = fig.subplots()
    audio = np.asarray(audio_seconds, float)
    total = np.asarray(prepare, float) + np.asarray(assemble, float)
    ax.scatter(audio, prepare, s=18, color=COLOURS[1], label="prepare (decode, resample, augment)")
    ax.scatter(audio, assemble, s=18, color=COLOURS[2], label="assemble (stems, rows)")
    ax.scatter(audio, total, s=26, color=COLOURS[0], marker="D", label="prepare + assemble")
    right, high = max(float(audio.max()), 1e-3) * 1.05, max(float(total.max()), 1e-3) * 1.15
    if high >= 0.1 * right:  # the 1× line, unless it would be a sliver at the left edge
        ax.plot([0, right], [0, right], color="#888888", linestyle="--", linewidth=1, label="real time (1×)")
    ax.set_xlim(0, right)
    ax.set_ylim(0, high)
    ax.set_xlabel("audio length (s)", fontsize=8)
    ax.set_ylabel("processing time (s)", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    return _png(fig)
