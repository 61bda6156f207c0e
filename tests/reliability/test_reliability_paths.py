"""No file is written, read as a dataset's or loaded as a model outside the folder it belongs to, whatever path a
user (or an edited manifest) supplies: the stem path template (config and --filename), track keys, --model in
--model-dir, input manifest entries, and the shard lists of run manifests.

A path that the option alone shows to leave its folder is refused before any work (exit 2, one line); one that
only a filled-in template shows is dead-lettered for its track; inputs named by climbing paths are still read."""

import html
import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf
from reliability_support import run_args, sine
from stemforge_testing import TINY, read_manifest, write_config

from stemforge.pipeline.cli import main
from stemforge.config.run import build_config
from stemforge.pipeline.engine.inference import resolved_model
from stemforge.pipeline.engine.job import Job
from stemforge.pipeline.listing import MixRef, expand_stemset
from stemforge.pipeline.report import build_report
from stemforge.pipeline.stages import ERRORS, MixTrack
from stemforge.shards import PathEscape, committed_shards
from stemforge.shards.paths import join as shards_join
from stemforge.training.config import DataConfig
from stemforge.training.data import DataError, inspect_data

TINY_SETS = [arg for key, value in TINY.items() for arg in ("--set", f"model.{key}={value}")]


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture()
def song(tmp_path) -> Path:
    path = tmp_path / "in" / "song.wav"
    path.parent.mkdir()
    sf.write(path, sine(1.2, seed=4), 44100, subtype="FLOAT")
    return path


# ---------------------------------------------------------------- the one join

@pytest.mark.parametrize("root, relative, joined", [
    ("out", "a/b.flac", "out/a/b.flac"),
    ("out/", "a/./b//c/../d.flac", "out/a/b/d.flac"),
    ("s3://bucket/prefix", "runs/r1.json", "s3://bucket/prefix/runs/r1.json"),
    ("s3://bucket/prefix/", "k/../k2/v.flac", "s3://bucket/prefix/k2/v.flac"),
    ("memory://", "x/y", "memory://x/y"),
    ("file:///data/out", "errors/r.jsonl", "file:///data/out/errors/r.jsonl"),
    ("/", "x", "/x"),
])
def test_join_normalises_a_relative_path_under_any_root(root, relative, joined):
    assert shards_join(root, relative) == joined


@pytest.mark.parametrize("root, relative, why", [
    ("out", "../x", "its '..' climbs out"),
    ("out", "a/../../x", "its '..' climbs out"),
    ("s3://bucket/prefix", "k/../../other/x.parquet", "its '..' climbs out"),
    ("s3://bucket/prefix", "/etc/x", "it is an absolute path"),
    ("out", "", "it names the folder itself"),
    ("out", "a/..", "it names the folder itself"),
])
def test_join_refuses_a_path_that_is_not_inside_its_root(root, relative, why):
    with pytest.raises(PathEscape) as caught:
        shards_join(root, relative)
    assert (str(caught.value), caught.value.why, caught.value.reason) == (
        f"{relative!r} is not a path inside {root}: {why}", why, "path_escape")


# ---------------------------------------------------------------- the stem path template, end to end

TEMPLATES = [
    ("{track_key}/../../../elsewhere/{stem}.{ext}", "has a '..' segment"),
    ("/abs/dir/ABS_{track_key}_{stem}.{ext}", "is absolute"),
    ("/{track_key}/../../{stem}.{ext}", "is absolute"),
    ("{track_key}/x/../../../../{stem}.{ext}", "has a '..' segment"),
    ("{track_key}//{stem}.{ext}", "has an empty segment"),
]


@pytest.mark.parametrize("template, why", TEMPLATES)
def test_separate_refuses_a_filename_template_that_leaves_the_output(template, why, song, tiny_checkpoint, tmp_path,
                                                                    capsys):
    before = _files(tmp_path)
    code = main(["separate", str(song), "-o", str(tmp_path / "work" / "out"), "--filename", template,
                 "--checkpoint", str(tiny_checkpoint), "--quiet", *TINY_SETS])
    line = _one_line(capsys.readouterr().err)
    assert code == 2
    assert line.startswith(f"stemforge: output.stem_path: {template!r} {why}: ")
    assert _files(tmp_path) == before  # refused before any work: nothing written anywhere


