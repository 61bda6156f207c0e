"""Claim 4: at least 15 kinds of bad or odd input in one run. Each is processed correctly (silence gives
silent stems and no NaN anywhere, a short file is padded) or dead-lettered with its reason; the good
files of the same run are all committed; the run exits 0."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from reliability_support import run_args, write_bad_corpus
from stemforge_testing import TINY, read_manifest, write_config

from stemforge.pipeline.cli import main
from stemforge.pipeline.listing import sanitize_key
from stemforge.transforms import resampled_length

SEGMENT = 100
BINS = TINY["n_fft"] // 2 + 1


@pytest.fixture(scope="module")
def bad_corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-corpus")
    kinds = write_bad_corpus(folder / "corpus")
    return folder, kinds


def _committed(out):
    manifest = read_manifest(next((out / "runs").glob("*.json")))
    errors_path = out / "errors" / f"{manifest['run_id']}.jsonl"
    errors = [json.loads(line) for line in errors_path.read_text().splitlines()] if errors_path.exists() else []
    rows = [r for shard in manifest["shards"] for r in pq.read_table(out / shard).to_pylist()]
    return manifest, errors, rows


def test_every_kind_is_processed_or_dead_lettered_with_its_reason(bad_corpus, tiny_checkpoint):
    folder, kinds = bad_corpus
    assert len(kinds) >= 17
    listing = folder / "list.jsonl"
    listing.write_text("".join(json.dumps({"path": f"corpus/{k['entry']}"}) + "\n" for k in kinds.values()))
    out = folder / "out"
    assert main(run_args(write_config(folder / "c.yaml", output={"segment_frames": SEGMENT}), str(listing),
                         str(out), str(tiny_checkpoint))) == 0
    manifest, errors, rows = _committed(out)

    key = {kind: sanitize_key(f"corpus/{k['entry']}") for kind, k in kinds.items()}
    expected_ok = sorted(key[kind] for kind, k in kinds.items() if k["outcome"] == "ok")
    assert manifest["tracks"] == expected_ok
    by_key = {e["track_key"]: e for e in errors}
    for kind, k in kinds.items():
        if k["outcome"] == "error":
            assert by_key[key[kind]]["error"] == k["reason"], (kind, by_key[key[kind]])
            assert by_key[key[kind]]["stage"] == "read"
    assert len(errors) == sum(k["outcome"] == "error" for k in kinds.values())
    assert key["newline_in_name"] == "corpus/new_line"

    # no NaN or infinity anywhere: rows and stems; every committed key has its rows and stems
    assert sorted({r["track_key"] for r in rows}) == expected_ok
    for row in rows:
        for column in ("mixture", "instruments", "vocals"):
            assert np.isfinite(np.asarray(row[column])).all(), (row["track_key"], column)
    for track in expected_ok:
        for stem in ("instruments", "vocals"):
            audio, sr = sf.read(out / "stems" / track / "v0" / f"{stem}.wav", dtype="float32", always_2d=True)
            assert sr == 44100 and audio.shape[1] == 2 and np.isfinite(audio).all()

    # digital silence: silent stems and silent spectrograms
    silent = [r for r in rows if r["track_key"] == key["digital_silence"]]
    assert silent and all(not np.asarray(r[c]).any() for r in silent for c in ("mixture", "instruments", "vocals"))
    for stem in ("instruments", "vocals"):
        audio, _ = sf.read(out / "stems" / key["digital_silence"] / "v0" / f"{stem}.wav")
        assert audio.shape == (44100, 2) and not audio.any()

    # shorter than one model window (and a single sample): one zero-padded row, stems as long as the input
    for kind, frames in (("shorter_than_a_window", round(0.05 * 44100)), ("one_frame", 1)):
        [row] = [r for r in rows if r["track_key"] == key[kind]]
        assert row["num_frames"] == 1 + frames // TINY["hop_length"] < SEGMENT
        mixture = np.asarray(row["mixture"]).reshape(2, BINS, SEGMENT)
        assert mixture[..., : row["num_frames"]].any() and not mixture[..., row["num_frames"]:].any()
        assert sf.info(out / "stems" / key[kind] / "v0" / "vocals.wav").frames == frames

    # odd rates and channel counts are resampled and downmixed to the model's stereo 44.1 kHz
    for kind, (rate, seconds) in {"rate_4k": (4000, 1.0), "rate_384k": (384000, 0.3),
                                  "eight_channels": (44100, 0.7)}.items():
        info = sf.info(out / "stems" / key[kind] / "v0" / "instruments.wav")
        assert (info.samplerate, info.channels) == (44100, 2)
        assert info.frames == resampled_length(round(seconds * rate), rate, 44100)


def test_a_directory_scan_of_the_same_corpus_commits_the_good_files(bad_corpus, tiny_checkpoint, tmp_path):
    folder, kinds = bad_corpus
    out = tmp_path / "out"
    assert main(run_args(write_config(tmp_path / "c.yaml"), str(folder / "corpus"), str(out), str(tiny_checkpoint))) == 0
    manifest, errors, _ = _committed(out)
    ok = sorted(sanitize_key(k["entry"]) for k in kinds.values() if k["outcome"] == "ok")
    # a directory is not a file of the listing, and a missing file is not listed: neither is an input here
    rejected = {sanitize_key(k["entry"]): k["reason"] for kind, k in kinds.items()
                if k["outcome"] == "error" and kind not in ("directory_named_wav", "missing_file")}
    assert manifest["tracks"] == ok
    assert {e["track_key"]: e["error"] for e in errors} == rejected
