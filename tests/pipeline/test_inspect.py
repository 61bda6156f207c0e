"""`stemforge inspect`: shards, manifests and output folders described from the files themselves; foreign or
broken files refused in one line."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from stemforge_testing import fresh_python, read_manifest, write_config

from stemforge.pipeline.cli import main
from stemforge.shards import tensor_to_numpy

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def output(corpus, tiny_checkpoint, tmp_path_factory):
    folder, _ = corpus
    out = tmp_path_factory.mktemp("inspect") / "out"
    config = write_config(out.parent / "c.yaml", augment={"variants": 2})
    assert main(["run", "--config", str(config), "--input", str(folder), "--output", str(out),
                 "--checkpoint", str(tiny_checkpoint)]) == 0
    return out, read_manifest(next((out / "runs").glob("*.json")))


def _inspect(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["inspect", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def test_an_output_folder_is_described_from_its_shards(output, capsys):
    out, manifest = output
    code, text, _ = _inspect(capsys, str(out), "--json")
    report = json.loads(text)
    assert code == 0 and report["kind"] == "output" and report["uncommitted_shards"] == []
    [run] = report["runs"]
    assert run["run_id"] == manifest["run_id"] and run["status"] == "committed"
    assert len(run["shards"]) == len(manifest["shards"])
    table = pq.read_table([str(out / s) for s in manifest["shards"]])
    assert sum(s["rows"] for s in run["shards"]) == table.num_rows == manifest["counts"]["rows"]
    for shard, relative in zip(run["shards"], manifest["shards"]):
        assert shard["committed"] is True and shard["checkpoint_sha256"] == manifest["checkpoint"]["sha256"]
        assert shard["config"]["model"]["n_fft"] == 512
        assert {c["name"]: c["shape"] for c in shard["schema"]}["vocals"] == [2, 257, 100]
        rows = pq.read_table(out / relative)
        frames = rows.column("num_frames").to_pylist()
        for name in ("mixture", "instruments", "vocals"):
            real = [t[..., :k] for t, k in zip(tensor_to_numpy(rows.column(name)), frames)]
            assert shard["ranges"][name] == {"min": pytest.approx(min(float(r.min()) for r in real)),
                                             "max": pytest.approx(max(float(r.max()) for r in real))}
        assert shard["tracks"] == len(set(rows.column("track_key").to_pylist()))
        assert shard["variants"] == sorted(set(rows.column("variant").to_pylist()))
    code, text, _ = _inspect(capsys, str(out))
    assert code == 0 and "[committed]" in text and "[2, 257, 100]" in text and manifest["run_id"] in text


def test_a_manifest_and_a_shard_alone_and_a_stray_shard(output, capsys, tmp_path):
    out, manifest = output
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    code, text, _ = _inspect(capsys, str(copy / "runs" / f"{manifest['run_id']}.json"), "--json")
    assert code == 0 and json.loads(text)["kind"] == "run"
    shard = copy / manifest["shards"][0]
    code, text, _ = _inspect(capsys, str(shard), "--json")
    assert code == 0 and json.loads(text)["committed"] is True
    stray = copy / "spectrograms" / "dead-run" / shard.name
    stray.parent.mkdir()
    shutil.copy(shard, stray)
    assert json.loads(_inspect(capsys, str(stray), "--json")[1])["committed"] is False
    report = json.loads(_inspect(capsys, str(copy), "--json")[1])
    assert [s["path"] for s in report["uncommitted_shards"]] == [str(stray)]


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("garbage.parquet", b"PAR1 not really", "not a readable Parquet file"),
    ("foreign.parquet", None, "not a stemforge shard"),
    ("other.json", b'{"hello": 1}', "not a stemforge run manifest"),
    ("missing.parquet", "absent", "no such file"),
    ("empty", "folder", "not a stemforge output folder"),
])
def test_foreign_and_broken_paths_get_one_line(tmp_path, capsys, name, content, reason):
    path = tmp_path / name
    if content is None:
        pq.write_table(pa.table({"a": [1, 2]}), path)
    elif content == "folder":
        path.mkdir()
    elif content != "absent":
        path.write_bytes(content)
    code, out, err = _inspect(capsys, str(path))
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert err.startswith(f"stemforge: {path}: {reason}")


def test_unknown_options_are_errors(tmp_path, capsys):
    code, _, err = _inspect(capsys, str(tmp_path), "--runner=DirectRunner")
    assert code == 2 and "unrecognised arguments: --runner=DirectRunner" in err


def test_inspect_ends_quietly_when_its_reader_leaves(tmp_path):
    manifest = tmp_path / "out" / "runs" / "big.json"  # its description is far larger than a pipe's buffer
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"run_id": "big", "status": "committed", "shards": [],
                                    "counts": {f"counter_{i}": i for i in range(20_000)}}))
    proc = subprocess.Popen([sys.executable, "-m", "stemforge", "inspect", str(manifest), "--json"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"{\n"
    proc.stdout.close()  # as `stemforge inspect ... | head -1` does
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert err.decode() == "" and proc.returncode == 141


def test_help_and_inspect_import_neither_torch_nor_audiomentations(output):
    out, _ = output
    code = ("import contextlib, io, sys\n"
            "from stemforge.pipeline.cli import main\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "    main(['--help'])\n"
            "with contextlib.redirect_stdout(io.StringIO()) as text:\n"
            f"    assert main(['inspect', {str(out)!r}]) == 0\n"
            "assert '[committed]' in text.getvalue()\n"
            "print(sorted(m for m in ('torch', 'audiomentations', 'scipy', 'apache_beam') if m in sys.modules))\n")
    assert fresh_python(code).splitlines()[-1] == "[]"