@pytest.mark.parametrize("template, why", TEMPLATES)
def test_run_refuses_a_config_stem_path_that_leaves_the_stems_folder(template, why, song, tiny_checkpoint, tmp_path,
                                                                    capsys):
    config = write_config(tmp_path / "c.yaml", output={"stem_path": template})
    before = _files(tmp_path)
    code = main(run_args(config, str(song), str(tmp_path / "work" / "out"), str(tiny_checkpoint), "--quiet"))
    line = _one_line(capsys.readouterr().err)
    assert code == 2
    assert line.startswith(f"stemforge: output.stem_path: {template!r} {why}: ")
    assert _files(tmp_path) == before


def test_a_track_key_that_would_leave_the_stems_folder_is_dead_lettered_before_any_work(tmp_path):
    """Listing never makes such a key (``sanitize_key``); if one arrives all the same, the filled path shows it,
    and the track goes to the error output, naming its source and why, before it is read."""
    config = build_config({"input": {"uri": str(tmp_path / "set")}, "output": {"uri": str(tmp_path / "out")},
                           "mix": {"stems": ["vocals", "instruments"]}})
    job = Job(config, "r1", "2026-12-04T00:00:00Z", "none", False, resolved_model(config, None), progress=False)
    stage = MixTrack(job)
    stage.setup()
    source = f"{tmp_path}/set/stemset.csv#evil"
    [out] = list(stage.process((MixRef(source, "../../evil"), 0)))
    assert out.tag == ERRORS
    record = out.value
    assert (record.source, record.track_key, record.stage, record.error) == (source, "../../evil", "write",
                                                                             "path_escape")
    assert record.message == (f"{source}: '../../evil/v0/mixture.flac' is not a path inside {tmp_path}/out/stems: "
                              "its '..' climbs out")
    assert _files(tmp_path) == set()


# ---------------------------------------------------------------- input manifest entries

def test_manifest_entries_that_climb_are_read_and_their_outputs_land_inside_the_output(song, tiny_checkpoint,
                                                                                       tmp_path):
    """An entry like ../../in/song.wav is a legitimate input to read; its key and every output stay inside."""
    manifest = tmp_path / "a" / "lists" / "m.txt"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("../../in/song.wav\n")
    out = tmp_path / "a" / "out"
    config = write_config(tmp_path / "c.yaml")
    before = _files(tmp_path)
    assert main(run_args(config, str(manifest), str(out), str(tiny_checkpoint), "--quiet")) == 0
    [committed] = [read_manifest(p) for p in (out / "runs").glob("*.json")]
    [key] = committed["tracks"]
    assert committed["counts"]["failed"] == 0 and not {"", ".", ".."} & set(key.split("/"))
    assert sorted(p.name for p in (out / "stems" / key / "v0").iterdir()) == ["instruments.wav", "vocals.wav"]
    written = _files(tmp_path) - before
    assert written and [p for p in written if out not in p.parents] == []


def test_a_stem_set_whose_track_and_stem_paths_climb_is_read_and_keyed_inside(tmp_path):
    """A mix run's input: stems named by ../ paths are read from there; the track column never makes a key
    (and so a stem path) outside the output."""
    stems = tmp_path / "stems"
    stems.mkdir()
    for name in ("vocals", "instruments"):
        sf.write(stems / f"{name}.wav", sine(0.5, seed=len(name)), 44100, subtype="FLOAT")
    manifest = tmp_path / "a" / "b" / "set.csv"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("track,vocals,instruments\n../../../evil,../../stems/vocals.wav,../../stems/instruments.wav\n")
    config = build_config({"input": {"uri": str(manifest)}, "output": {"uri": str(tmp_path / "out")},
                           "mix": {"stems": ["vocals", "instruments"]}})
    [ref] = list(expand_stemset(str(manifest), config.mix.sources, {}))
    assert dict(ref.stems) == {n: str(stems / f"{n}.wav") for n in ("vocals", "instruments")}
    out = tmp_path / "out" / "stems"
    for stem in ("mixture", "vocals", "instruments"):
        assert out in Path(config.output.stem_uri(ref.track_key, 0, stem)).parents


# ---------------------------------------------------------------- --model and --model-dir

