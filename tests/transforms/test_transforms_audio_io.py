"""load_audio / audio_info / open_audio on real files written here, good and bad."""

from __future__ import annotations

import functools
import http.server
import os
import pickle
import shutil
import socket
import subprocess
import threading
import wave

import fsspec
import numpy as np
import pytest
import soundfile as sf

from stemforge.transforms import AudioError, audio_info, load_audio, open_audio

SR = 44100


def _tone(channels: int, frames: int, sr: int = SR) -> np.ndarray:
    t = np.arange(frames) / sr
    return np.stack([0.5 * np.sin(2 * np.pi * (220 * (c + 1)) * t) for c in range(channels)]).astype(np.float32)


def _write(path, x: np.ndarray, sr: int, fmt: str, subtype: str) -> None:
    sf.write(str(path), x.T, sr, format=fmt, subtype=subtype)


# (format, subtype, extension, max abs error of the decoded tone)
LOSSLESS = [
    ("WAV", "PCM_U8", "wav", 1 / 64),
    ("WAV", "PCM_16", "wav", 1e-4),
    ("WAV", "PCM_24", "wav", 1e-6),
    ("WAV", "PCM_32", "wav", 1e-8),
    ("WAV", "FLOAT", "wav", 0.0),
    ("WAV", "DOUBLE", "wav", 1e-7),
    ("FLAC", "PCM_16", "flac", 1e-4),
    ("FLAC", "PCM_24", "flac", 1e-6),
]


@pytest.mark.parametrize(("fmt", "subtype", "ext", "tolerance"), LOSSLESS)
@pytest.mark.parametrize(("channels", "sr"), [(1, 8000), (2, 44100), (6, 96000)])
def test_lossless_formats_round_trip(tmp_path, fmt, subtype, ext, tolerance, channels, sr):
    x = _tone(channels, 3000, sr)
    path = tmp_path / f"x.{ext}"
    _write(path, x, sr, fmt, subtype)
    samples, rate = load_audio(str(path))
    assert rate == sr and samples.dtype == np.float32 and samples.shape == (channels, 3000)
    np.testing.assert_allclose(samples, x, atol=tolerance)
    assert audio_info(str(path)) == audio_info(path.as_uri())
    info = audio_info(path)
    assert (info.frames, info.sample_rate, info.channels, info.format, info.subtype) == (3000, sr, channels, fmt,
                                                                                         subtype)


@pytest.mark.parametrize(("fmt", "subtype", "ext", "sr"), [
    ("OGG", "VORBIS", "ogg", 44100),
    ("OGG", "OPUS", "opus", 48000),
    ("MP3", "MPEG_LAYER_III", "mp3", 44100),
])
@pytest.mark.parametrize("channels", [1, 2])
def test_lossy_formats_decode_to_the_tone(tmp_path, fmt, subtype, ext, sr, channels):
    x = _tone(channels, sr, sr)
    path = tmp_path / f"x.{ext}"
    _write(path, x, sr, fmt, subtype)
    samples, rate = load_audio(path.as_uri())
    assert rate == sr and samples.shape == (channels, sr) and samples.dtype == np.float32
    for c in range(channels):  # same spectral peak as the tone, within one bin
        peak = np.argmax(np.abs(np.fft.rfft(samples[c]))) * rate / samples.shape[1]
        assert peak == pytest.approx(220 * (c + 1), abs=2)


def test_frame_range_reads_only_that_range(tmp_path):
    x = _tone(2, 20000)
    path = tmp_path / "x.flac"
    _write(path, x, SR, "FLAC", "PCM_24")
    part, _ = load_audio(str(path), start=12345, stop=13000)
    np.testing.assert_allclose(part, x[:, 12345:13000], atol=1e-6)
    tail, _ = load_audio(str(path), start=19990, stop=10**9)  # clipped to the end, like slicing
    assert tail.shape == (2, 10)
    with pytest.raises(ValueError):
        load_audio(str(path), start=-1)
    with pytest.raises(ValueError):
        load_audio(str(path), start=100, stop=50)


