"""Claim 5: security. Checkpoints load only as weights (a pickle payload is refused through the CLI and
never runs); an optional sha256 pin; manifest track keys never write outside OUTPUT/; secrets from
storage_options, URLs or the environment never appear in logs, errors, run manifests, Parquet
metadata or exception messages."""

import hashlib
import json
import logging
import os
import pickle
import subprocess
from pathlib import Path

import pytest
import torch
from reliability_support import FaultProxy, clean_env, cli, moto_s3, run_args, static_http
from stemforge_testing import read_manifest, write_config

from stemforge.pipeline.cli import main
from stemforge.config.run import load_config
from stemforge.pipeline.launch import make_job

KEY_ID = "AKIASTEMFORGEKEYID7Q"
SECRET = "sEcReT-7f3a9c-stemforge-do-not-leak"
ENV_SECRET = "eNvSeCrEt-55d1e0-stemforge-do-not-leak"
URL_PASSWORD = "uRlPaSsWoRd-19c2-do-not-leak"
SECRETS = (KEY_ID, SECRET, ENV_SECRET, URL_PASSWORD)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickle_payload_checkpoint_is_refused_through_the_cli_and_never_runs(good_corpus, tmp_path, capsys):
    folder, _ = good_corpus
    marker = tmp_path / "pwned"
    served = tmp_path / "served"
    served.mkdir()
    torch.save({"out.weight": _Payload(marker)}, served / "evil.pth")
    (served / "evil.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    config = write_config(tmp_path / "c.yaml")
    with static_http(served, tmp_path) as base:
        result = cli(run_args(config, str(folder), str(tmp_path / "out"), f"{base}/evil.pth"))
        assert result.returncode == 2, result.stderr[-2000:]
        assert result.stderr.strip().splitlines()[-1].startswith("stemforge: refused to load")
        for checkpoint in (str(served / "evil.pth"), f"{base}/evil.pkl"):
            capsys.readouterr()
            assert main(run_args(config, str(folder), str(tmp_path / "out"), checkpoint)) == 2
            err = capsys.readouterr().err.strip()
            assert err.count("\n") == 0 and err.startswith("stemforge: ") and "evil.p" in err, err
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_a_sha256_pin_is_enforced_through_the_cli(good_corpus, tiny_checkpoint, tmp_path, capsys):
    folder, _ = good_corpus
    config = write_config(tmp_path / "c.yaml")
    digest = hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest()
    wrong = "ab" * 32
    capsys.readouterr()
    code = main(run_args(config, str(folder), str(tmp_path / "out"), str(tiny_checkpoint), "--set", f"model.sha256={wrong}"))
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "sha256 mismatch" in err and digest in err
    assert not (tmp_path / "out").exists()
    job = make_job(load_config(config, [f"input.uri={folder}", f"output.uri={tmp_path / 'out'}",
                                        f"model.checkpoint={tiny_checkpoint}", f"model.sha256={digest.upper()}"]))
    assert job.checkpoint_sha256 == digest


def test_manifest_track_keys_never_write_outside_the_output(good_corpus, tiny_checkpoint, tmp_path):
    _, files = good_corpus
    lists, outside = tmp_path / "lists", tmp_path / "elsewhere"
    lists.mkdir()
    outside.mkdir()
    wave = files["c"].read_bytes()
    for name in ("evil.wav", "abs.wav", "\x1b[31m\x07bell\r.wav", "win.wav", "dots.wav"):
        (outside / name).write_bytes(wave)
    entries = ["../elsewhere/evil.wav", str(outside / "abs.wav"), "../elsewhere/\x1b[31m\x07bell\r.wav",
               "..\\elsewhere\\win.wav", "./../elsewhere/./dots.wav"]
    manifest = lists / "list.jsonl"
    manifest.write_text("".join(json.dumps({"path": e}) + "\n" for e in entries))
    (lists / "elsewhere").mkdir()  # a backslash path is a name, not a folder: not found, dead-lettered
    out = tmp_path / "out"
    config = write_config(tmp_path / "c.yaml")
    before = {p for p in tmp_path.rglob("*")}
    assert main(run_args(config, str(manifest), str(out), str(tiny_checkpoint))) == 0
    created = {p for p in tmp_path.rglob("*")} - before
    assert created and all(p == out or out in p.parents for p in created), sorted(created - {out})
    run = read_manifest(next((out / "runs").glob("*.json")))
    assert len(run["tracks"]) == 4
    for key in run["tracks"]:
        assert ".." not in key.split("/") and not key.startswith("/")
        assert not any(ord(ch) < 32 for ch in key)
        assert (out / "stems" / key / "v0" / "vocals.wav").resolve().is_relative_to(out.resolve())


def _grep(name: str, text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    for secret in SECRETS:
        assert secret.encode() not in data, f"{secret!r} leaked into {name}"


def test_secrets_never_appear_in_logs_errors_manifests_metadata_or_messages(good_corpus, tiny_checkpoint, tmp_path,
                                                                             capsys, caplog, monkeypatch):
    s3fs = pytest.importorskip("s3fs")
    folder, files = good_corpus
    served = tmp_path / "served"
    served.mkdir()
    (served / "tiny.pth").write_bytes(tiny_checkpoint.read_bytes())
    for name in ("a.wav", "c.wav"):
        (served / name).write_bytes(files[name[0]].read_bytes())
    rules = [{"method": "GET|HEAD", "path": r"^/corpus/in/sub/b\.flac$", "status": 403, "times": None}]
    with moto_s3(tmp_path) as endpoint, FaultProxy(endpoint, rules) as proxy, static_http(served, tmp_path) as base:
        fs = s3fs.S3FileSystem(endpoint_url=endpoint, key=KEY_ID, secret=SECRET, skip_instance_cache=True)
        fs.mkdir("corpus")
        fs.put(f"{folder}/", "corpus/in/", recursive=True)
        fs.put_file(str(tiny_checkpoint), "corpus/tiny.pth")
        (folder / "list.txt").unlink(missing_ok=True)
        options = {"s3": {"endpoint_url": proxy.url, "key": KEY_ID, "secret": SECRET}}
        config = write_config(tmp_path / "c.yaml", storage_options=options)
        env = clean_env(AWS_SECRET_ACCESS_KEY=ENV_SECRET, AWS_ACCESS_KEY_ID="AKIAENVKEYID")
        authed = base.replace("http://", f"http://reader:{URL_PASSWORD}@")
        # relative entries, a missing one, and an absolute URL that carries credentials
        (served / "list.txt").write_text(f"a.wav\nmissing.wav\n{authed}/c.wav?token={URL_PASSWORD}\n")
        outputs = []
        # 1. a committed run over S3 with one permission-denied input, a bad file and a URL checkpoint
        #    with credentials in it (a subprocess: its whole stdout and stderr, logs included)
        ok = cli(run_args(config, "s3://corpus/in", "s3://corpus/out", f"{authed}/tiny.pth"), env=env)
        assert ok.returncode == 0, ok.stderr[-3000:]
        outputs.append(("run", ok))
        # 2. a run that fails: the output bucket does not exist (exit 1, a traceback in the log)
        failed = cli(run_args(config, "s3://corpus/in/a.wav", "s3://no-such-bucket/out", "s3://corpus/tiny.pth"),
                     env=env)
        assert failed.returncode == 1, failed.stderr[-3000:]
        assert failed.stderr.strip().splitlines()[-1].startswith("stemforge: run failed")
        outputs.append(("failed run", failed))
        # in this process (quicker), with the same environment: stdout, stderr and every log record
        for name in [n for n in os.environ if n.startswith("AWS_")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ENV_SECRET)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENVKEYID")
        caplog.set_level(logging.INFO)
        # 3. inputs listed behind a URL with credentials, into a second S3 output
        assert main(run_args(config, f"{authed}/list.txt", "s3://corpus/out2", "s3://corpus/tiny.pth")) == 0
        # 4. fatal problems said in one line: a checkpoint that is not there, a wrong pin
        for extra in ([f"{authed}/nope.pth"], [f"{authed}/tiny.pth", "--set", f"model.sha256={'cd' * 32}"]):
            assert main(run_args(config, "s3://corpus/in", "s3://corpus/out3", *extra)) == 2
        # 5. the config as validate-config prints it
        assert main(["validate-config", str(config)]) == 0
        captured = capsys.readouterr()
        outputs.append(("in-process", subprocess.CompletedProcess([], 0, captured.out, captured.err + caplog.text)))

        assert SECRET in config.read_text() and KEY_ID in config.read_text()  # the secrets were in play
        for name, result in outputs:
            _grep(f"{name} stdout", result.stdout)
            _grep(f"{name} stderr", result.stderr)
        errors = [p for p in fs.find("corpus/out") if "/errors/" in p]
        assert errors and any("PermissionError" in fs.cat_file(p).decode() for p in errors)
        written = fs.find("corpus/out") + fs.find("corpus/out2")
        assert any("/stems/127.0.0.1_" in p for p in written)  # the absolute URL's key: host and path only
        for path in written:
            _grep(f"the name {path}", path)
            _grep(path, fs.cat_file(path))  # stems, shards (and their Parquet metadata), errors, manifests
        manifest = json.loads(fs.cat_file(next(p for p in fs.find("corpus/out") if "/runs/" in p)))
        assert manifest["checkpoint"]["uri"].startswith("http://***@127.0.0.1")
