"""The report's audio clips: at most 15 s, Opus at 48 kHz, loud stems scaled (said), never clipped."""

import base64
import html
import io
import re

import numpy as np
import soundfile as sf

from stemforge.pipeline.report_audio import clips, read_clip


def _decoded(page: str) -> list[tuple[str, np.ndarray, int]]:
    found = re.findall(r'<audio controls preload="metadata" src="data:audio/ogg;codecs=opus;base64,([^"]+)" '
                       r'title="([^"]+)">', page)
    return [(html.unescape(title), *sf.read(io.BytesIO(base64.b64decode(data)))) for data, title in found]


def test_a_long_file_gives_its_first_fifteen_seconds(tmp_path):
    t = np.arange(20 * 22050) / 22050
    sf.write(tmp_path / "long.wav", np.stack([0.5 * np.sin(2 * np.pi * 330 * t)] * 2).T, 22050)
    with sf.SoundFile(tmp_path / "long.wav") as sound:
        sound.read(1000)  # wherever the file was left, the clip starts at its beginning
        wave, rate = read_clip(sound)
    assert (wave.shape, rate) == ((15 * 22050, 2), 22050)
    np.testing.assert_allclose(wave[:, 0], 0.5 * np.sin(2 * np.pi * 330 * t[: 15 * 22050]), atol=1e-4)
    (title, clip, clip_rate), = _decoded(clips({"mixture": (wave, rate)}))
    assert title == "mixture, first 15.0 s" and clip_rate == 48000
    assert abs(len(clip) - 15 * 48000) <= 48 * 25
    assert abs(np.sqrt(np.mean(clip[4800:-4800] ** 2)) - 0.5 / np.sqrt(2)) < 0.02


def test_stems_without_a_mixture_get_their_sum_and_loud_ones_are_scaled_not_clipped():
    t = np.arange(44100) / 44100
    low = np.stack([0.9 * np.sin(2 * np.pi * 220 * t)] * 2).T.astype(np.float32)
    high = np.stack([0.9 * np.sin(2 * np.pi * 220 * t)] * 2).T.astype(np.float32)
    players = _decoded(clips({"instruments": (low, 44100), "vocals": (high, 44100)}))
    assert [p[0] for p in players] == ["mixture (the stems' sum), first 1.0 s, scaled by -5.1 dB to fit full scale",
                                       "instruments, first 1.0 s", "vocals, first 1.0 s"]
    summed = players[0][1]
    assert abs(np.abs(summed[4800:-4800]).max() - 1.0) < 0.05  # 1.8 peak scaled to 1, not cut at 1
    assert abs(np.sqrt(np.mean(summed[4800:-4800] ** 2)) - 1 / np.sqrt(2)) < 0.03
