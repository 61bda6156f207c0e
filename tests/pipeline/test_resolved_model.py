"""The model is decided once, at launch (pipeline.engine.inference.ResolvedModel): the job carries the band table, the
network's family, its offset and the masks' aggression to every worker, and no track reads any of them again."""

import pickle
import shutil
from pathlib import Path

import soundfile as sf
from stemforge_testing import SR, music, write_config
from uvr_reference import uvr_test_net

from stemforge.model import save_checkpoint
from stemforge.config.run import load_config
from stemforge.pipeline.launch import make_job
from stemforge.transforms import AugmentChain, load_band_params

TABLE = "4band_v2"


def test_the_band_table_is_read_at_launch_and_never_by_a_track(tmp_path: Path) -> None:
    bands = load_band_params(TABLE)
    table = tmp_path / "table.json"
    shutil.copyfile(Path(__file__).parents[2] / "transforms" / "bandparams" / f"{TABLE}.json", table)
    wave = music(SR, seed=3)
    wav = tmp_path / "mix.wav"
    sf.write(wav, wave.T, SR, subtype="FLOAT")
    net = uvr_test_net(31191, bands, wave)
    save_checkpoint(net, str(tmp_path / "uvr.pth"))
    path = write_config(tmp_path / "c.yaml", input={"uri": str(wav)}, output={"uri": str(tmp_path / "out")},
                        model={"checkpoint": str(tmp_path / "uvr.pth"), "band_params": str(table),
                               "aggression": 7, "cropsize": 512, "stems": ["vocals", "instruments"]})
    expected = load_band_params(str(table))
    assert expected.bands == bands.bands
    job = pickle.loads(pickle.dumps(make_job(load_config(path), progress=False)))  # as Beam ships it
    resolved = job.model
    assert (resolved.family, resolved.offset, resolved.cropsize) == ("aspp", int(net.offset), 512)
    assert resolved.bands == expected and not resolved.per_band
    assert (resolved.aggression.value, resolved.aggression.flip) == (7, True)  # vocals first: flipped
    table.unlink()  # a worker that read the table again would fail now
    with job.prepare(str(wav), "mix", 0, AugmentChain.from_config([])) as track:
        assert track.layout.bands == expected and track.layout.per_band is False
        assert track.frames().get(0, 4).shape[-1] == 4
