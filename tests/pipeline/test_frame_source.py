"""A single band's frame source end to end without a model: the stems of a whole mask are the track itself
(the inverse STFT of its own frames, every sample back, blocks in order) and silence."""

import numpy as np

from stemforge.config.run import build_config
from stemforge.pipeline.engine.single_band import SingleBandLayout


class WholeMask:
    """A mask of ones over every frame asked for, the end padding's included."""

    def __init__(self, bins: int) -> None:
        self.bins = bins

    def get(self, start: int, stop: int) -> np.ndarray:
        return np.ones((2, self.bins, stop - start), np.float32)


def test_single_band_stems_of_a_whole_mask_are_the_track_and_silence(tmp_path):
    n_fft, hop, samples = 512, 128, 5003
    wave = np.random.default_rng(4).standard_normal((2, samples)).astype(np.float32) * 0.3
    layout = SingleBandLayout(build_config({"model": {"n_fft": n_fft, "hop_length": hop, "spectra": "host"}}).model)
    source = layout.open({"mix": lambda a, b: wave[:, a:b]}, samples, str(tmp_path), block_frames=7,
                         block_samples=1000)
    source.peak_pass("mix")
    stems: dict[int, list[np.ndarray]] = {0: [], 1: []}
    source.synthesise(WholeMask(layout.bins), lambda k, audio: stems[k].append(audio))
    source.close()
    first, second = (np.concatenate(stems[k], axis=1) for k in (0, 1))
    assert first.shape == second.shape == wave.shape
    np.testing.assert_allclose(first, wave, rtol=0, atol=1e-5)
    assert not second.any()
