"""What several test suites share: the tiny model settings, random nets with realistic statistics and spread
masks, reference procedures, test music, a config writer."""

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import torch
import yaml
from torch import nn

from stemforge.model import CascadedNet, make_padding
from stemforge.shards.manifest import read_run

TINY = {"n_fft": 512, "hop_length": 256, "cropsize": 256}
SR = 44100


def tiny_net(seed: int) -> CascadedNet:
    """An n_fft 512 / nout 8 network with random weights and non-trivial BatchNorm statistics."""
    torch.manual_seed(seed)
    net = CascadedNet(TINY["n_fft"], nout=8, nout_lstm=16)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return net


def music(n_samples: int, seed: int, fade: bool = True, peak: float = 0.92) -> np.ndarray:
    """Stereo partials plus noise at 44.1 kHz, float32 ``[2, n_samples]`` with the given peak; with
    ``fade`` it decays to a few percent over the last half second, as a recording ending on a note."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / SR
    wave = np.zeros((2, n_samples))
    for f in (110, 220, 330, 440, 660, 880, 1320, 2640):
        wave += 0.1 * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi, (2, 1)))
    wave += 0.05 * rng.standard_normal((2, n_samples))
    if fade:
        tail = min(SR // 2, n_samples)
        wave[:, -tail:] *= np.linspace(1.0, 0.04, tail)
    return (peak * wave / np.abs(wave).max()).astype(np.float32)


def scale_output_layer(net: CascadedNet, scale: float) -> CascadedNet:
    """Scale the output layer so the net's masks spread over (0, 1) instead of sitting near 0.5
    (a random net's masks are so flat that a wrong frame, split or end hides in the noise)."""
    with torch.no_grad():
        net.out.weight.mul_(scale)
    return net


def upstream_mask(net: nn.Module, spec: np.ndarray, cropsize: int, tta: bool) -> np.ndarray:
    """vocal-remover's inference written from the reference facts: pad, normalise by the magnitude
    peak, window every roi frames, keep centres, concatenate, trim; TTA pads roi/2 more, shifts back."""
    offset = net.offset
    mag = np.abs(spec)
    n_frames = mag.shape[2]
    peak = mag.max() if mag.max() > 0 else 1.0

    def one_pass(extra: int) -> np.ndarray:
        left, right, roi = make_padding(n_frames, cropsize, offset)
        padded = np.pad(mag, ((0, 0), (0, 0), (left + extra, right + extra))) / peak
        count = (padded.shape[2] - 2 * offset) // roi
        windows = np.stack([padded[:, :, i * roi : i * roi + cropsize] for i in range(count)])
        with torch.no_grad():
            centres = net.predict_mask(torch.from_numpy(windows.astype(np.float32))).numpy()
        return np.concatenate(list(centres), axis=2)

    roi = cropsize - 2 * offset
    mask = one_pass(0)[:, :, :n_frames]
    if tta:
        mask = (mask + one_pass(roi // 2)[:, :, roi // 2 :][:, :, :n_frames]) * 0.5
    return mask


def upstream_stems(net: nn.Module, wave: np.ndarray, n_fft: int, hop: int, cropsize: int = 256,
                   tta: bool = False, pad_end: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """vocal-remover's whole-track procedure on a stereo waveform with librosa's STFT and ISTFT:
    ``(spectrogram, first stem, second stem)``. With ``pad_end`` zeros appended before the analysis
    and trimmed from the stems, it is the issue's well-conditioned reference for a track's end."""
    padded = np.pad(wave, ((0, 0), (0, pad_end)))
    spec = np.stack([librosa.stft(c, n_fft=n_fft, hop_length=hop) for c in padded])
    mask = upstream_mask(net, spec, cropsize, tta)
    stems = [np.stack([librosa.istft(s[c], n_fft=n_fft, hop_length=hop, length=padded.shape[1])
                       for c in range(2)])[:, : wave.shape[1]] for s in (mask * spec, (1 - mask) * spec)]
    return spec, stems[0], stems[1]


def snr_db(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Signal-to-noise ratio of ``estimate`` against ``reference`` in dB (inf when equal)."""
    noise = np.sum((np.asarray(estimate, np.float64) - reference) ** 2)
    signal = np.sum(np.asarray(reference, np.float64) ** 2)
    return float("inf") if noise == 0 else float(10 * np.log10(signal / noise))


def write_config(path: Path, **sections: dict[str, Any]) -> Path:
    """A tiny-model config (float WAV stems, float32 rows) with the given sections merged over it."""
    data: dict[str, Any] = {
        "model": dict(TINY, batch_size=3, device="cpu"),
        "output": {"stem_format": "wav", "stem_subtype": "FLOAT", "spectrogram_dtype": "float32",
                   "segment_frames": 100},
        "run": {"chunk_seconds": 1.0},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    path.write_text(yaml.safe_dump(data))
    return path


def randomise_batchnorm(net: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial statistics and affine terms, as a trained net has.

    A freshly built net has mean 0 / var 1 / weight 1 / bias 0, which would
    hide mistakes in BatchNorm folding.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                n = module.num_features
                module.running_mean.copy_((torch.rand(n, generator=gen) - 0.5) * 0.4)
                module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                module.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                module.bias.copy_((torch.rand(n, generator=gen) - 0.5) * 0.4)
    return net


def spread_mask(net: nn.Module, x: torch.Tensor, target_std: float = 4.0) -> nn.Module:
    """Set ``net.out`` (no bias) so the eval mask on ``x`` spreads over (0, 1) instead of crowding at one value.

    A random net's output layer sees only post-ReLU (positive) features that
    vary little between positions, so its logits share one sign and sigmoid
    masks crowd together, where a wrong split, crop or branch hides. Each
    output channel gets one of the features' two principal directions, shifted
    along the features' mean so the logits on ``x`` have zero mean, scaled to
    ``target_std``. The features' small spread amplifies float32 rounding in
    the logits by roughly ``target_std`` over their raw spread.
    """
    captured: list[torch.Tensor] = []
    handle = net.out.register_forward_hook(lambda _m, inputs, _o: captured.append(inputs[0]))
    with torch.no_grad():
        net.eval()(x)
    handle.remove()
    feats = captured[0].double().transpose(0, 1).reshape(captured[0].shape[1], -1)  # [C, positions]
    mean = feats.mean(dim=1)
    directions = torch.linalg.svd(feats - mean[:, None], full_matrices=False)[0][:, :2].T  # [2, C]
    weight = directions - (directions @ feats).mean(dim=1, keepdim=True) / (mean @ mean) * mean
    weight = weight * (target_std / (weight @ feats).std(dim=1, keepdim=True))
    with torch.no_grad():
        net.out.weight.copy_(weight[:, :, None, None].to(net.out.weight.dtype))
    return net


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_PROGRESS = re.compile(r"\[(\d+:\d\d:\d\d)\] listed (\d+)\+?(?: \| skipped \d+)? \| prepared (\d+) \| "
                       r"separated (\d+) \| written (\d+)(?:/\d+)? \| errors (\d+) \| ")
_DONE = re.compile(r"\[\d+:\d\d:\d\d\] done \| listed (\d+) \| written (\d+) \| errors (\d+) "
                   r"\((\d+) inputs? rejected\) \| skipped (\d+)")


def progress_snapshots(output: str) -> tuple[list[tuple[int, ...]], tuple[int, ...] | None]:
    """The progress display's (listed, prepared, separated, written, errors) in the order shown, and the
    final line's (listed, written, errors, rejected inputs, skipped), from a terminal capture or a log."""
    text = _ANSI.sub("", output).replace("\r", "\n")
    shown = [tuple(int(g) for g in m.groups()[1:]) for m in _PROGRESS.finditer(text)]
    done = _DONE.search(text)
    return shown, tuple(int(g) for g in done.groups()) if done else None


def read_manifest(path: Path | str, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """A run manifest with its per-track detail inline (tracks, sources, timing, clipping), either layout."""
    return read_run(str(path), storage_options).old_layout()


def fresh_python(code: str) -> str:
    """What ``code`` prints when a fresh interpreter runs it (so ``sys.modules`` holds only what it imported);
    it must exit 0."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