def test_memory_filesystem_and_reader_random_access():
    x = _tone(2, 5000)
    fs = fsspec.filesystem("memory")
    with fs.open("/corpus/a.wav", "wb") as f:
        sf.write(f, x.T, SR, format="WAV", subtype="FLOAT")
    samples, rate = load_audio("memory://corpus/a.wav")
    assert rate == SR
    np.testing.assert_array_equal(samples, x)
    with open_audio("memory://corpus/a.wav") as reader:
        np.testing.assert_array_equal(reader.read(4000, 4100), x[:, 4000:4100])
        np.testing.assert_array_equal(reader.read(10, 20), x[:, 10:20])  # seeks back
        blocks = list(reader.blocks(1500))
    assert [b.shape[1] for b in blocks] == [1500, 1500, 1500, 500]
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1), x)
    fs.rm("/corpus", recursive=True)


def _reason(uri, **kwargs) -> AudioError:
    with pytest.raises(AudioError) as caught:
        load_audio(uri, **kwargs)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith(caught.value.uri)
    return caught.value


def test_not_found_local_and_memory(tmp_path):
    assert _reason(str(tmp_path / "missing.wav")).reason == "not_found"
    assert _reason("memory://nothing/here.wav").reason == "not_found"
    with pytest.raises(AudioError) as caught:
        audio_info(str(tmp_path / "missing.wav"))
    assert caught.value.reason == "not_found"


def test_directory(tmp_path):
    error = _reason(str(tmp_path))
    assert error.reason == "is_directory" and str(tmp_path) in str(error)
    fs = fsspec.filesystem("memory")
    fs.pipe("/dir-test/inner.wav", b"x")
    assert _reason("memory://dir-test").reason == "is_directory"
    fs.rm("/dir-test", recursive=True)


@pytest.mark.parametrize("content", [b"", b"hello, this is not audio at all\n" * 50, os.urandom(4096),
                                     b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk"])
def test_unreadable(tmp_path, content):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    error = _reason(str(path))
    assert error.reason == "unreadable" and "bad.wav" in str(error)


def test_empty_file_has_zero_frames(tmp_path):
    path = tmp_path / "empty.wav"
    _write(path, np.zeros((2, 0), np.float32), SR, "WAV", "PCM_16")
    assert _reason(str(path)).reason == "empty"
    with pytest.raises(AudioError, match="empty"):
        audio_info(str(path))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path, value):
    x = _tone(2, 1000)
    x[1, 700] = value
    path = tmp_path / "nan.wav"
    _write(path, x, SR, "WAV", "FLOAT")
    error = _reason(str(path))
    assert error.reason == "non_finite" and "700" in str(error)


@pytest.mark.parametrize(("fmt", "subtype", "ext", "sr"), [
    ("WAV", "PCM_16", "wav", 44100),
    ("WAV", "PCM_24", "wav", 44100),
    ("FLAC", "PCM_16", "flac", 44100),
    ("OGG", "VORBIS", "ogg", 44100),
    ("OGG", "OPUS", "opus", 48000),
    ("MP3", "MPEG_LAYER_III", "mp3", 44100),
])
@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_truncated_files(tmp_path, fmt, subtype, ext, sr, keep):
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 2 * sr)).astype(np.float32)
    whole = tmp_path / f"whole.{ext}"
    _write(whole, x, sr, fmt, subtype)
    data = whole.read_bytes()
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(data[:int(len(data) * keep)])
    error = _reason(str(cut))
    assert error.reason == "truncated" and "cut." in str(error)


@pytest.mark.parametrize(("fmt", "subtype", "ext"), [("FLAC", "PCM_16", "flac"), ("OGG", "VORBIS", "ogg"),
                                                      ("MP3", "MPEG_LAYER_III", "mp3")])
