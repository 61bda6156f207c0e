"""A track's model masks in its local scratch file (TrackMasks), and its spectrogram kept once (the single band's
peak pass, SingleBandFrames.peak_pass):
both read back exactly what was computed, in any order and across block boundaries."""

import threading

import librosa
import numpy as np
import pytest

from stemforge.pipeline.engine.masks import TrackMasks
from stemforge.config.run import build_config
from stemforge.pipeline.engine.single_band import SingleBandLayout
from stemforge.transforms import end_padded_frames


def test_masks_arrive_in_any_order_and_load_by_window(tmp_path):
    keys = [(0, i) for i in range(5)] + [(1, i) for i in range(4)]
    masks = TrackMasks(str(tmp_path / "masks.f32"), keys)
    rng = np.random.default_rng(0)
    made = {key: rng.random((2, 9, 6), dtype=np.float32) for key in keys}
    for key in reversed(keys):
        assert not masks.complete
        masks.receiver(key)(made[key])
    masks.wait()
    for key in keys:
        np.testing.assert_array_equal(masks.load(*key), made[key])
    masks.close()


def test_the_model_error_is_raised_where_the_track_waits_and_late_masks_after_close_are_dropped(tmp_path):
    masks = TrackMasks(str(tmp_path / "m.f32"), [(0, 0), (0, 1)])
    masks.receiver((0, 0))(RuntimeError("model failed on this batch"))
    waiter = threading.Thread(target=lambda: masks.receiver((0, 1))(np.zeros((2, 3, 4), np.float32)))
    waiter.start()
    waiter.join()
    with pytest.raises(RuntimeError, match="model failed"):
        masks.wait()
    given_up = TrackMasks(str(tmp_path / "g.f32"), [(0, 0)])
    given_up.close()
    other = tmp_path / "other.bin"
    other.write_bytes(b"untouched")  # likely reuses the closed descriptor's number
    with open(other, "r+b"):
        given_up.receiver((0, 0))(np.ones((2, 3, 4), np.float32))
    assert other.read_bytes() == b"untouched" and given_up.complete


@pytest.mark.parametrize("samples", [5000, 4096])
def test_kept_frames_equal_librosa_plain_and_end_padded(tmp_path, samples):
    n_fft, hop = 512, 128
    wave = np.random.default_rng(1).standard_normal((2, samples)).astype(np.float32) * 0.3
    layout = SingleBandLayout(build_config({"model": {"n_fft": n_fft, "hop_length": hop, "spectra": "host"}}).model)
    spectra = layout.open({"mix": lambda a, b: wave[:, a:b]}, samples, str(tmp_path), block_frames=7,
                          block_samples=1000)
    peak = spectra.peak_pass("mix")
    plain = librosa.stft(wave, n_fft=n_fft, hop_length=hop)
    padded_wave = np.concatenate([wave, np.zeros((2, n_fft), np.float32)], axis=1)
    padded = librosa.stft(padded_wave, n_fft=n_fft, hop_length=hop)[..., : end_padded_frames(samples, n_fft, hop)]
    assert peak == float(np.abs(plain).max())
    for frames, expected in ((spectra.frames("mix"), plain), (spectra.frames("mix", padded=True), padded)):
        assert frames.total == expected.shape[-1]
        for start, stop in ((0, 5), (3, 20), (frames.total - 9, frames.total), (0, frames.total)):
            np.testing.assert_array_equal(frames.get(start, stop), expected[..., start:stop])
    spectra.close()
