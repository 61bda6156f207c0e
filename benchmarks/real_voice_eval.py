"""Held-out evaluation of voice/music checkpoints: real voices over recorded music, and synthetic stems.

    .venv/bin/python benchmarks/real_voice_eval.py --out /tmp/heldout \\
        --checkpoint shipped=model/weights/voice-music-1024.safetensors --checkpoint new=demo_model/train/best.pth

Builds (once; reused when the folder has its manifest):
- ``real/``: `stemforge synth-real --split heldout`: klettres-data speakers never trained on (en_GB, fr, it,
  ru, he) over music packages never trained on (hedgewars-data, warzone2100-music), 15 tracks of 12 s at
  each of −5, 0 and +5 dB voice-to-music, no augmentation;
- ``synthetic/``: `stemforge synth --tracks 30 --seed 90001 --seconds 12` (the shipped model's held-out set).

Scores each checkpoint with `stemforge evaluate`'s procedure (n_fft 1024, hop 512) and prints Markdown tables
of the vocals' SI-SDR improvement over the unprocessed mixture: mean (worst track), by voice-to-music ratio,
by music package and by speaker. drascula-music and alsa-utils are reserved and never used here.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stemforge.training.evaluate import evaluate
from stemforge.training.realsynth import make_real_stemset
from stemforge.training.synth import make_stemset

REAL_SEED, REAL_TRACKS, SYNTH_SEED, SYNTH_TRACKS, SECONDS = 424242, 45, 90001, 30, 12.0


def _build(out: Path) -> dict[str, Path]:
    real, synthetic = out / "real", out / "synthetic"
    if not (real / "stemset.csv").exists():
        make_real_stemset(real, REAL_TRACKS, REAL_SEED, "heldout", SECONDS, (-5.0, 0.0, 5.0),
                          lambda done, total: print(f"real held-out: {done}/{total}", file=sys.stderr))
    if not (synthetic / "stemset.csv").exists():
        make_stemset(synthetic, SYNTH_TRACKS, SYNTH_SEED, SECONDS)
    return {"real": real / "stemset.csv", "synthetic": synthetic / "stemset.csv"}


def _groups(manifest: Path) -> dict[str, dict[str, str]]:
    """Each track's grouping labels: ratio, music package (or 'synthesised') and speaker."""
    labels = {}
    with manifest.open(newline="") as handle:
        for row in csv.DictReader(handle):
            music = json.loads(row.get("music_file") or "[]")
            package = next((p for p in (row.get("packages") or "").split("; ") if p and p != "klettres-data"),
                           "synthesised") if music else "synthesised"
            ratio = float(row["ratio_db"])
            labels[row["track"]] = {"ratio": f"{ratio:+.0f} dB" if ratio else "0 dB", "music": package,
                                    "speaker": row.get("voice", "")}
    return labels


def _table(title: str, by: str, scores: dict[str, dict[str, float]], labels: dict[str, dict[str, str]]) -> str:
    names = list(scores)
    cells: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for name, per_track in scores.items():
        for track, value in per_track.items():
            cells[labels[track][by]][name].append(value)
            cells["all"][name].append(value)
    lines = [f"**{title}**", "", f"| {by} | tracks | " + " | ".join(names) + " |",
             "|---|---:|" + "---:|" * len(names)]
    def order(group: str) -> tuple[bool, float, str]:
        """Ratios in numeric order, other groups by name; "all" last."""
        return group == "all", float(group.split()[0]) if by == "ratio" and group != "all" else 0.0, group

    for group in sorted(cells, key=order):
        count = len(next(iter(cells[group].values())))
        values = " | ".join(f"{sum(v) / len(v):.2f} ({min(v):.2f})" for v in (cells[group][n] for n in names))
        lines.append(f"| {group} | {count} | {values} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="where the held-out sets and scores go")
    parser.add_argument("--checkpoint", action="append", required=True, help="NAME=PATH, repeatable")
    args = parser.parse_args(argv)
    sets = _build(args.out)
    checkpoints = dict(item.split("=", 1) for item in args.checkpoint)
    scores: dict[str, dict[str, dict[str, float]]] = {kind: {} for kind in sets}
    with (args.out / "scores.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["set", "checkpoint", "track", "stem", "si_sdr", "si_sdr_improvement"])
        for kind, manifest in sets.items():
            for name, path in checkpoints.items():
                rows = evaluate(path, str(manifest), n_fft=1024, hop_length=512, device="cpu")
                failed = [r for r in rows if r["error"]]
                if failed:
                    raise SystemExit(f"{name} on {kind}: {failed[0]['track']}: {failed[0]['error']}")
                scores[kind][name] = {r["track"]: r["si_sdr_improvement"] for r in rows if r["stem"] == "vocals"}
                writer.writerows([kind, name, r["track"], r["stem"], r["si_sdr"], r["si_sdr_improvement"]]
                                 for r in rows)
    real, synthetic = _groups(sets["real"]), _groups(sets["synthetic"])
    print("Vocals SI-SDR improvement over the mixture, dB: mean (worst track)\n")
    print(_table("Real voices over recorded music, by voice-to-music ratio", "ratio", scores["real"], real))
    print(_table("Real voices, by music package", "music", scores["real"], real))
    print(_table("Real voices, by speaker", "speaker", scores["real"], real))
    print(_table("Synthetic held-out (espeak-ng over synthesised music), by ratio", "ratio", scores["synthetic"],
                 synthetic))
    zero = [t for t, label in real.items() if label["ratio"] == "0 dB"]
    for name in checkpoints:
        worse = [t for t in zero if scores["real"][name][t] < 0]
        print(f"{name}: {len(worse)} of {len(zero)} real-voice mixtures at 0 dB made worse than the mixture")
    return 0


if __name__ == "__main__":
    sys.exit(main())
