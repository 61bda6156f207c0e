"""The varied corpus of scripts/compare_outputs.py: its inputs, checkpoints, configs and the CLI runs over them.

Every case is tiny (n_fft 512 or UVR's 4band_v2 table, seconds of audio, one torch thread) so the whole corpus
runs in a few minutes on a busy 2-core machine. Inputs and random-weight checkpoints come from the test
helpers (tests/stemforge_testing.py, tests/uvr_reference.py, tests/pipeline/pipeline_support.py); the mix
run's stem set from ``stemforge synth``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path += [str(TESTS), str(TESTS / "pipeline")]

LOWPASS = {"transform": "ZeroPhaseBiquadLowPass", "cutoff_hz": 3000, "q": 0.7071, "jitter": [0.8, 1.2], "p": 1.0}
GAIN = {"transform": "Gain", "min_gain_db": -6.0, "max_gain_db": 6.0, "p": 0.5}
LOUD = {"transform": "Gain", "min_gain_db": 6.0, "max_gain_db": 6.0, "p": 1.0}  # pushes stems past full scale
ONE_THREAD = {"cpu_threads": 1}

# case name -> (config sections over the tiny config, input, checkpoint or None); each is one `stemforge run`
RUNS: dict[str, tuple[dict, str, str | None]] = {
    "single": ({"model": ONE_THREAD}, "in/basic", "tiny.pth"),
    "tta": ({"model": dict(ONE_THREAD, tta=True)}, "in/basic/sines.wav", "tiny.pth"),
    "postprocess": ({"model": dict(ONE_THREAD, postprocess=True)}, "in/loud", "tiny.pth"),
    "clip_rescale": ({"model": ONE_THREAD, "augment": {"chain": [LOUD]},
                      "output": {"stem_format": "flac", "stem_subtype": "PCM_24", "clip": "rescale"}},
                     "in/loud", "tiny.pth"),
    "clip_clamp": ({"model": ONE_THREAD, "augment": {"chain": [LOUD]},
                    "output": {"stem_subtype": "PCM_16", "clip": "clamp", "spectrogram_dtype": "float16"}},
                   "in/loud", "tiny.pth"),
    "clip_none": ({"model": ONE_THREAD, "augment": {"chain": [LOUD]}, "output": {"clip": "none"}},
                  "in/loud", "tiny.pth"),
    "augment": ({"model": ONE_THREAD, "augment": {"variants": 3, "seed": 11, "keep_clean": True,
                                                   "chain": [LOWPASS, GAIN]}}, "in/basic", "tiny.pth"),
    "stream": ({"model": ONE_THREAD, "run": {"chunk_seconds": 0.6}, "augment": {"chain": [LOWPASS, GAIN]}},
               "in/long", "tiny.pth"),
    "uvr": ({"model": dict(ONE_THREAD, cropsize=512, batch_size=2, band_params="4band_v2", aggression=5),
             "run": {"chunk_seconds": 1.0}}, "in/uvr", "uvr.pth"),
    "mix": ({"model": ONE_THREAD, "mix": {"stems": ["instruments", "vocals"], "gain_db": [-3.0, 3.0],
                                          "remix_p": 0.5, "drop_p": 0.2},
             "augment": {"variants": 3, "seed": 1234, "keep_clean": True, "chain": [LOWPASS, LOUD]},
             "output": {"stem_format": "flac", "stem_subtype": "PCM_16"}}, "in/stemset/stemset.csv", None),
    "mix_teacher": ({"model": ONE_THREAD, "mix": {"stems": ["instruments", "vocals"]},
                     "augment": {"variants": 2, "seed": 5, "chain": [GAIN]}, "output": {"clip": "clamp"}},
                    "in/stemset", "tiny.pth"),
}

# case name -> argv after `python -m stemforge`, with {name} the case name; paths relative to the corpus folder
CASES: dict[str, list[str]] = {
    name: ["run", "--config", f"configs/{name}.yaml", "--input", source, "--output", "out/{name}",
           *(["--checkpoint", checkpoint] if checkpoint else []), "--set", "run.run_id={name}", "--quiet"]
    for name, (_, source, checkpoint) in RUNS.items()
}
CASES["separate"] = ["separate", "in/basic/sines.wav", "in/loud", "-o", "out/{name}", "--checkpoint", "tiny.pth",
                     "--format", "flac", "--shards", "--set", "model.n_fft=512", "--set", "model.hop_length=256",
                     "--set", "model.cpu_threads=1", "--set", "run.run_id={name}", "--quiet"]
CASES["separate_ogg"] = ["separate", "in/basic/sines.wav", "-o", "out/{name}", "--checkpoint", "tiny.pth",
                         "--format", "ogg", "--set", "model.n_fft=512", "--set", "model.hop_length=256",
                         "--set", "model.cpu_threads=1", "--set", "run.run_id={name}", "--quiet"]


def _rejected_inputs(folder: Path, sr: int) -> None:
    """Odd inputs: empty (rejected), ten samples, a FLAC file cut in half."""
    sf.write(folder / "empty.wav", np.zeros((0, 2)), sr, subtype="PCM_16")
    sf.write(folder / "few.wav", np.full((10, 2), 0.1), sr, subtype="PCM_16")
    sf.write(folder / "whole.flac", np.full((sr, 2), 0.1), sr, subtype="PCM_16")
    whole = (folder / "whole.flac").read_bytes()
    (folder / "whole.flac").unlink()
    (folder / "truncated.flac").write_bytes(whole[: len(whole) // 2])


def write_inputs(folder: Path) -> None:
    """Every input, checkpoint and config of the corpus under ``folder`` (deterministic: fixed seeds)."""
    from pipeline_support import write_corpus
    from stemforge_testing import SR, music, scale_output_layer, tiny_net, write_config
    from uvr_reference import uvr_test_net

    from stemforge.model import save_checkpoint
    from stemforge.transforms import load_band_params

    basic = folder / "in" / "basic"
    write_corpus(basic)
    _rejected_inputs(basic, SR)
    sf.write(basic / "quad.wav", music(SR, seed=2).repeat(2, axis=0).T * 0.5, SR, subtype="PCM_24")
    for sub, seconds, seed in (("loud", 2.2, 3), ("long", 7.3, 4), ("uvr", 3.3, 5)):
        (folder / "in" / sub).mkdir(parents=True, exist_ok=True)
        peak = 0.99 if sub == "loud" else 0.9
        sf.write(folder / "in" / sub / f"{sub}.wav", music(int(seconds * SR) + 77, seed=seed, peak=peak).T, SR,
                 subtype="FLOAT")
    save_checkpoint(scale_output_layer(tiny_net(3), 20.0), str(folder / "tiny.pth"))
    wave = sf.read(folder / "in" / "uvr" / "uvr.wav", dtype="float32")[0].T
    save_checkpoint(uvr_test_net(31191, load_band_params("4band_v2"), wave), str(folder / "uvr.pth"))
    subprocess.run([sys.executable, "-m", "stemforge", "synth", "in/stemset", "--tracks", "2", "--seed", "7",
                    "--seconds", "3"], cwd=folder, env=dict(os.environ), check=True, capture_output=True)
    (folder / "configs").mkdir(exist_ok=True)
    for name, (sections, _, _) in RUNS.items():
        write_config(folder / "configs" / f"{name}.yaml", **sections)
