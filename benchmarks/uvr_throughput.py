"""UVR models end to end: `stemforge run` against audio-separator's VR separation, same files, same CPU.

Both separate the same generated 44.1 kHz music (PCM_24 FLAC, like benchmarks/pipeline_throughput.py)
with the same random-weight UVR checkpoint: a CascadedASPPNet 123812 (UVR's "HP" ch32 class, as
1_HP/2_HP-UVR) on the `4band_v2` band table, aggression 5, window 512.
  audio-separator  0.47.1's VRSeparator.separate(file) per file, at its defaults (batch 1, window 512):
                   loading_mix, inference_vr, spec_to_wav, normalisation and writing (soundfile);
  stemforge        `stemforge run` (FnApiRunner, configs/separate.yaml: batch 4, FLAC stems, float16 rows)
                   with --set model.band_params=4band_v2 model.aggression=5 (a random file is not in
                   UVR's hash table).
audio-separator is imported as tests/uvr_reference.py does (its VR modules only). Prints wall seconds,
audio seconds per wall second, and the ratio (goal: stemforge >= 1.5x).

    .venv/bin/python benchmarks/uvr_throughput.py --files 2 --seconds 30
    .venv/bin/python benchmarks/uvr_throughput.py --files 2 --seconds 30 --precision bf16
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import platform
import tempfile
import time
from pathlib import Path

import torch
from pipeline_throughput import make_music

from stemforge.model import CascadedASPPNet, InferenceModel, save_checkpoint
from stemforge.pipeline.cli import main as stemforge

ROOT = Path(__file__).resolve().parents[1]


def uvr() -> dict:
    """audio-separator's VR modules, loaded as the tests load them (tests/uvr_reference.py)."""
    spec = importlib.util.spec_from_file_location("uvr_reference", ROOT / "tests" / "uvr_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.uvr()


def audio_separator(paths: list[Path], ckpt: Path, out: Path) -> float:
    """Wall seconds of audio-separator's VR separation of every file, model load included."""
    common = {"logger": logging.getLogger("audio-separator"), "log_level": logging.WARNING,
              "torch_device": torch.device("cpu"), "torch_device_cpu": torch.device("cpu"), "torch_device_mps": None,
              "model_name": "bench", "model_path": str(ckpt), "output_dir": str(out), "output_format": "flac",
              "model_data": {"vr_model_param": "4band_v2", "primary_stem": "Instrumental"},
              "normalization_threshold": 0.9, "amplification_threshold": 0.0, "enable_denoise": False,
              "invert_using_spec": False, "sample_rate": 44100, "use_soundfile": True}
    start = time.perf_counter()
    separator = uvr()["VRSeparator"](common, {"batch_size": 1, "window_size": 512, "aggression": 5})
    for path in paths:
        separator.separate(str(path))
    return time.perf_counter() - start


def model_only(windows: int) -> tuple[float, float]:
    """Seconds for ``windows`` windows (512 frames, 4band_v2's 673 bins) through the net alone: stemforge's
    InferenceModel at batch 4, and the plain net at batch 1 as audio-separator runs it."""
    torch.manual_seed(0)
    net = CascadedASPPNet(1344, 123812).eval()
    batch = torch.rand(4, 2, 673, 512)
    model = InferenceModel(net, device="cpu")
    model(batch[:1].numpy())
    start = time.perf_counter()
    for first in range(0, windows, 4):
        model(batch[: min(4, windows - first)].numpy())
    ours = time.perf_counter() - start
    start = time.perf_counter()
    with torch.inference_mode():
        for index in range(windows):
            net.predict_mask(batch[index % 4 : index % 4 + 1])
    return ours, time.perf_counter() - start


def run_stemforge(folder: Path, ckpt: Path, out: Path, precision: str) -> float:
    start = time.perf_counter()
    code = stemforge(["run", "--config", str(ROOT / "configs" / "separate.yaml"), "--input", str(folder),
                      "--output", str(out), "--checkpoint", str(ckpt), "--set", "model.band_params=4band_v2",
                      "--set", "model.aggression=5", "--set", "model.device=cpu",
                      "--set", f"model.precision={precision}"])
    if code:
        raise RuntimeError(f"stemforge run failed with exit code {code}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="stemforge's model.precision (bf16: autocast on the CPU; audio-separator stays fp32)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for name in ("music", "separator-out", "stemforge-out"):
            (root / name).mkdir()
        paths = make_music(root / "music", args.files, args.seconds)
        ckpt = root / "hp_4band_v2.pth"
        save_checkpoint(CascadedASPPNet(1344, 123812), str(ckpt))
        audio = args.files * args.seconds
        ours = run_stemforge(root / "music", ckpt, root / "stemforge-out", args.precision)
        theirs = audio_separator(paths, ckpt, root / "separator-out")
        print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads, {args.files} x {args.seconds:.0f} s")
        print(f"audio-separator 0.47.1  {theirs:7.1f} s  {audio / theirs:6.2f} s of audio per s")
        print(f"stemforge run ({args.precision})    {ours:7.1f} s  {audio / ours:6.2f} s of audio per s")
        print(f"stemforge / audio-separator: {theirs / ours:.2f}x")
        windows = args.files * ((1 + int(args.seconds * 44100) // 480) // 256 + 1)  # roi 256 per window
        net_ours, net_theirs = model_only(windows)
        print(f"the network alone, {windows} windows: InferenceModel batch 4 {net_ours:.1f} s, "
              f"plain net batch 1 {net_theirs:.1f} s ({net_theirs / net_ours:.2f}x)")


if __name__ == "__main__":
    main()
