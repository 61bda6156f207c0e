"""Real components for the reliability tests, each started and stopped by the test that needs it.

moto's S3 server, Python's http.server, a fault-injecting HTTP proxy (in-process), Beam's job
service and worker pool; plus a small corpus, a tiny-model config and a CLI runner.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import numpy as np
import pytest
import soundfile as sf
from stemforge_testing import read_manifest

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
MODEL_COLUMNS = ("instruments", "vocals")


# ---------------------------------------------------------------- processes and ports

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout} s")


def stop_group(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """Stops a process started with start_new_session=True, and everything it started."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    else:  # the leader is gone; its children may not be
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def service(argv: list[str], port: int, what: str, log: Path, timeout: float = 60.0,
            env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """Runs a server process in its own session until the block ends."""
    with open(log, "wb") as handle:
        proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
                                env=env, cwd=log.parent)
    try:
        wait_for_port(port, proc, timeout, what)
        yield proc
    finally:
        stop_group(proc)


def tool(name: str) -> str:
    """A console script of this virtualenv (or PATH); skips the test when it is not installed."""
    local = Path(PYTHON).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed")
    return found


@contextlib.contextmanager
def moto_s3(workdir: Path) -> Iterator[str]:
    """moto's server mode on 127.0.0.1 and a free port; yields its endpoint URL."""
    port = free_port()
    with service([tool("moto_server"), "-H", "127.0.0.1", "-p", str(port)], port, "moto_server",
                 workdir / f"moto-{port}.log"):
        yield f"http://127.0.0.1:{port}"


MOTO_KEY, MOTO_SECRET = "testing-key-id", "testing-secret-key"


@contextlib.contextmanager
def moto_bucket(workdir: Path, bucket: str) -> Iterator[tuple[Any, dict[str, str]]]:
    """moto's S3 with one bucket; yields an s3fs filesystem on it and the environment a CLI run on it needs."""
    s3fs = pytest.importorskip("s3fs")
    with moto_s3(workdir) as endpoint:
        fs = s3fs.S3FileSystem(endpoint_url=endpoint, key=MOTO_KEY, secret=MOTO_SECRET, skip_instance_cache=True)
        fs.mkdir(bucket)
        yield fs, clean_env(AWS_ACCESS_KEY_ID=MOTO_KEY, AWS_SECRET_ACCESS_KEY=MOTO_SECRET,
                            AWS_ENDPOINT_URL_S3=endpoint, AWS_DEFAULT_REGION="us-east-1")


@contextlib.contextmanager
def static_http(directory: Path, workdir: Path) -> Iterator[str]:
    """`python -m http.server` serving a directory; yields its base URL."""
    port = free_port()
    with service([PYTHON, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(directory), str(port)],
                 port, "http.server", workdir / f"http-{port}.log"):
        yield f"http://127.0.0.1:{port}"


# ---------------------------------------------------------------- a fault-injecting proxy

