"""The engine (``pipeline.engine``) without Beam: it imports none, and one track driven through
``engine.one_track`` gives the stems and rows a run on Beam's runner commits, bit for bit."""

from pathlib import Path

import numpy as np
import pytest
import pyarrow.parquet as pq
import soundfile as sf
from apache_beam.options.pipeline_options import PipelineOptions
from stemforge_testing import fresh_python, write_config

from stemforge.config.run import load_config
from stemforge.model.batcher import WindowBatcher
from stemforge.pipeline.engine.inference import load_model
from stemforge.pipeline.engine.job import open_job
from stemforge.pipeline.engine.one_track import separate_track
from stemforge.pipeline.graph import run
from stemforge.pipeline.launch import make_job
from stemforge.shards import tensor_to_numpy
from stemforge.transforms import AugmentChain

ROOT = Path(__file__).resolve().parents[2]
ENGINE = sorted(f"stemforge.pipeline.engine.{path.stem}" for path in (ROOT / "pipeline" / "engine").glob("*.py"))


def test_every_engine_module_imports_without_beam():
    code = ("import importlib, sys\n"
            f"for name in {ENGINE!r}:\n"
            "    importlib.import_module(name)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'apache_beam'))\n")
    assert len(ENGINE) > 10 and fresh_python(code).splitlines()[-1] == "[]"


def test_one_track_without_beam_equals_the_run_on_beams_runner(tiny_checkpoint, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rng = np.random.default_rng(11)
    sf.write(corpus / "song.wav", 0.2 * rng.standard_normal((3 * 44100, 2)), 44100, subtype="FLOAT")
    path = write_config(tmp_path / "c.yaml", augment={"variants": 2}, model={"tta": True, "postprocess": True})
    settings = [f"input.uri={corpus}", f"model.checkpoint={tiny_checkpoint}"]
    beam_config = load_config(path, [*settings, f"output.uri={tmp_path / 'beam'}"])
    manifest, _ = run(make_job(beam_config, progress=False),
                      PipelineOptions(["--runner", "FnApiRunner", "--direct_num_workers", "1"]))
    table = pq.read_table([tmp_path / "beam" / shard for shard in manifest["shards"]]).sort_by(
        [("variant", "ascending"), ("segment", "ascending")])

    job = open_job(load_config(path, [*settings, f"output.uri={tmp_path / 'engine'}"]), progress=False)
    config = job.config
    batcher = WindowBatcher(load_model(config.model, config.storage_options), config.model.batch_size)
    chain = AugmentChain.from_config(list(config.augment.chain))
    try:
        outputs = [separate_track(job, str(corpus / "song.wav"), "song", variant, chain, batcher)
                   for variant in range(2)]
    finally:
        batcher.close()

    rows = [row for out in outputs for row in out.rows]
    assert len(rows) == table.num_rows == 2 * -(-outputs[0].meta.num_frames // config.output.segment_frames)
    for name in ("track_key", "variant", "segment", "start_frame", "num_frames", "seed", "augment_params",
                 "stem_gain"):
        assert [row[name] for row in rows] == table.column(name).to_pylist(), name
    for name in ("mixture", "instruments", "vocals"):
        np.testing.assert_array_equal(np.stack([row[name] for row in rows]), tensor_to_numpy(table.column(name)))
    for out in outputs:
        for stem in config.model.stems:
            engine_stem = Path(config.output.stem_uri("song", out.meta.variant, stem))
            beam_stem = Path(beam_config.output.stem_uri("song", out.meta.variant, stem))
            assert engine_stem.parent != beam_stem.parent
            assert engine_stem.read_bytes() == beam_stem.read_bytes()


def test_a_run_with_a_model_needs_a_batcher(tiny_checkpoint, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    sf.write(corpus / "song.wav", np.zeros((44100, 2), np.float32), 44100, subtype="FLOAT")
    config = load_config(write_config(tmp_path / "c.yaml"), [f"input.uri={corpus}", f"output.uri={tmp_path / 'out'}",
                                                             f"model.checkpoint={tiny_checkpoint}"])
    job = open_job(config, progress=False)
    chain = AugmentChain.from_config(list(job.config.augment.chain))
    with pytest.raises(ValueError, match=r"^the run has a model: its stems and model columns need the track's masks"):
        separate_track(job, str(corpus / "song.wav"), "song", 0, chain, None)
    assert not (tmp_path / "out" / "stems").exists()
