"""`stemforge separate` run again and again on a changing folder: a source keeps its key whatever appears
beside it, a rerun skips only the same source with the same content, a run never reads its own outputs,
and an input that matches nothing writes nothing."""

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from stemforge_testing import TINY, music, read_manifest

from stemforge.pipeline.cli import main

TINY_SETS = [arg for key, value in TINY.items() for arg in ("--set", f"model.{key}={value}")]
STEMS = ("instruments.flac", "vocals.flac")


def _write(path: Path, seed: int, seconds: float = 1.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, music(int(44100 * seconds), seed).T, 44100)
    return path


def _separate(checkpoint: Path, out: Path, *inputs: Path | str) -> dict:
    """Runs `stemforge separate`; returns the manifest it committed."""
    before = set((out / "runs").glob("*.json")) if (out / "runs").exists() else set()
    assert main(["separate", *map(str, inputs), "-o", str(out), "--checkpoint", str(checkpoint), "--quiet",
                 *TINY_SETS]) == 0
    [new] = set((out / "runs").glob("*.json")) - before
    return read_manifest(new)


def suffixed(key: str, source: str) -> str:
    """The key of a source whose base key another source holds (docs/cluster.md)."""
    return f"{key}~{hashlib.sha256(source.encode()).hexdigest()[:8]}"


def _stems(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in STEMS}


def _held(manifest: dict) -> dict[str, str]:
    return {record["track_key"]: record["source"] for record in manifest["sources"]}


def test_a_colliding_source_never_takes_a_committed_key(tiny_checkpoint, tmp_path):
    wav = _write(tmp_path / "kC" / "song.wav", seed=1)
    out = tmp_path / "out"
    first = _separate(tiny_checkpoint, out, tmp_path / "kC")
    assert first["tracks"] == ["song"]
    committed = _stems(out / "song")

    flac = tmp_path / "kC" / "song.flac"  # sorts before song.wav: today's rule would hand it the plain key
    sf.write(flac, music(44100, seed=2).T, 44100)
    second = _separate(tiny_checkpoint, out, tmp_path / "kC")
    other = suffixed("song", str(flac))
    assert second["tracks"] == [other] and second["counts"]["skipped"] == 1
    assert _held(first) == {"song": str(wav)} and _held(second) == {other: str(flac)}
    assert _stems(out / "song") == committed  # song.wav's stems, untouched
    theirs, _ = sf.read(out / other / "vocals.flac")
    ours, _ = sf.read(out / "song" / "vocals.flac")
    assert theirs.shape == ours.shape and not np.allclose(theirs, ours)  # song.flac's own stems

    third = _separate(tiny_checkpoint, out, tmp_path / "kC")
    assert third["tracks"] == [] and third["counts"]["skipped"] == 2


def test_an_input_added_to_the_command_line_keeps_the_committed_keys(tiny_checkpoint, tmp_path):
    b = _write(tmp_path / "kB" / "x.wav", seed=3)
    a = _write(tmp_path / "kA" / "x.wav", seed=4)
    out = tmp_path / "out"
    alone = _separate(tiny_checkpoint, out, b)
    both = _separate(tiny_checkpoint, out, a, b)
    assert both["tracks"] == [suffixed("x", str(a))] and both["counts"]["skipped"] == 1
    assert _held(alone) == {"x": str(b)} and _held(both) == {suffixed("x", str(a)): str(a)}


def test_a_source_whose_content_changed_is_separated_again_under_its_key(tiny_checkpoint, tmp_path):
    song = _write(tmp_path / "in" / "song.wav", seed=5)
    out = tmp_path / "out"
    first = _separate(tiny_checkpoint, out, tmp_path / "in")
    before = _stems(out / "song")
    _write(song, seed=6, seconds=1.5)
    os.utime(song, (1_000_000_000, 1_000_000_000))
    again = _separate(tiny_checkpoint, out, tmp_path / "in")
    assert again["tracks"] == ["song"] and again["counts"]["skipped"] == 0
    assert again["sources"][0]["size"] == song.stat().st_size != first["sources"][0]["size"]
    assert _stems(out / "song") != before
    assert sf.info(str(out / "song" / "vocals.flac")).frames == int(44100 * 1.5)


def test_a_run_never_reads_its_own_output_inside_the_input(tiny_checkpoint, tmp_path):
    _write(tmp_path / "nest" / "a.wav", seed=7)
    out = tmp_path / "nest" / "out"
    first = _separate(tiny_checkpoint, out, tmp_path / "nest")
    assert first["tracks"] == ["a"]
    second = _separate(tiny_checkpoint, out, tmp_path / "nest")
    assert second["tracks"] == [] and second["counts"] == {**second["counts"], "inputs": 0, "skipped": 1}
    assert sorted(p.name for p in out.iterdir()) == ["a", "runs"]


def test_the_same_file_named_twice_is_separated_once(tiny_checkpoint, tmp_path):
    song = _write(tmp_path / "t1" / "song.wav", seed=8)
    out = tmp_path / "out"
    manifest = _separate(tiny_checkpoint, out, tmp_path / "t1", tmp_path / "t1", song)
    assert manifest["tracks"] == ["song"] and manifest["counts"]["inputs"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["runs", "song"]


def test_stems_written_into_the_searched_folder_are_refused_before_work(tiny_checkpoint, tmp_path, capsys):
    _write(tmp_path / "music" / "a.wav", seed=9)
    before = sorted(p.name for p in (tmp_path / "music").iterdir())
    assert main(["separate", str(tmp_path / "music"), "-o", str(tmp_path / "music"), "--checkpoint",
                 str(tiny_checkpoint), "--quiet", *TINY_SETS]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("stemforge: ") and "would separate them again" in err
    assert sorted(p.name for p in (tmp_path / "music").iterdir()) == before


@pytest.mark.parametrize("case", ["missing", "empty", "no audio"])
def test_no_input_matched_writes_nothing(tiny_checkpoint, tmp_path, capsys, case):
    source = tmp_path / "in"
    if case != "missing":
        source.mkdir()
    if case == "no audio":
        (source / "notes.txt").write_text("not audio")
    out = tmp_path / "out"
    assert main(["separate", str(source), "-o", str(out), "--checkpoint", str(tiny_checkpoint), "--quiet",
                 *TINY_SETS]) == 2
    assert not out.exists()
    err = capsys.readouterr().err
    reason = {"missing": "(no such file, directory or manifest)\n", "empty": " file in it)\n",
              "no audio": " file in it; ignored 1 file (.txt 1))\n"}[case]
    assert err.count("\n") == 1 and err.startswith(f"stemforge: no input matched {source} (") and err.endswith(reason)