def test_corrupt_middle_is_found_by_decoding_to_the_end(tmp_path, fmt, subtype, ext):
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (2, 2 * SR)).astype(np.float32)
    path = tmp_path / f"corrupt.{ext}"
    _write(path, x, SR, fmt, subtype)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 2000] = np.random.default_rng(2).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    assert audio_info(str(path)).frames == 2 * SR  # the header alone looks fine
    assert _reason(str(path)).reason == "truncated"


def test_streamed_wav_with_placeholder_size_is_not_truncated(tmp_path):
    x = _tone(1, 1000)
    path = tmp_path / "streamed.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((x[0] * 32767).astype("<i2").tobytes())
    data = bytearray(path.read_bytes())
    data[40:44] = b"\xff\xff\xff\xff"  # data chunk size unknown, as a writer to a pipe leaves it
    data[4:8] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(data))
    samples, _ = load_audio(str(path))
    assert samples.shape == (1, 1000)


def test_unknown_protocol_is_an_io_error_without_secrets():
    secret = "sk-THIS-IS-A-SECRET-9f8e7d"
    with pytest.raises(AudioError) as caught:
        load_audio("nosuchproto://bucket/key.wav", storage_options={"key": secret})
    assert caught.value.reason == "io_error"
    assert secret not in str(caught.value)


def test_storage_failure_message_masks_storage_options(tmp_path):
    secret = "hunter2-very-secret-password"
    with pytest.raises(AudioError) as caught:  # LocalFileSystem rejects the unknown option, naming its value
        load_audio(str(tmp_path / "x.wav"), storage_options={"password": secret, "auto_mkdir": secret})
    assert secret not in str(caught.value) and secret not in repr(caught.value)


def test_credentials_in_the_uri_are_not_repeated():
    with pytest.raises(AudioError) as caught:
        load_audio("http://user:pa55w0rd@127.0.0.1:9/a.wav")
    assert "pa55w0rd" not in str(caught.value) and caught.value.reason in ("io_error", "not_found")


def test_a_refused_connection_is_a_transient_storage_error_and_a_404_stays_not_found(tmp_path):
    from stemforge.pipeline.storage import is_transient_read

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(AudioError) as caught:
        load_audio(f"http://127.0.0.1:{port}/a.wav")
    assert caught.value.reason == "io_error"
    assert str(caught.value).startswith(f"http://127.0.0.1:{port}/a.wav: io_error: cannot reach storage "
                                        "(ClientConnectorError: Cannot connect to host")
    assert is_transient_read(caught.value)
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            """No request log on stderr."""

    handler = functools.partial(Quiet, directory=str(tmp_path))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            with pytest.raises(AudioError) as caught:
                load_audio(f"http://127.0.0.1:{server.server_address[1]}/missing.wav")
        finally:
            server.shutdown()
    assert caught.value.reason == "not_found" and not is_transient_read(caught.value)


def test_audio_error_pickles_for_worker_transport(tmp_path):
    error = _reason(str(tmp_path / "missing.wav"))
    clone = pickle.loads(pickle.dumps(error))
    assert (clone.uri, clone.reason, str(clone)) == (error.uri, error.reason, str(error))


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
@pytest.mark.parametrize(("ext", "codec"), [("mp3", "libmp3lame"), ("ogg", "libvorbis"), ("flac", "flac")])
def test_files_written_by_ffmpeg(tmp_path, ext, codec):
    source = tmp_path / "source.wav"
    _write(source, _tone(2, SR), SR, "WAV", "PCM_16")
    target = tmp_path / f"ffmpeg.{ext}"
    done = subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), "-c:a", codec, str(target)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"this ffmpeg cannot encode {codec}")
    samples, rate = load_audio(str(target))
    assert rate == SR and samples.shape[0] == 2 and abs(samples.shape[1] - SR) < 3000
