"""The formats a real corpus holds, end to end: a directory of MP3 without a length header, M4A and the
files around them (cover art, notes), listed, decoded to their full length and separated; what is not
audio is counted and said, never dropped without a word."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from encoded_audio import KIND, KINDS, SR, encode, reference_decode, write_source
from stemforge_testing import TINY, read_manifest

from stemforge.pipeline.cli import main
from stemforge.config.run import build_config
from stemforge.pipeline.listing import describe_ignored, expand_input
from stemforge.pipeline.progress import ProgressWriter
from stemforge.pipeline.progress_display import ProgressDisplay
from stemforge.transforms import load_audio

TINY_SETS = [arg for key, value in TINY.items() for arg in ("--set", f"model.{key}={value}")]


def test_a_directory_counts_what_it_ignores(tmp_path):
    for name in ("a/one.wav", "a/b/two.m4a", "notes.txt", "a/cover.jpg", "a/b/back.JPG", "README", "c/x.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    ignored: Counter[str] = Counter()
    refs = list(expand_input(str(tmp_path), build_config({}).input.extensions, {}, ignored=ignored))
    assert sorted(r.track_key for r in refs) == ["a/b/two", "a/one"]
    assert ignored == {".txt": 2, ".jpg": 2, "(none)": 1}
    assert describe_ignored(ignored) == "ignored 5 files (.jpg 2, .txt 2, (none) 1)"
    assert describe_ignored({".txt": 1}) == "ignored 1 file (.txt 1)"


def test_every_default_extension_is_read(tmp_path):
    """Each extension a folder is searched for has a file of that name that decodes (made by ffmpeg)."""
    source = tmp_path / "source.wav"
    write_source(source, seconds=0.5)
    made = {".wav": source}
    for kind in KINDS:
        made.setdefault(Path(kind.filename).suffix, encode(source, tmp_path / f"{kind.name}{Path(kind.filename).suffix}",
                                                          kind.args))
    made[".flac"] = encode(source, tmp_path / "x.flac", ("-c:a", "flac"))
    made[".aiff"] = made[".aif"] = encode(source, tmp_path / "x.aiff", ("-c:a", "pcm_s16be"))
    made[".ogg"] = made[".oga"] = encode(source, tmp_path / "x.ogg", ("-c:a", "libvorbis"))
    made[".opus"] = encode(source, tmp_path / "x.opus", ("-c:a", "libopus"))
    folder = tmp_path / "corpus"
    folder.mkdir()
    for extension in build_config({}).input.extensions:
        (folder / f"track{extension}").write_bytes(made[extension].read_bytes())
    refs = list(expand_input(str(folder), build_config({}).input.extensions, {}))
    assert len(refs) == len(build_config({}).input.extensions) == 18
    for ref in refs:
        samples, rate = load_audio(ref.source)
        assert samples.shape[0] == 2 and abs(samples.shape[1] / rate - 0.5) < 0.1, ref.source


@pytest.fixture(scope="module")
def real_corpus(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    """A VBR MP3 without a Xing header whose bitrate estimate is far too short (a quiet start), an M4A,
    cover art and notes; with the length ffmpeg decodes each to."""
    folder = tmp_path_factory.mktemp("real")
    x = write_source(folder / "source.wav", seconds=4.0)
    x[:, : 2 * SR] *= 0.001
    sf.write(folder / "source.wav", x.T, SR, subtype="PCM_16")
    album = folder / "album"
    album.mkdir()
    vbr = encode(folder / "source.wav", album / "quiet start.mp3", KIND["mp3_vbr_no_xing"].args)
    encode(folder / "source.wav", album / "song.m4a", KIND["m4a_aac"].args)
    (folder / "source.wav").unlink()
    (album / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (album / "notes.txt").write_text("track list\n")
    (album / "liner.txt").write_text("credits\n")
    return album, {"quiet start": reference_decode(vbr).shape[1], "song": x.shape[1]}


def test_separate_reads_every_file_to_its_full_length(real_corpus, tiny_checkpoint, tmp_path, capsys):
    album, lengths = real_corpus
    assert lengths["quiet start"] > sf.info(str(album / "quiet start.mp3")).frames  # libsndfile's guess: short
    out = tmp_path / "out"
    code = main(["separate", str(album), "-o", str(out), "--checkpoint", str(tiny_checkpoint), "--quiet",
                 "--format", "wav", *TINY_SETS])
    captured = capsys.readouterr()
    assert code == 0
    [path] = (out / "runs").glob("*.json")
    manifest = read_manifest(path)
    assert manifest["tracks"] == ["quiet start", "song"] and manifest["counts"]["failed"] == 0
    for key, length in lengths.items():
        for stem in ("instruments", "vocals"):
            assert sf.info(str(out / key / f"{stem}.wav")).frames == length
    assert {t["track_key"]: t["decoded"] for t in manifest["timing"]} == {"quiet start": "ffmpeg:counted",
                                                                          "song": "ffmpeg:declared"}
    assert manifest["ignored"] == {".jpg": 1, ".txt": 2} and manifest["counts"]["ignored"] == 3
    assert "ignored 3 files (.txt 2, .jpg 1): not audio by their extension" in captured.out
    assert captured.err.count("\n") <= 1 and "layer3" not in captured.err  # no decoder noise


def test_the_last_progress_line_says_what_was_ignored(real_corpus, tiny_checkpoint, tmp_path, caplog):
    album, _ = real_corpus
    caplog.set_level("INFO", logger="stemforge.progress")
    code = main(["separate", str(album), "-o", str(tmp_path / "o"), "--checkpoint", str(tiny_checkpoint),
                 "--progress-interval", "1", *TINY_SETS])
    assert code == 0
    [done] = [r.getMessage() for r in caplog.records if "] done |" in r.getMessage()]
    assert "| ignored 3 files (.txt 2, .jpg 1) |" in done
    assert np.isfinite(sf.read(str(tmp_path / "o" / "song" / "vocals.flac"))[0]).all()


def test_the_live_line_counts_ignored_files_as_listing_finds_them(tmp_path):
    folder = str(tmp_path / "progress")
    writer = ProgressWriter(folder, {})
    display = ProgressDisplay(folder, {}, inputs=1, variants=1, mode="off")
    writer.add("listed", tracks=2)
    writer.add("ignored", tracks=12)
    writer.flush()
    display.poll()
    assert "listed 2+ | ignored 12 files | prepared 0" in display.line(5.0)
