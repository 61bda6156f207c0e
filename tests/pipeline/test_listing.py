"""Input expansion: directories, globs and manifests, with keys that never escape the output."""

import json
import unicodedata

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stemforge.pipeline.listing import KEY_PUNCTUATION, expand_input, sanitize_key

EXTS = (".wav", ".flac")


@pytest.mark.parametrize("relative, key", [
    ("a/b/song.wav", "a/b/song"),
    ("../../etc/passwd.wav", "__/__/etc/passwd"),
    ("/abs/path/x.flac", "abs/path/x"),
    ("we\nird\x00name.wav", "we_ird_name"),
    ("c:\\music\\x.wav", "c_/music/x"),
    (".hidden.wav", "hidden"),
    ("ünïcode and spaces.wav", "ünïcode and spaces"),
    ("noext", "noext"),
    ("$(rm -rf ~)/-n 'x' & y;`z`|w.wav", "__rm -rf ~_/_n _x_ _ y__z__w"),
    ("~user/!hist#[a]{b}*?<c>^.flac", "_user/_hist__a__b____c__"),
    ("dt=2026-11-24/A+B, 50% @home~1.wav", "dt=2026-11-24/A+B, 50% @home~1"),
])
def test_sanitize_key(relative, key):
    assert sanitize_key(relative) == key
    assert ".." not in key.split("/") and not key.startswith("/")
    assert not any(part.startswith(("-", "~", ".")) for part in key.split("/"))


def test_sanitize_key_keeps_each_character_by_its_unicode_category():
    """Every character inside a part, plain ASCII (kept without a look-up) or not: kept when it is a letter,
    digit or mark or in KEY_PUNCTUATION, else '_'."""
    for ch in (chr(c) for c in [*range(0x250), 0x301, 0x2028, 0x4E2D, 0x1F3B5] if chr(c) not in "/\\"):
        kept = ch if unicodedata.category(ch)[0] in "LNM" or ch in KEY_PUNCTUATION else "_"
        assert sanitize_key(f"dir/x{ch}y.wav") == f"dir/x{kept}y", repr(ch)


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_directory_is_recursive_and_filtered(tmp_path):
    _touch(tmp_path / "a" / "one.wav")
    _touch(tmp_path / "a" / "b" / "two.FLAC")
    _touch(tmp_path / "notes.txt")
    refs = sorted(expand_input(str(tmp_path), EXTS, {}), key=lambda r: r.track_key)
    assert [r.track_key for r in refs] == ["a/b/two", "a/one"]
    assert refs[1].source == str(tmp_path / "a" / "one.wav")


def test_glob_keys_are_relative_to_its_non_magic_prefix(tmp_path):
    _touch(tmp_path / "set" / "x" / "one.wav")
    _touch(tmp_path / "set" / "y" / "two.wav")
    refs = list(expand_input(str(tmp_path / "set" / "*" / "*.wav"), EXTS, {}))
    assert sorted(r.track_key for r in refs) == ["x/one", "y/two"]


@pytest.mark.parametrize("kind", ["csv", "jsonl", "txt", "parquet"])
def test_manifests_resolve_relative_entries_against_their_folder(tmp_path, kind):
    entries = ["sub/one.wav", "../outside.wav", str(tmp_path / "abs.wav")]
    manifest = tmp_path / "lists" / f"m.{kind}"
    manifest.parent.mkdir()
    if kind == "csv":
        manifest.write_text("path,label\n" + "\n".join(f"{e},x" for e in entries) + "\n")
    elif kind == "jsonl":
        manifest.write_text("\n".join(json.dumps({"path": e}) for e in entries) + "\n")
    elif kind == "txt":
        manifest.write_text("# a comment\n" + "\n".join(entries) + "\n\n")
    else:
        pq.write_table(pa.table({"path": entries}), manifest)
    refs = list(expand_input(str(manifest), EXTS, {}))
    assert [r.source for r in refs] == [str(tmp_path / "lists" / "sub" / "one.wav"),
                                        str(tmp_path / "outside.wav"), str(tmp_path / "abs.wav")]
    assert [r.track_key for r in refs] == ["sub/one", "__/outside", str(tmp_path / "abs")[1:]]


def test_csv_manifest_without_path_column_is_an_error(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("file\nx.wav\n")
    with pytest.raises(ValueError, match="no 'path' column"):
        list(expand_input(str(manifest), EXTS, {}))


def test_missing_input_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file, directory or manifest"):
        list(expand_input(str(tmp_path / "nope"), EXTS, {}))


def test_a_folder_listing_gives_each_source_its_content_fingerprint(tmp_path):
    song = _touch(tmp_path / "in" / "song.wav")
    [ref] = expand_input(str(tmp_path / "in"), EXTS, {})
    assert (ref.size, ref.version) == (1, f"mtime:{song.stat().st_mtime!r}")
    assert list(expand_input(str(song), EXTS, {})) == [ref]


def test_the_outputs_inside_a_searched_folder_are_left_out(tmp_path):
    _touch(tmp_path / "nest" / "a.wav")
    _touch(tmp_path / "nest" / "out" / "a" / "vocals.wav")
    _touch(tmp_path / "nest" / "outside" / "b.wav")
    for uri in (str(tmp_path / "nest"), str(tmp_path / "nest" / "**")):
        refs = expand_input(uri, EXTS, {}, exclude=(str(tmp_path / "nest" / "out"),))
        assert sorted(r.track_key for r in refs) == ["a", "outside/b"]
    # an output that is the searched folder itself or above it excludes nothing
    assert len(list(expand_input(str(tmp_path / "nest"), EXTS, {}, exclude=(str(tmp_path),)))) == 3


def test_symlinked_folders_are_followed_each_real_folder_once(tmp_path, caplog):
    _touch(tmp_path / "elsewhere" / "sub" / "x.wav")
    _touch(tmp_path / "elsewhere" / "z.wav")
    _touch(tmp_path / "in" / "real" / "y.wav")
    (tmp_path / "in" / "again").symlink_to(tmp_path / "elsewhere" / "sub")
    (tmp_path / "in" / "linked").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "in" / "a-shortcut").symlink_to(tmp_path / "in" / "real")
    (tmp_path / "in" / "real" / "loop").symlink_to(tmp_path / "in")
    with caplog.at_level("WARNING", logger="stemforge.pipeline.listing"):
        refs = list(expand_input(str(tmp_path / "in"), EXTS, {}))
    assert sorted(r.track_key for r in refs) == ["again/x", "linked/z", "real/y"]
    assert sorted(r.source for r in refs) == [str(tmp_path / "in" / "again" / "x.wav"),
                                              str(tmp_path / "in" / "linked" / "z.wav"),
                                              str(tmp_path / "in" / "real" / "y.wav")]
    skipped = sorted(r.getMessage().split(": ")[0] for r in caplog.records)
    assert skipped == [str(tmp_path / "in" / p) for p in ("a-shortcut", "linked/sub", "real/loop")]


def test_memory_filesystem_is_listed_through_fsspec():
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/corpus/x/one.wav", b"x")
    refs = list(expand_input("memory://corpus", EXTS, {}))
    assert [r.track_key for r in refs] == ["x/one"]
    with fsspec.open(refs[0].source, "rb") as handle:
        assert handle.read() == b"x"
