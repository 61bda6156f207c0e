"""`model.share_across_processes` (Beam's MultiProcessShared, as RunInference's large_model): the model is loaded
once per machine, by the first SDK process that needs it, and served to every other one, here two processes of the
FnApiRunner; the committed rows equal a run that loads one model per process."""


import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from stemforge_testing import read_manifest, write_config

from stemforge.pipeline.cli import main


def _rows(out) -> pa.Table:
    [manifest] = [read_manifest(p) for p in (out / "runs").glob("*.json")]
    table = pa.concat_tables([pq.read_table(out / s) for s in manifest["shards"]])
    return table.sort_by([("track_key", "ascending"), ("segment", "ascending")])


def test_a_model_shared_across_processes_gives_the_same_rows(corpus, tiny_checkpoint, tmp_path):
    """Also with the spectrograms in torch (model.spectra=device), whose windows go to the shared model as host
    arrays: the rows then equal the host path's to float32 rounding."""
    folder, _ = corpus
    outs = {}
    for shared, spectra in ((False, "host"), (True, "host"), (True, "device")):
        config = write_config(tmp_path / f"{shared}-{spectra}.yaml", output={"write_stems": False},
                              model={"share_across_processes": shared, "model_copies": 1, "cpu_threads": 1,
                                     "spectra": spectra})
        outs[shared, spectra] = tmp_path / f"out-{shared}-{spectra}"
        assert main(["run", "--config", str(config), "--input", str(folder), "--output", str(outs[shared, spectra]),
                     "--checkpoint", str(tiny_checkpoint), "--direct_num_workers", "2",
                     "--direct_running_mode", "multi_processing", "--quiet"]) == 0
    alone, shared, device = (_rows(outs[key]) for key in ((False, "host"), (True, "host"), (True, "device")))
    assert alone.num_rows == shared.num_rows == device.num_rows > 0
    for name in ("track_key", "segment", "mixture", "instruments", "vocals"):
        expected = np.asarray(alone.column(name).to_pylist())
        np.testing.assert_array_equal(np.asarray(shared.column(name).to_pylist()), expected)
        got = np.asarray(device.column(name).to_pylist())
        if name in ("track_key", "segment"):
            np.testing.assert_array_equal(got, expected)
        else:
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
