"""What `output.clip: rescale` costs: the stem pass of a track that fits, and of one that must be rescaled.

`rescale` needs a track variant's stem peak before the stems are written. stemforge encodes at gain 1
while it tracks the peak and inverts and encodes a second time only when the peak is above 1.0, so a
variant that fits pays one pass and a variant that needs a gain pays two. This times `write_stems` on a
generated track (separate.yaml: n_fft 2048, hop 1024, FLAC PCM_24) with a constant 0.5 mask for each
case, against `clamp` (always one pass) as the baseline, in one run.

    .venv/bin/python benchmarks/stem_clip.py --seconds 180
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

from stemforge.pipeline.engine.assemble import write_stems
from stemforge.config.run import build_config
from stemforge.pipeline.engine.inference import resolved_model
from stemforge.pipeline.engine.track import MaskReader, PreparedTrack, grids
from stemforge.transforms import AugmentChain

ROOT = Path(__file__).resolve().parents[1]


def timed(folder: Path, source: Path, clip: str, repeats: int) -> tuple[float, float]:
    """(best seconds of write_stems, the gain it applied) for one clip mode."""
    data = yaml.safe_load((ROOT / "configs" / "separate.yaml").read_text())
    data["output"].update(uri=str(folder / f"out-{clip}"), clip=clip)
    data["model"].update(cropsize=256, stems=["instruments", "vocals"])  # what the launcher resolves for a vocal-remover net
    config = build_config(data)
    best, gain = float("inf"), 1.0
    with PreparedTrack(str(source), "track", 0, config, {}, AugmentChain.from_config([]),
                       resolved_model(config, None)) as track:
        roi = config.model.cropsize - 128
        for _ in range(repeats):
            masks = MaskReader(track.meta, grids(track.meta, config, 64), config,
                               lambda p, i: np.full((2, 1025, roi), 0.5, np.float32))
            start = time.perf_counter()
            report = write_stems(track, masks, config, {})
            best, gain = min(best, time.perf_counter() - start), report.gain
    return best, gain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = int(args.seconds * 44100)
    t = np.arange(n) / 44100
    music = np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)]) + 0.1 * rng.standard_normal((2, n))
    print(f"{platform.processor() or platform.machine()}, {args.seconds:.0f} s track, best of {args.repeats}")
    print(f"{'input peak':>10s} {'clip':>8s} {'gain':>7s} {'write_stems':>12s} {'vs clamp':>9s}")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for peak in (0.9, 2.6):  # a 0.5 mask halves the input: 2.6 gives stems peaking at 1.3
            source = folder / f"peak{peak}.wav"
            sf.write(source, (peak * music / np.abs(music).max()).T.astype(np.float32), 44100, subtype="FLOAT")
            base, _ = timed(folder, source, "clamp", args.repeats)
            cost, gain = timed(folder, source, "rescale", args.repeats)
            print(f"{peak:10.1f} {'clamp':>8s} {1.0:7.3f} {base:11.2f}s {1.0:9.2f}")
            print(f"{peak:10.1f} {'rescale':>8s} {gain:7.3f} {cost:11.2f}s {cost / base:9.2f}")


if __name__ == "__main__":
    main()