@pytest.mark.parametrize("name, expected", [
    ("../outside.pth", "stemforge: separate: --model ../outside.pth: not a file in the model folder ({dir}): "
                       "its '..' climbs out"),
    ("sub/../../outside.pth", "stemforge: separate: --model sub/../../outside.pth: not a file in the model folder "
                              "({dir}): its '..' climbs out"),
    ("{abs}", "stemforge: separate: --model {abs}: --model names a file in the model folder ({dir}); pass a "
              "checkpoint's path or URL with --checkpoint"),
    ("", "stemforge: separate: --model is empty: name a checkpoint file in --model-dir, or leave --model out for "
         "the shipped voice-music-1024 model"),
])
def test_model_names_a_file_inside_the_model_dir(name, expected, song, tiny_checkpoint, tmp_path, capsys):
    outside = tmp_path / "outside.pth"
    shutil.copy(tiny_checkpoint, outside)
    models = tmp_path / "models"
    (models / "sub").mkdir(parents=True)
    name = name.format(abs=outside)
    before = _files(tmp_path)
    code = main(["separate", str(song), "-o", str(tmp_path / "out"), "--model", name, "--model-dir", str(models),
                 "--quiet", *TINY_SETS])
    assert code == 2
    assert _one_line(capsys.readouterr().err) == expected.format(dir=models, abs=outside)
    assert _files(tmp_path) == before


# ---------------------------------------------------------------- shard lists of run manifests

@pytest.fixture()
def edited_output(local_reference, tmp_path) -> tuple[Path, str, str]:
    """A copy of a committed output whose manifest lists one of its shards as ../elsewhere/NAME (moved there)."""
    out = tmp_path / "out"
    shutil.copytree(local_reference[1], out)
    [path] = (out / "runs").glob("*.json")
    manifest = json.loads(path.read_text())
    first = manifest["shards"][0]
    (tmp_path / "elsewhere").mkdir()
    name = Path(first).name
    (out / first).rename(tmp_path / "elsewhere" / name)
    manifest["shards"][0] = f"../elsewhere/{name}"
    path.write_text(json.dumps(manifest))
    message = (f"{out}/runs/{manifest['run_id']}.json lists a shard outside its output folder, "
               f"'../elsewhere/{name}': its '..' climbs out")
    return out, manifest["run_id"], message


def test_inspect_refuses_a_manifest_that_lists_a_shard_outside_the_output(edited_output, capsys):
    out, _, message = edited_output
    assert main(["inspect", str(out)]) == 2
    assert _one_line(capsys.readouterr().err) == f"stemforge: {message}"


def test_committed_shards_refuses_a_manifest_that_lists_a_shard_outside_the_root(edited_output):
    out, _, message = edited_output
    with pytest.raises(PathEscape) as caught:
        committed_shards(str(out))
    assert str(caught.value) == message


def test_train_refuses_data_whose_manifest_lists_a_shard_outside_the_root(edited_output):
    out, _, message = edited_output
    with pytest.raises(DataError) as caught:
        inspect_data(DataConfig(roots=(str(out),)))
    assert str(caught.value) == message


def test_report_reads_no_shard_outside_the_output_and_says_so(edited_output):
    out, _, _ = edited_output
    name = Path(read_manifest(next((out / "runs").glob("*.json")))["shards"][0]).name
    page = build_report(str(out), samples=0)
    assert html.escape(f"not read: '../elsewhere/{name}' is not a path inside {out}: its '..' climbs out") in page


def test_separate_refuses_set_output_uri_that_would_split_its_output(song, tiny_checkpoint, tmp_path, capsys):
    """-o names where everything goes, and the summary says so; --set output.uri would send the manifest elsewhere."""
    before = _files(tmp_path)
    code = main(["separate", str(song), "-o", str(tmp_path / "out"), "--set", f"output.uri={tmp_path / 'x'}",
                 "--checkpoint", str(tiny_checkpoint), "--quiet", *TINY_SETS])
    assert code == 2
    assert _one_line(capsys.readouterr().err) == (
        f"stemforge: separate: --set output.uri={tmp_path / 'x'}: -o sets output.uri and output.stems_uri (stems, "
        "manifest and errors all go there); pass -o, or use `stemforge run` to put the stems elsewhere")
    assert _files(tmp_path) == before
