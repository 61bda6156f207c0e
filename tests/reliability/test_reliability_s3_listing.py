"""Listing on S3 (moto's server): a glob or a folder of more files than one listing page lists every file once,
with its content fingerprint, in one recursive listing (asking whether the input is a folder first listed it
twice; a glob one level deep lists each folder once), and the run's output folder inside it is left out."""

import math
from collections import Counter

import pytest
from reliability_support import moto_s3

from stemforge.pipeline.listing import expand_input

s3fs = pytest.importorskip("s3fs")
KEY, SECRET = "testing-key-id", "testing-secret-key"
FILES = 1500  # more than one page (1000 keys) of ListObjectsV2
EXTS = (".wav",)


def _listings(log) -> int:
    return log.read_text().count("list-type=2")


def test_a_folder_or_glob_on_s3_lists_every_file_once_in_one_listing(tmp_path):
    with moto_s3(tmp_path) as endpoint:
        [log] = tmp_path.glob("moto-*.log")
        fs = s3fs.S3FileSystem(endpoint_url=endpoint, key=KEY, secret=SECRET, skip_instance_cache=True)
        fs.mkdir("corpus")
        names = [f"set/{'ab'[i % 2]}/{i:05d}.wav" for i in range(FILES)]
        fs.pipe({f"corpus/{n}": bytes(i % 7 + 1) for i, n in enumerate(names)})
        fs.pipe({"corpus/set/notes.txt": b"x", "corpus/set/out/a/vocals.wav": b"x"})
        options = {"s3": {"endpoint_url": endpoint, "key": KEY, "secret": SECRET, "skip_instance_cache": True}}
        pages = math.ceil((FILES + 2) / 1000)
        # a folder or '**': one recursive listing; a glob one level deep: one per folder (set/, a/, b/, out/)
        for uri, most in (("s3://corpus/set", pages), ("s3://corpus/set/**", pages),
                          ("s3://corpus/set/*/*.wav", pages + 3)):
            before, ignored = _listings(log), Counter()
            refs = list(expand_input(uri, EXTS, options, exclude=("s3://corpus/set/out",), ignored=ignored))
            assert sorted(r.source for r in refs) == sorted(f"s3://corpus/{n}" for n in names)
            assert {r.source: r.size for r in refs} == {f"s3://corpus/{n}": i % 7 + 1 for i, n in enumerate(names)}
            assert all(r.version.startswith("etag:") for r in refs)
            assert sorted(r.track_key for r in refs) == sorted(n[len("set/"):-len(".wav")] for n in names)
            assert _listings(log) - before <= most
            assert ignored == (Counter({".txt": 1}) if "*.wav" not in uri else Counter())
        [one] = expand_input("s3://corpus/set/a/00000.wav", EXTS, options)
        assert (one.source, one.track_key, one.size) == ("s3://corpus/set/a/00000.wav", "00000", 1)
