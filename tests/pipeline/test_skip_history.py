"""Skip-existing across many runs of one output root in every layout a root can hold: runs whose manifest records
only track keys, runs whose manifest records sources, and runs with a key index (``runs/<id>.keys.parquet``)
whose manifest records neither. Each rerun separates exactly the sources no earlier run committed."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import soundfile as sf
from stemforge_testing import TINY, music, read_manifest

from stemforge.pipeline.cli import main

TINY_SETS = [arg for key, value in TINY.items() for arg in ("--set", f"model.{key}={value}")]


def _separate(checkpoint: Path, out: Path, *inputs: Path) -> tuple[Path, dict]:
    before = set((out / "runs").glob("*.json")) if (out / "runs").exists() else set()
    assert main(["separate", *map(str, inputs), "-o", str(out), "--checkpoint", str(checkpoint), "--quiet",
                 *TINY_SETS]) == 0
    [new] = set((out / "runs").glob("*.json")) - before
    return new, read_manifest(new)


def _as_layout(path: Path, manifest: dict, layout: str) -> None:
    """Rewrites a committed run as an older stemforge would have left it, or as a slim manifest beside its key
    index (the key index is then the only record of its sources)."""
    index = path.parent / manifest["keys"]
    if layout == "keys only":  # the oldest: track keys, no sources
        manifest = {k: v for k, v in manifest.items() if k not in ("sources", "keys")}
        index.unlink()
    elif layout == "sources":
        manifest = {k: v for k, v in manifest.items() if k != "keys"}
        index.unlink()
    else:
        manifest = {k: v for k, v in manifest.items() if k not in ("sources", "tracks")}
    path.write_text(json.dumps(manifest))


def test_reruns_skip_what_any_earlier_run_committed_whatever_its_layout(tiny_checkpoint, tmp_path):
    songs = []
    for i in range(6):
        songs.append(tmp_path / "in" / f"s{i}.wav")
        songs[-1].parent.mkdir(exist_ok=True)
        sf.write(songs[-1], music(11025, seed=i).T, 44100)
    out = tmp_path / "out"
    layouts = ["keys only", "sources", "key index", "key index"]
    for number, layout in enumerate(layouts):
        path, run = _separate(tiny_checkpoint, out, *songs[:2 + number])
        assert run["tracks"] == [f"s{1 + number}"] if number else ["s0", "s1"]
        assert run["counts"]["skipped"] == (1 + number if number else 0)
        index = pq.read_table(out / "runs" / run["keys"])
        assert index["track_key"].to_pylist() == run["tracks"]
        assert index["source"].to_pylist() == [str(tmp_path / "in" / f"{k}.wav") for k in run["tracks"]]
        assert index.schema.metadata[b"stemforge.run_id"].decode() == run["run_id"]
        _as_layout(path, run, layout)
    _, last = _separate(tiny_checkpoint, out, *songs)
    assert last["tracks"] == ["s5"] and last["counts"]["skipped"] == 5
    sf.write(songs[3], music(11025, seed=30).T, 44100)  # rewritten: its key index records the old content
    _, changed = _separate(tiny_checkpoint, out, *songs)
    assert changed["tracks"] == ["s3"] and changed["counts"]["skipped"] == 5
