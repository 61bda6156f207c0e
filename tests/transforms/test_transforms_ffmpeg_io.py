"""The FFmpeg (PyAV) decoder behind open_audio: every format a corpus holds, exact lengths, gapless
alignment, streamed and seeking reads, truncation and garbage, and no decoder noise on stderr.
Files are made here by the ffmpeg command; its own decode is the reference."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from encoded_audio import KIND, KINDS, SR, encode, lag_of, need_ffmpeg, reference_decode, write_source

from stemforge.transforms import AUDIO_EXTENSIONS, AudioError, audio_info, load_audio, open_audio

@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, tuple[Path, np.ndarray]]:
    """Every kind encoded from one 2 s source: name -> (file, source samples)."""
    need_ffmpeg()
    folder = tmp_path_factory.mktemp("encoded")
    source = write_source(folder / "source.wav")
    files = {}
    for kind in KINDS:
        (folder / kind.name).mkdir()
        files[kind.name] = (encode(folder / "source.wav", folder / kind.name / kind.filename, kind.args), source)
    return files


def _reason(path) -> AudioError:
    with pytest.raises(AudioError) as caught:
        load_audio(str(path))
    return caught.value


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_each_format_decodes_like_ffmpeg_with_its_exact_length(made, kind):
    path, source = made[kind.name]
    samples, rate = load_audio(str(path))
    info = audio_info(str(path))
    reference = reference_decode(path)
    assert (info.decoder, info.length, info.frames) == (kind.decoder, kind.length, samples.shape[1])
    if kind.length == "declared":  # the gapless length: the source's, sample for sample
        assert samples.shape[1] == source.shape[1]
        assert 0 <= reference.shape[1] - samples.shape[1] < 2048  # ffmpeg's CLI leaves an MP4's end padding in
    else:
        assert samples.shape[1] == reference.shape[1]
    np.testing.assert_allclose(samples, reference[:, :samples.shape[1]], atol=2e-4)
    if kind.lossless:
        np.testing.assert_array_equal(samples, source)
    elif kind.lag is not None:
        assert lag_of(samples, source) == kind.lag
    assert rate == (48000 if kind.name == "webm_opus" else SR)


@pytest.mark.parametrize("name", ["mp3_cbr_no_xing", "m4a_aac", "webm_opus", "wma"])
def test_streamed_and_seeking_reads_equal_the_whole_read(made, name):
    path, _ = made[name]
    whole, _ = load_audio(str(path))
    with open_audio(str(path)) as reader:
        streamed = np.concatenate(list(reader.blocks(4096)), axis=1)
        middle = reader.read(30000, 41234)
        again = reader.read(100, 200)
    np.testing.assert_array_equal(streamed, whole)
    np.testing.assert_array_equal(middle, whole[:, 30000:41234])
    np.testing.assert_array_equal(again, whole[:, 100:200])
    part, _ = load_audio(str(path), start=50000, stop=50500)
    np.testing.assert_array_equal(part, whole[:, 50000:50500])


def test_the_scratch_file_lives_in_the_given_folder_and_goes_with_the_reader(made, tmp_path):
    path, _ = made["m4a_aac"]
    before = os.statvfs(tmp_path).f_bfree
    with open_audio(str(path), scratch_dir=str(tmp_path)) as reader:
        assert reader.read(0, 10).shape == (2, 10)
        assert os.statvfs(tmp_path).f_bfree < before or os.listdir(tmp_path) == []  # anonymous: no name
    assert os.listdir(tmp_path) == []


def test_vbr_mp3_without_xing_has_its_full_length(tmp_path):
    """libsndfile estimates such a file from its first frame's bitrate; quiet-then-loud music makes the
    estimate far too short, and the reader used to stop there without a word."""
    need_ffmpeg()
    x = write_source(tmp_path / "source.wav", seconds=6.0)
    x[:, : 3 * SR] *= 0.001  # a near-silent first half: tiny first frames
    sf.write(tmp_path / "source.wav", x.T, SR, subtype="PCM_16")
    path = encode(tmp_path / "source.wav", tmp_path / "vbr.mp3", KIND["mp3_vbr_no_xing"].args)
    samples, _ = load_audio(str(path))
    assert samples.shape[1] == reference_decode(path).shape[1] >= 6 * SR
    assert audio_info(str(path)).frames == samples.shape[1]


@pytest.mark.parametrize("kind", [k for k in KINDS if k.name not in ("caf_pcm", "wma")], ids=lambda k: k.name)
def test_a_stream_damaged_in_the_middle_is_truncated(made, kind, tmp_path):
    path, _ = made[kind.name]
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 2000] = np.random.default_rng(3).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    damaged = tmp_path / path.name
    damaged.write_bytes(bytes(data))
    error = _reason(damaged)
    assert error.reason == "truncated" and str(damaged) in str(error)


CUT = [("mp3_xing", "Xing header declares"), ("m4a_aac", "malformed"),
       ("mp4_aac_faststart", "at or after (frame|packet)"), ("aac_adts", "at or after frame"),
       ("webm_opus", "(ended prematurely|container declares 2.0)"), ("mka_vorbis", "(ended prematurely|declares)"),
       ("mkv_flac", "(ended prematurely|declares)"), ("wma", "(at or after frame|declares)"),
       ("m4a_alac", "malformed"), ("caf_alac", "(malformed|declares)"),
       ("caf_pcm", "(at or after frame|declares)"), ("wavpack", "at or after frame")]


@pytest.mark.parametrize(("name", "said"), CUT)
@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_a_cut_file_is_truncated_where_its_length_is_known(made, tmp_path, name, said, keep):
    path, _ = made[name]
    data = path.read_bytes()
    cut = tmp_path / path.name
    cut.write_bytes(data[:int(len(data) * keep)])
    error = _reason(cut)
    assert error.reason == "truncated" and re.search(said, str(error)), str(error)


@pytest.mark.parametrize("name", ["mp3_cbr_no_xing", "mp3_vbr_no_xing"])
def test_a_cut_mp3_without_a_length_is_what_decodes(made, tmp_path, name):
    path, _ = made[name]
    data = path.read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[:len(data) // 2])
    samples, _ = load_audio(str(cut))
    info = audio_info(str(cut))
    assert samples.shape[1] == reference_decode(cut).shape[1] == info.frames and info.length == "counted"


@pytest.mark.parametrize("filename", [f"garbage{ext}" for ext in AUDIO_EXTENSIONS])
def test_garbage_under_any_audio_name_is_unreadable(tmp_path, filename):
    path = tmp_path / filename
    path.write_bytes(np.random.default_rng(4).integers(0, 256, 40000, dtype=np.uint8).tobytes())
    error = _reason(path)
    assert error.reason == "unreadable" and filename in str(error)


def test_the_decoder_is_chosen_from_the_content_not_the_name(made, tmp_path):
    path, _ = made["m4a_aac"]
    renamed = tmp_path / "actually_aac.wav"
    renamed.write_bytes(path.read_bytes())
    assert audio_info(str(renamed)).decoder == "ffmpeg"
    wav = tmp_path / "really.m4a"
    write_source(tmp_path / "really.wav")
    (tmp_path / "really.wav").rename(wav)
    assert audio_info(str(wav)).decoder == "libsndfile"


@pytest.mark.parametrize("rate", [48000, 22050])
def test_raw_aac_at_any_rate_is_recognised_as_aac(tmp_path, rate):
    write_source(tmp_path / "source.wav")
    path = encode(tmp_path / "source.wav", tmp_path / "x.aac", ("-ar", str(rate), *KIND["aac_adts"].args))
    info = audio_info(str(path))
    assert (info.format, info.sample_rate, info.length) == ("AAC", rate, "counted")
    data = path.read_bytes()
    (tmp_path / "cut.aac").write_bytes(data[:len(data) // 2 + 7])
    assert _reason(tmp_path / "cut.aac").reason == "truncated"


DAMAGED_SCRIPT = """
import sys
from stemforge.transforms import AudioError, load_audio
for path in sys.argv[1:]:
    try:
        load_audio(path)
    except AudioError as error:
        print(error.reason)
"""


def test_no_decoder_writes_to_stderr(made, tmp_path):
    """libmpg123 and FFmpeg print to the C stderr (fd 2) when they meet damage; nothing may reach it."""
    paths = []
    for name in ("mp3_xing", "mp3_cbr_no_xing", "m4a_aac", "webm_opus", "aac_adts"):
        data = bytearray(made[name][0].read_bytes())
        data[len(data) // 2:len(data) // 2 + 3000] = bytes(range(256)) * 11 + bytes(184)
        paths.append(tmp_path / f"{name}{made[name][0].suffix}")
        paths[-1].write_bytes(bytes(data))
    cut = made["m4a_aac"][0].read_bytes()
    paths.append(tmp_path / "cut.m4a")
    paths[-1].write_bytes(cut[:len(cut) // 2])
    done = subprocess.run([sys.executable, "-c", DAMAGED_SCRIPT, *map(str, paths)], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert done.returncode == 0 and done.stdout.split() == ["truncated"] * len(paths)
    assert done.stderr == ""
