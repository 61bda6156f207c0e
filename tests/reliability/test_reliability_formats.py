"""FFmpeg's formats behind fsspec: MP3 without a length header, M4A (its sample table at the end, so
the decoder seeks), WebM and a cut M4A, read from moto's S3 server and from an HTTP server exactly as
from the local disk."""

from pathlib import Path

import numpy as np
import pytest
from encoded_audio import KIND, encode, write_source
from reliability_support import moto_s3, static_http

from stemforge.transforms import AudioError, audio_info, load_audio, open_audio

s3fs = pytest.importorskip("s3fs")
KEY, SECRET = "testing-key-id", "testing-secret-key"
NAMES = {"mp3_vbr_no_xing": "a.mp3", "m4a_aac": "b.m4a", "webm_opus": "c.webm", "wma": "d.wma"}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("formats")
    write_source(folder / "source.wav", seconds=3.0)
    for kind, name in NAMES.items():
        encode(folder / "source.wav", folder / name, KIND[kind].args)
    whole = (folder / "b.m4a").read_bytes()
    (folder / "cut.m4a").write_bytes(whole[: len(whole) * 2 // 3])
    (folder / "source.wav").unlink()
    return folder


def _same_as_local(folder: Path, base: str, options: dict) -> None:
    for name in NAMES.values():
        local, rate = load_audio(str(folder / name))
        remote, remote_rate = load_audio(f"{base}/{name}", options)
        assert remote_rate == rate and audio_info(f"{base}/{name}", options) == audio_info(str(folder / name))
        np.testing.assert_array_equal(remote, local)
        with open_audio(f"{base}/{name}", options) as reader:  # a mid-file range
            np.testing.assert_array_equal(reader.read(40000, 45000), local[:, 40000:45000])
    with pytest.raises(AudioError) as caught:
        load_audio(f"{base}/cut.m4a", options)
    assert caught.value.reason == "truncated" and "cut.m4a" in str(caught.value)


def test_s3_reads_equal_local_reads(files, tmp_path):
    with moto_s3(tmp_path) as endpoint:
        fs = s3fs.S3FileSystem(endpoint_url=endpoint, key=KEY, secret=SECRET, skip_instance_cache=True)
        fs.mkdir("audio")
        fs.put(f"{files}/", "audio/in/", recursive=True)
        _same_as_local(files, "s3://audio/in", {"endpoint_url": endpoint, "key": KEY, "secret": SECRET})


def test_http_reads_equal_local_reads(files, tmp_path):
    with static_http(files, tmp_path) as base:
        _same_as_local(files, base, {})
