"""A model that makes NaN masks from finite weights: each track is rejected as ``non_finite``, no stem of it is
committed (issue 20, item 6)."""

import json

import soundfile as sf
import torch
from stemforge_testing import TINY, music, read_manifest, tiny_net

from stemforge.model import save_checkpoint
from stemforge.pipeline.cli import main


def test_nan_masks_are_dead_lettered_and_never_committed(tmp_path):
    net = tiny_net(3)
    with torch.no_grad():  # finite weights, but a negative variance: BatchNorm takes its square root
        net.stg1_low_band_net[0].enc1.conv[1].running_var.fill_(-1.0)
    checkpoint = tmp_path / "negative-variance.pth"
    save_checkpoint(net, str(checkpoint))
    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "song.wav", music(44100, seed=4).T, 44100, subtype="FLOAT")
    out = tmp_path / "out"
    code = main(["separate", str(tmp_path / "in"), "-o", str(out), "--checkpoint", str(checkpoint),
                 "--set", f"model.n_fft={TINY['n_fft']}", "--set", f"model.hop_length={TINY['hop_length']}",
                 "--set", "output.clip=none", "--format", "wav", "--subtype", "FLOAT", "-d", "cpu", "--quiet"])
    assert code == 0
    manifest = read_manifest(next((out / "runs").glob("*.json")))
    assert manifest["tracks"] == [] and manifest["counts"]["failed"] == 1
    records = [json.loads(line) for path in (out / "errors").glob("*.jsonl") for line in path.read_text().splitlines()]
    assert [(r["track_key"], r["stage"], r["error"]) for r in records] == [("song", "separate", "non_finite")]
    assert records[0]["message"] == f"{tmp_path / 'in' / 'song.wav'}: the model's mask holds NaN or infinite values"
    assert not list(out.rglob("*.wav"))
