"""Claim 1: object storage for real. A moto S3 server (started here) holds inputs, checkpoint and
every output; configured through storage_options.s3 and, separately, the AWS environment variables.
Results equal a local run's. http(s):// inputs and checkpoints work (a local http.server). Transient
storage errors are retried with backoff; a permanent one dead-letters only the affected input."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from reliability_support import (
    FaultProxy,
    assert_same_rows,
    clean_env,
    cli,
    committed_manifests,
    committed_rows,
    moto_s3,
    run_args,
    static_http,
)
from stemforge_testing import write_config

from stemforge.pipeline.cli import main

s3fs = pytest.importorskip("s3fs")
KEY, SECRET = "testing-key-id", "testing-secret-key"


def _upload(endpoint: str, corpus: Path, ckpt: Path) -> "s3fs.S3FileSystem":
    fs = s3fs.S3FileSystem(endpoint_url=endpoint, key=KEY, secret=SECRET, skip_instance_cache=True)
    fs.mkdir("corpus")
    fs.put(f"{corpus}/", "corpus/in/", recursive=True)
    fs.put_file(str(ckpt), "corpus/models/tiny.pth")
    return fs


def _stem(fs, path: str) -> np.ndarray:
    with fs.open(path, "rb") as handle:
        return sf.read(handle, dtype="float32", always_2d=True)[0]


def _assert_equals_local(fs, root: str, reference, source_prefix: str) -> dict:
    folder, ref_out, ref_rows, ref_manifest = reference
    [manifest] = committed_manifests(fs, root)
    rows = committed_rows(fs, root)
    assert_same_rows(ref_rows, rows, ignore=("source",))
    for ref, row in zip(ref_rows, rows):
        assert row["source"] == source_prefix + ref["source"][len(str(folder)):]
    assert manifest["tracks"] == ref_manifest["tracks"] and manifest["counts"] == ref_manifest["counts"]
    assert manifest["fingerprint"] == ref_manifest["fingerprint"]
    assert manifest["checkpoint"]["sha256"] == ref_manifest["checkpoint"]["sha256"]
    for track in manifest["tracks"]:
        for stem in ("instruments", "vocals"):
            expected = sf.read(ref_out / "stems" / track / "v0" / f"{stem}.wav", dtype="float32", always_2d=True)[0]
            np.testing.assert_allclose(_stem(fs, f"{root}/stems/{track}/v0/{stem}.wav"), expected, atol=1e-6)
    errors = [json.loads(line) for line in fs.cat_file(f"{root}/errors/{manifest['run_id']}.jsonl").splitlines()]
    assert [(e["track_key"], e["stage"], e["error"]) for e in errors] == [("broken", "read", "unreadable")]
    assert errors[0]["source"] == f"{source_prefix}/broken.wav"
    assert not fs.exists(f"{root}/_tmp")
    return manifest


def test_whole_run_on_s3_through_storage_options_equals_a_local_run(local_reference, tiny_checkpoint, tmp_path):
    with moto_s3(tmp_path) as endpoint:
        fs = _upload(endpoint, local_reference[0], tiny_checkpoint)
        options = {"endpoint_url": endpoint, "key": KEY, "secret": SECRET}
        assert main(run_args(write_config(tmp_path / "c.yaml"), "s3://corpus/in", "s3://corpus/out",
                             "s3://corpus/models/tiny.pth", "--set", f"storage_options.s3={json.dumps(options)}")) == 0
        manifest = _assert_equals_local(fs, "corpus/out", local_reference, "s3://corpus/in")
        assert manifest["config"]["storage_options"] == {"s3": {"endpoint_url": "***", "key": "***", "secret": "***"}}
        names = {p.split("/", 2)[2].split("/")[0] for p in fs.find("corpus/out")}
        assert names == {"stems", "spectrograms", "errors", "runs"}


def test_whole_run_on_s3_through_aws_environment_variables(local_reference, tiny_checkpoint, tmp_path):
    with moto_s3(tmp_path) as endpoint:
        fs = _upload(endpoint, local_reference[0], tiny_checkpoint)
        env = clean_env(AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, AWS_ENDPOINT_URL_S3=endpoint,
                        AWS_DEFAULT_REGION="us-east-1")
        result = cli(run_args(write_config(tmp_path / "c.yaml"), "s3://corpus/in", "s3://corpus/out",
                              "s3://corpus/models/tiny.pth"), env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        manifest = _assert_equals_local(fs, "corpus/out", local_reference, "s3://corpus/in")
        assert manifest["config"]["storage_options"] == {}


def test_http_inputs_and_checkpoint(local_reference, tiny_checkpoint, tmp_path):
    folder = local_reference[0]
    (folder / "list.txt").write_text("a.wav\nsub/b.flac\nc.wav\nbroken.wav\n")
    (folder / "models").mkdir(exist_ok=True)
    (folder / "models" / "tiny.pth").write_bytes(tiny_checkpoint.read_bytes())
    fsspec = pytest.importorskip("fsspec")
    with static_http(folder, tmp_path) as base:
        out = tmp_path / "out"
        assert main(run_args(write_config(tmp_path / "c.yaml"), f"{base}/list.txt", str(out),
                             f"{base}/models/tiny.pth")) == 0
        _assert_equals_local(fsspec.filesystem("file"), str(out), local_reference, base)


def test_transient_storage_errors_are_retried_and_a_permanent_one_dead_letters_only_its_input(
        local_reference, tiny_checkpoint, tmp_path):
    rules = [
        {"method": "PUT", "path": r"^/corpus/out/stems/a/v0/vocals\.wav$", "status": 503, "times": 2},
        {"method": "PUT", "path": r"^/corpus/out/runs/[^/]+\.json$", "status": 503, "times": 2},
        {"method": "GET|HEAD", "path": r"^/corpus/in/c\.wav$", "status": 503, "times": 2},
        {"method": "GET|HEAD", "path": r"^/corpus/in/sub/b\.flac$", "status": 403, "times": None},
    ]
    with moto_s3(tmp_path) as endpoint, FaultProxy(endpoint, rules) as proxy:
        fs = _upload(endpoint, local_reference[0], tiny_checkpoint)
        # botocore's own retries off (s3fs retries only dropped connections and SlowDown): what gets a 503
        # through is stemforge's backoff alone
        options = {"endpoint_url": proxy.url, "key": KEY, "secret": SECRET,
                   "config_kwargs": {"retries": {"total_max_attempts": 1}}}
        assert main(run_args(write_config(tmp_path / "c.yaml"), "s3://corpus/in", "s3://corpus/out",
                             "s3://corpus/models/tiny.pth", "--set", f"storage_options.s3={json.dumps(options)}")) == 0
        [manifest] = committed_manifests(fs, "corpus/out")
        assert manifest["tracks"] == ["a", "c"]
        errors = [json.loads(line) for line in fs.cat_file(f"corpus/out/errors/{manifest['run_id']}.jsonl").splitlines()]
        assert sorted((e["track_key"], e["error"]) for e in errors) == [("broken", "unreadable"), ("sub/b", "io_error")]
        assert "PermissionError" in next(e["message"] for e in errors if e["track_key"] == "sub/b")
        ref_rows = [r for r in local_reference[2] if r["track_key"] in ("a", "c")]
        assert_same_rows(ref_rows, committed_rows(fs, "corpus/out"), ignore=("source",))
        manifest_path = f"/corpus/out/runs/{manifest['run_id']}.json"  # not the Parquet files written before it
        for path in ("/corpus/out/stems/a/v0/vocals.wav", manifest_path, "/corpus/in/c.wav"):
            calls = [(status, t) for _, p, status, t in proxy.log if p.startswith(path) and status != 404]
            assert [status in (0, 503) for status, _ in calls[:3]] == [True, True, False], (path, calls)
            assert calls[2][1] - calls[1][1] >= calls[1][1] - calls[0][1] >= 0.4  # backoff, doubling
        # a permanent error is not retried
        assert sum(p == "/corpus/in/sub/b.flac" for _, p, _, _ in proxy.log) <= 2


def test_real_failures_a_stopped_server_is_retried_a_missing_or_denied_object_is_not(tmp_path, monkeypatch):
    """Real storage failures, classified by what the errors are (transforms.errors.is_transient): a moto server
    stopped mid-run is retried until the attempts run out; a missing object and a denied one (S3's 403 through
    a proxy) are tried once. Reading audio says the same through AudioError.transient."""
    from stemforge.pipeline import storage
    from stemforge.pipeline.storage import RETRY_ATTEMPTS, StorageError, filesystem, is_transient_read, retrying
    from stemforge.pipeline.engine.track import TrackError
    from stemforge.transforms import AudioError, load_audio

    monkeypatch.setattr(storage, "RETRY_BASE_SECONDS", 0.01)
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros((4410, 2), dtype="float32"), 44100, format="WAV")
    rules = [{"method": "GET|HEAD", "path": r"^/bucket/denied\.wav$", "status": 403, "times": None}]
    with moto_s3(tmp_path) as endpoint, FaultProxy(endpoint, rules) as proxy:
        upload = s3fs.S3FileSystem(endpoint_url=endpoint, key=KEY, secret=SECRET, skip_instance_cache=True)
        upload.mkdir("bucket")
        for key in ("a.wav", "denied.wav"):
            upload.pipe_file(f"bucket/{key}", buffer.getvalue())
        options = {"s3": {"endpoint_url": proxy.url, "key": KEY, "secret": SECRET, "skip_instance_cache": True,
                          "config_kwargs": {"retries": {"total_max_attempts": 1}}}}
        fs, _ = filesystem("s3://bucket", options)
        attempts = []

        def read(key: str) -> bytes:
            attempts.append(key)
            return fs.cat_file(f"bucket/{key}")

        assert retrying(lambda: read("a.wav"), "read s3://bucket/a.wav", options) == buffer.getvalue()
        with pytest.raises(FileNotFoundError):
            retrying(lambda: read("missing.wav"), "read s3://bucket/missing.wav", options)
        with pytest.raises(StorageError) as denied:
            retrying(lambda: read("denied.wav"), "read s3://bucket/denied.wav", options)
        assert attempts == ["a.wav", "missing.wav", "denied.wav"] and not denied.value.transient
        with pytest.raises(AudioError) as caught:
            load_audio("s3://bucket/denied.wav", options["s3"])
        assert caught.value.reason == "io_error" and not is_transient_read(TrackError("read", caught.value))
    attempts.clear()  # the server is gone: every request is refused
    with pytest.raises(StorageError) as stopped:
        retrying(lambda: read("a.wav"), "read s3://bucket/a.wav", options)
    assert attempts == ["a.wav"] * RETRY_ATTEMPTS and stopped.value.transient
    assert str(stopped.value).endswith(f"(gave up after {RETRY_ATTEMPTS} attempts)") and SECRET not in str(stopped.value)
    with pytest.raises(AudioError) as caught:
        load_audio("s3://bucket/a.wav", options["s3"])
    assert caught.value.reason == "io_error" and caught.value.transient
    assert is_transient_read(TrackError("read", caught.value)) and not is_transient_read(TrackError("mask", caught.value))


def test_an_output_that_is_an_object_is_refused_before_any_work(good_corpus, tiny_checkpoint, tmp_path, capsys):
    with moto_s3(tmp_path) as endpoint:
        fs = _upload(endpoint, good_corpus[0], tiny_checkpoint)
        fs.pipe_file("corpus/out", b"an object, not a folder")
        options = {"endpoint_url": endpoint, "key": KEY, "secret": SECRET}
        capsys.readouterr()
        assert main(run_args(write_config(tmp_path / "c.yaml"), "s3://corpus/in", "s3://corpus/out",
                             "s3://corpus/models/tiny.pth", "--set", f"storage_options.s3={json.dumps(options)}")) == 2
        assert capsys.readouterr().err.splitlines() == ["stemforge: output.uri s3://corpus/out is a file, not a folder"]
        assert fs.cat_file("corpus/out") == b"an object, not a folder" and not fs.exists("corpus/out/runs")