class FaultProxy:
    """An HTTP proxy in front of an S3 endpoint that fails chosen requests.

    ``rules`` are dicts: ``method`` (regex), ``path`` (regex on the URL path), ``status`` (an HTTP status
    to answer with, or 0 to drop the connection) and ``times`` (how many matching requests fail;
    None = all of them). Every request is recorded as (method, path, status answered, monotonic time).
    """

    def __init__(self, upstream: str, rules: list[dict[str, Any]]) -> None:
        self.upstream = upstream.split("://", 1)[1]
        self.rules = [dict(r, seen=0) for r in rules]
        self.log: list[tuple[str, str, int]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                fault = proxy._fault(self.command, path)
                if fault is not None:
                    with proxy.lock:
                        proxy.log.append((self.command, path, fault, time.monotonic()))
                    if fault == 0:
                        self.close_connection = True
                        with contextlib.suppress(OSError):
                            self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    payload = (b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>"
                               + (b"AccessDenied" if fault == 403 else b"ServiceUnavailable")
                               + b"</Code><Message>injected</Message></Error>")
                    self.send_response(fault)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "expect")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                with proxy.lock:
                    proxy.log.append((self.command, path, resp.status, time.monotonic()))
                self.send_response(resp.status)
                for key, value in resp.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                        self.send_header(key, value)
                # a HEAD answer has no body but tells the object's size
                self.send_header("Content-Length", resp.getheader("Content-Length", "0") if self.command == "HEAD"
                                 else str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _fault(self, method: str, path: str) -> int | None:
        with self.lock:
            for rule in self.rules:
                matches = re.search(rule.get("method", "."), method) and re.search(rule["path"], path)
                if matches and (rule.get("times") is None or rule["seen"] < rule["times"]):
                    rule["seen"] += 1
                    return int(rule["status"])
        return None

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- corpus, config, runs

def sine(seconds: float, sr: int = 44100, freq: float = 440.0, channels: int = 2, seed: int = 0) -> np.ndarray:
    """[frames, channels] float32: a sine plus a little noise, different per channel."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * sr)) / sr
    waves = [0.3 * np.sin(2 * np.pi * freq * (1 + 0.5 * c) * t) + 0.02 * rng.standard_normal(t.size)
             for c in range(channels)]
    return np.stack(waves, axis=1).astype(np.float32)


def write_good_corpus(folder: Path) -> dict[str, Path]:
    """Three small valid tracks in two folders (mono and stereo, 44.1 and 22.05 kHz)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sub").mkdir(exist_ok=True)
    files = {"a": folder / "a.wav", "sub/b": folder / "sub" / "b.flac", "c": folder / "c.wav"}
    sf.write(files["a"], sine(2.1, seed=1), 44100, subtype="FLOAT")
    sf.write(files["sub/b"], sine(1.3, freq=300.0, seed=2), 44100, subtype="PCM_24")
    sf.write(files["c"], sine(1.7, sr=22050, freq=500.0, channels=1, seed=3), 22050, subtype="PCM_16")
    return files


def run_args(config: Path, source: str, output: str, checkpoint: str, *extra: str) -> list[str]:
    return ["run", "--config", str(config), "--input", source, "--output", output, "--checkpoint", checkpoint,
            *extra]


def cli(args: list[str], env: dict[str, str] | None = None, timeout: float = 300,
        cwd: Path | None = None, python: str = PYTHON) -> subprocess.CompletedProcess:
    """`python -m stemforge ARGS` in its own session; stdout and stderr captured."""
    proc = subprocess.Popen([python, "-m", "stemforge", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env if env is not None else clean_env(), cwd=cwd or REPO, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        stop_group(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out.decode(errors="replace"),
                                       err.decode(errors="replace"))


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without AWS settings (so only what a test sets applies), one OpenMP thread, ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra)
    return env


# ---------------------------------------------------------------- reading committed results

def committed_manifests(fs: Any, root: str) -> list[dict[str, Any]]:
    """Every committed run manifest under root/runs (fs: an fsspec filesystem, root without protocol)."""
    out = []
    for path in sorted(fs.glob(f"{root}/runs/*.json")):
        manifest = read_manifest(fs.unstrip_protocol(path), fs.storage_options)
        if manifest.get("status") == "committed":
            out.append(manifest)
    return out


def committed_rows(fs: Any, root: str) -> list[dict[str, Any]]:
    """All rows of all shards listed by committed manifests, sorted by (track_key, variant, segment)."""
    import pyarrow.parquet as pq

    rows = []
    for manifest in committed_manifests(fs, root):
        for shard in manifest["shards"]:
            with fs.open(f"{root}/{shard}", "rb") as handle:
                rows.extend(pq.read_table(handle).to_pylist())
    return sorted(rows, key=lambda r: (r["track_key"], r["variant"], r["segment"]))


def row_keys(rows: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    return [(r["track_key"], r["variant"], r["segment"]) for r in rows]


def assert_same_rows(expected: list[dict[str, Any]], got: list[dict[str, Any]], ignore: tuple[str, ...] = ()) -> None:
    """Equal row sets: waveform-derived columns exactly, model-derived ones to rtol 1e-5."""
    assert row_keys(got) == row_keys(expected)
    for a, b in zip(expected, got):
        assert a.keys() == b.keys()
        for key in a.keys() - set(MODEL_COLUMNS) - set(ignore):
            assert np.array_equal(np.asarray(a[key]), np.asarray(b[key])), key
        for key in MODEL_COLUMNS:
            np.testing.assert_allclose(np.asarray(a[key]), np.asarray(b[key]), rtol=1e-5, atol=1e-7)


def tree_bytes(fs: Any, root: str) -> dict[str, bytes]:
    """Every file under root, relative path → bytes."""
    return {path[len(root) + 1:]: fs.cat_file(path) for path in fs.find(root)}


# ---------------------------------------------------------------- bad and odd inputs

def write_bad_corpus(folder: Path) -> dict[str, dict[str, Any]]:
    """At least 15 kinds of bad or odd input beside two good files; returns, per kind, the manifest
    entry (relative to the folder) and the expected outcome: ("ok", extra checks) or ("error", reason)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    kinds: dict[str, dict[str, Any]] = {}

    def add(kind: str, name: str, outcome: str, reason: str | None = None) -> Path:
        kinds[kind] = {"entry": name, "outcome": outcome, "reason": reason}
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        return folder / name

    sf.write(add("good_stereo", "good/stereo.wav", "ok"), sine(1.2, seed=11), 44100, subtype="FLOAT")
    sf.write(add("good_mono_flac", "good/mono.flac", "ok"), sine(0.9, channels=1, seed=12), 44100, subtype="PCM_24")
    add("empty_file", "empty.wav", "error", "unreadable").write_bytes(b"")
    add("text_named_wav", "text.wav", "error", "unreadable").write_text("this is plain text, not audio\n" * 20)
    flac = folder / "_whole.flac"
    sf.write(flac, sine(2.0, seed=13), 44100, subtype="PCM_16")
    data = flac.read_bytes()
    add("truncated_flac", "truncated.flac", "error", "truncated").write_bytes(data[: len(data) // 2])
    flac.unlink()
    header = folder / "_header.wav"
    sf.write(header, np.zeros((0, 2), np.float32), 44100, subtype="PCM_16")
    add("header_only_wav", "header_only.wav", "error", "empty").write_bytes(header.read_bytes())
    header.unlink()
    add("random_bytes_ogg", "random.ogg", "error", "unreadable").write_bytes(rng.bytes(4096))
    nan = sine(0.5, seed=14)
    nan[1000, 0] = np.nan
    sf.write(add("nan_samples", "nan.wav", "error", "non_finite"), nan, 44100, subtype="FLOAT")
    inf = sine(0.5, seed=15)
    inf[2000, 1] = np.inf
    sf.write(add("inf_samples", "inf.wav", "error", "non_finite"), inf, 44100, subtype="FLOAT")
    sf.write(add("digital_silence", "silence.wav", "ok"), np.zeros((44100, 2), np.float32), 44100, subtype="PCM_16")
    sf.write(add("one_frame", "one_frame.wav", "ok"), np.full((1, 2), 0.25, np.float32), 44100, subtype="FLOAT")
    sf.write(add("eight_channels", "eight_channels.wav", "ok"), sine(0.7, channels=8, seed=16), 44100,
             subtype="FLOAT")
    sf.write(add("rate_4k", "rate_4k.wav", "ok"), sine(1.0, sr=4000, freq=300.0, seed=17), 4000, subtype="PCM_16")
    sf.write(add("rate_384k", "rate_384k.wav", "ok"), sine(0.3, sr=384000, freq=1000.0, seed=18), 384000,
             subtype="FLOAT")
    add("directory_named_wav", "folder.wav", "error", "is_directory").mkdir()
    unreadable = add("no_read_permission", "locked.wav", "error" if os.geteuid() != 0 else "ok",
                     "io_error" if os.geteuid() != 0 else None)
    sf.write(unreadable, sine(0.6, seed=19), 44100, subtype="FLOAT")
    unreadable.chmod(0)
    kinds["missing_file"] = {"entry": "gone/missing.wav", "outcome": "error", "reason": "not_found"}
    sf.write(add("spaces_and_unicode", "name with spaces – ünïcödé ♫.wav", "ok"), sine(0.8, seed=20), 44100,
             subtype="FLOAT")
    sf.write(add("newline_in_name", "new\nline.wav", "ok"), sine(0.6, seed=21), 44100, subtype="FLOAT")
    sf.write(add("shorter_than_a_window", "short.wav", "ok"), sine(0.05, seed=22), 44100, subtype="FLOAT")
    return kinds


def start_cli(args: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen:
    """`python -m stemforge ARGS` in its own process group (so a test can SIGKILL all of it)."""
    handle = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - the child holds it
    try:
        return subprocess.Popen([PYTHON, "-m", "stemforge", *args], stdout=handle, stderr=subprocess.STDOUT,
                                env=env if env is not None else clean_env(), cwd=REPO, start_new_session=True)
    finally:
        if log:
            handle.close()


@contextlib.contextmanager
def running_cli(args: list[str], log: Path) -> Iterator[subprocess.Popen]:
    """:func:`start_cli`, its process group SIGKILLed on the way out if it still runs (so a failed assertion
    never leaves a run behind)."""
    proc = start_cli(args, log=log)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def frozen(proc: subprocess.Popen) -> Iterator[None]:
    """``proc``'s process group stopped inside the block (SIGSTOP: alive, but its lease heartbeat silent) and
    continued after it."""
    os.killpg(proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(proc.pid, signal.SIGCONT)


def kill_when(proc: subprocess.Popen, condition, timeout: float = 120.0) -> bool:
    """SIGKILLs the process group as soon as ``condition()`` holds; False if the run ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            group_gone(proc.pid)
            return True
        if proc.poll() is not None:
            stop_group(proc)
            return False
        time.sleep(0.02)
    stop_group(proc)
    raise TimeoutError("the condition never held")


def wait_while_running(condition, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Waits until ``condition()`` holds while ``proc`` runs; fails the test if it ends or times out first."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, "the run ended before the condition held"
        assert time.monotonic() < deadline, "the condition never held while the run ran"
        time.sleep(0.02)


def sine_corpus(folder: Path, count: int = 3) -> Path:
    """``count`` short stereo 44.1 kHz float WAVs t0.wav, t1.wav, ... (each a different length)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        sf.write(folder / f"t{i}.wav", sine(0.8 + 0.25 * i, seed=50 + i), 44100, subtype="FLOAT")
    return folder


def overlap_runs(first: list[str], second: list[str], leased, env: dict[str, str], log: Path):
    """Start ``first``, freeze it (SIGSTOP) once it holds the lease, run ``second`` to its end while it is
    frozen, then let the first finish. Returns (first's exit code, second's CompletedProcess)."""
    proc = start_cli(first, env=env, log=log)
    try:
        wait_while_running(leased, proc)
        os.killpg(proc.pid, signal.SIGSTOP)
        try:
            second_result = cli(second, env=env)
        finally:
            os.killpg(proc.pid, signal.SIGCONT)
        return proc.wait(timeout=300), second_result
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def assert_lease_refused(result: subprocess.CompletedProcess, run_id: str) -> None:
    """``result`` is the one-line refusal (exit 2) of a run whose output ``run_id`` holds the lease of."""
    assert result.returncode == 2, result.stderr[-2000:]
    line = result.stderr.strip()
    assert line.count("\n") == 0 and line.startswith("stemforge: output.uri: ")
    assert f"is leased by run {run_id} (host {socket.gethostname()}, pid " in line
    assert "set run.on_lease=wait" in line


def group_gone(pgid: int, timeout: float = 10.0) -> None:
    """Waits until no process of the group is left (a killed run leaks no worker)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"processes of group {pgid} survived SIGKILL")


def local_files(root: Path) -> dict[str, bytes]:
    """Every file under a local folder, relative posix path → bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@contextlib.contextmanager
def beam_portable_cluster(workdir: Path, env: dict[str, str] | None = None) -> Iterator[tuple[str, str]]:
    """Beam's local job service and an external worker pool on 127.0.0.1; yields (job endpoint, pool)."""
    env = dict(env if env is not None else clean_env())
    # the pool starts SDK workers as plain `python`: it must be this interpreter
    env["PATH"] = f"{Path(PYTHON).parent}{os.pathsep}{env.get('PATH', '')}"
    job_port, pool_port = free_port(), free_port()
    job_service = [PYTHON, "-m", "apache_beam.runners.portability.local_job_service_main", "--port", str(job_port)]
    pool = [PYTHON, "-m", "apache_beam.runners.worker.worker_pool_main", "--service_port", str(pool_port)]
    with service(job_service, job_port, "job service", workdir / "job-service.log", env=env), \
            service(pool, pool_port, "worker pool", workdir / "worker-pool.log", env=env):
        yield f"localhost:{job_port}", f"localhost:{pool_port}"
