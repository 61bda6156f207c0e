"""A large manifest is listed in parts (Parquet row groups, byte ranges of a text manifest) that together give
exactly the entries of the whole, in order; and a run lists such a manifest part by part on its workers."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from stemforge_testing import TINY, music, read_manifest

from stemforge.pipeline import entries
from stemforge.pipeline.cli import main
from stemforge.pipeline.entries import manifest_entries, manifest_parts
from stemforge.pipeline.listing import expand_input

EXTS = (".wav",)
TINY_SETS = [arg for key, value in TINY.items() for arg in ("--set", f"model.{key}={value}")]
NAMES = [f"dir {i % 7}/sóng-{i:04d}-ünï.wav" for i in range(500)]  # multi-byte characters cross the boundaries


def _by_parts(uri: str) -> list:
    parts = manifest_parts(uri, {})
    assert len(parts) > 3 and None not in parts
    return [ref for part in parts for ref in expand_input(uri, EXTS, {}, part=part)]


@pytest.fixture
def small_parts(monkeypatch):
    monkeypatch.setattr(entries, "PART_BYTES", 997)  # a prime: the ranges cut lines anywhere


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_a_text_manifest_in_byte_ranges_lists_what_python_reads_whole(tmp_path, small_parts, newline):
    lines = ["# a comment", *NAMES[:200], "", "   ", *NAMES[200:], "#tail"]
    manifest = tmp_path / "m.txt"
    manifest.write_bytes(newline.join(lines).encode())
    with open(manifest, encoding="utf-8", newline=None) as handle:  # Python's universal newlines
        expected = [line.rstrip("\n") for line in handle if line.strip() and not line.startswith("#")]
    assert expected == NAMES
    whole = list(expand_input(str(manifest), EXTS, {}))
    assert [r.source for r in whole] == [str(tmp_path / n) for n in NAMES]
    assert _by_parts(str(manifest)) == whole


def test_a_jsonl_manifest_in_byte_ranges_names_the_line_of_a_bad_entry(tmp_path, small_parts):
    lines = [json.dumps({"path": n}) for n in NAMES]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    assert _by_parts(str(manifest)) == list(expand_input(str(manifest), EXTS, {}))
    lines[400] = json.dumps({"file": "x.wav"})
    manifest.write_text("\r\n".join(lines[:100]) + "\r\n" + "\n".join(lines[100:]) + "\n")
    failing = [p for p in manifest_parts(str(manifest), {}) if p[1] <= manifest.read_bytes().index(b'"file"') < p[2]]
    with pytest.raises(ValueError, match=f"^{manifest}: line 401 has no 'path'$"):
        list(manifest_entries(str(manifest), {}, failing[0]))
    with pytest.raises(ValueError, match=f"^{manifest}: line 401 has no 'path'$"):
        list(manifest_entries(str(manifest), {}))


def test_a_parquet_manifest_by_row_group_lists_what_it_holds(tmp_path):
    manifest = tmp_path / "m.parquet"
    paths = NAMES[:250] + [None, ""] + NAMES[250:]
    pq.write_table(pa.table({"path": paths, "label": list(range(len(paths)))}), manifest, row_group_size=64)
    assert [r.source for r in _by_parts(str(manifest))] == [str(tmp_path / n) for n in NAMES]
    assert _by_parts(str(manifest)) == list(expand_input(str(manifest), EXTS, {}))


def test_a_small_or_csv_manifest_is_one_part(tmp_path):
    (tmp_path / "m.txt").write_text("a.wav\n")
    (tmp_path / "m.csv").write_text("path\n" + "\n".join(NAMES * 40) + "\n")
    assert manifest_parts(str(tmp_path / "m.txt"), {}) == [None]
    assert manifest_parts(str(tmp_path / "m.csv"), {}) == [None]


def test_a_run_lists_a_manifest_in_parts_and_separates_each_entry_once(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(entries, "PART_BYTES", 16)
    for i in range(5):
        path = tmp_path / "in" / f"song{i}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, music(22050, seed=i).T, 44100)
    manifest = tmp_path / "in" / "list.txt"
    manifest.write_text("".join(f"song{i}.wav\n" for i in (3, 1, 4, 0, 2, 3)))  # one named twice
    assert len(manifest_parts(str(manifest), {})) == 4
    out = tmp_path / "out"
    assert main(["separate", str(manifest), "-o", str(out), "--checkpoint", str(tiny_checkpoint), "--quiet",
                 *TINY_SETS]) == 0
    [run] = [read_manifest(p) for p in (out / "runs").glob("*.json")]
    assert run["tracks"] == [f"song{i}" for i in range(5)]
    assert (run["counts"]["inputs"], run["counts"]["succeeded"]) == (5, 5)
