"""A prepared track's scratch waveform: read back exactly by range, and no file left open on failure."""

import os

import numpy as np
import pytest
import soundfile as sf

from stemforge.config.run import build_config
from stemforge.pipeline.engine.inference import resolved_model
from stemforge.pipeline.engine.track import PreparedTrack, ScratchAudio, TrackError
from stemforge.transforms import AugmentChain


def test_scratch_audio_reads_back_what_was_written_by_range(tmp_path):
    wave = np.random.default_rng(0).standard_normal((2, 10_000)).astype(np.float32)
    scratch = ScratchAudio(str(tmp_path / "a.f32"), wave.shape[1])
    for start in range(0, 10_000, 3_333):
        scratch.write(start, wave[:, start:start + 3_333])
    np.testing.assert_array_equal(scratch.read(0, 10_000), wave)
    np.testing.assert_array_equal(scratch.read(4_321, 7_777), wave[:, 4_321:7_777])
    assert scratch.read(9_990, 20_000).shape == (2, 10)  # clipped to the waveform, as a slice is
    scratch.close()


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_track_that_fails_after_decoding_leaves_no_open_file(tmp_path):
    sf.write(tmp_path / "ok.wav", np.zeros((44100, 2)), 44100, subtype="FLOAT")
    broken = tmp_path / "nan.wav"
    data = np.zeros((44100, 2), np.float32)
    data[40_000] = np.nan  # decoded block by block: fails in the last block, after the scratch file exists
    sf.write(broken, data, 44100, subtype="FLOAT")
    config = build_config({"run": {"chunk_seconds": 0.6}, "model": {"cropsize": 256}})
    chain = AugmentChain.from_config([])
    before = _open_files()
    for _ in range(5):
        with pytest.raises(TrackError, match="non_finite|NaN"):
            PreparedTrack(str(broken), "nan", 0, config, {}, chain, resolved_model(config, None))
    with PreparedTrack(str(tmp_path / "ok.wav"), "ok", 0, config, {}, chain, resolved_model(config, None)) as track:
        assert track.read(0, 10).shape == (2, 10)
    assert _open_files() == before
