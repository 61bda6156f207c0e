"""Checkpoint loading/saving: formats, fsspec URLs, config inference, integrity and safety."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import pickle
import socket
import threading
from collections import OrderedDict
from pathlib import Path

import pytest
import safetensors.torch
import torch

from stemforge.model import CascadedNet, CheckpointError, file_sha256, infer_config, load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def net() -> CascadedNet:
    torch.manual_seed(0)
    return CascadedNet(256, nout=16, nout_lstm=48).eval()


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize("name", ["net.pth", "net.safetensors"])
def test_round_trip_local_infers_nout_and_nout_lstm(net, tmp_path, name):
    path = tmp_path / "sub" / name
    save_checkpoint(net, path)
    loaded = load_checkpoint(path, n_fft=256, device="cpu")
    assert not loaded.training
    assert loaded.out.weight.shape[1] == 16  # nout
    assert loaded.stg3_full_band_net.lstm_dec2.lstm.hidden_size == 24  # nout_lstm // 2
    assert _same_weights(loaded, net)
    assert loaded.checkpoint_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert file_sha256(path) == loaded.checkpoint_sha256


def test_saved_torch_file_is_a_plain_state_dict(net, tmp_path):
    path = tmp_path / "net.pth"
    save_checkpoint(net, path)
    state = torch.load(path, weights_only=True)
    assert set(state) == set(net.state_dict())
    assert safetensors.torch.load_file(_saved(net, tmp_path / "n.safetensors")).keys() == state.keys()


def _saved(net: torch.nn.Module, path: Path) -> Path:
    save_checkpoint(net, path)
    return path


def test_infer_config_reads_shapes(net):
    assert infer_config(net.state_dict()) == (16, 48)
    assert infer_config(CascadedNet(2048).state_dict()) == (32, 128)


def test_vocal_remover_plain_state_dict_and_wrappers(net, tmp_path):
    state = net.state_dict()
    payloads = {
        "plain.pth": state,  # what vocal-remover's train.py writes (an OrderedDict with _metadata)
        "wrapped_state_dict.pth": {"state_dict": state, "epoch": 7},
        "wrapped_model.pth": {"model": OrderedDict(state), "optimizer_lr": 0.001},
        "data_parallel.pth": {"module." + k: v for k, v in state.items()},
    }
    for name, payload in payloads.items():
        torch.save(payload, tmp_path / name)
        assert _same_weights(load_checkpoint(tmp_path / name, n_fft=256, device="cpu"), net), name


def test_memory_url_and_sha256(net):
    url = "memory://stemforge-tests/ckpt/net.pth"
    save_checkpoint(net, url)
    digest = file_sha256(url)
    loaded = load_checkpoint(url, n_fft=256, device="cpu", sha256=digest.upper())
    assert _same_weights(loaded, net) and loaded.checkpoint_sha256 == digest


def test_http_url(net, tmp_path):
    save_checkpoint(net, tmp_path / "net.safetensors")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/net.safetensors"
        assert _same_weights(load_checkpoint(url, n_fft=256, device="cpu"), net)
    finally:
        server.shutdown()
        server.server_close()


def test_auto_device_returns_eval_model_on_resolved_device(net, tmp_path):
    loaded = load_checkpoint(_saved(net, tmp_path / "net.pth"), n_fft=256, device="auto")
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert next(loaded.parameters()).device.type == expected
    assert not loaded.training


def test_wrong_n_fft_names_n_fft_and_first_mismatched_tensor(net, tmp_path):
    path = _saved(net, tmp_path / "net.pth")
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path, n_fft=512, device="cpu")
    text = _one_line(exc)
    assert "n_fft=512" in text and str(path) in text
    # In module order the first tensor whose shape depends on n_fft is stage 1's first LSTM input weight.
    assert "'stg1_low_band_net.0.lstm_dec2.lstm.weight_ih_l0'" in text


def test_not_a_cascadednet_state_dict(tmp_path):
    torch.save({"weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="out.weight"):
        load_checkpoint(tmp_path / "other.pth", n_fft=256, device="cpu")


def test_missing_tensor_is_named(net, tmp_path):
    state = dict(net.state_dict())
    del state["stg2_high_band_net.enc3.conv2.conv.1.running_var"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match="stg2_high_band_net.enc3.conv2.conv.1.running_var"):
        load_checkpoint(tmp_path / "partial.pth", n_fft=256, device="cpu")


@pytest.mark.parametrize("name", ["net.pth", "net.safetensors"])
def test_truncated_file_is_a_one_line_error_with_the_path(net, tmp_path, name):
    full = _saved(net, tmp_path / ("full_" + name)).read_bytes()
    path = tmp_path / name
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path, n_fft=256, device="cpu")
    assert str(path) in _one_line(exc)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all\n", b"\x00" * 64])
def test_non_checkpoint_files(tmp_path, content):
    path = tmp_path / "junk.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path, n_fft=256, device="cpu")
    assert str(path) in _one_line(exc)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(tmp_path / "nope.pth", n_fft=256, device="cpu")
    assert "nope.pth" in _one_line(exc)


def test_sha256_mismatch(net, tmp_path):
    path = _saved(net, tmp_path / "net.pth")
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path, n_fft=256, device="cpu", sha256="0" * 64)
    assert "sha256 mismatch" in _one_line(exc) and str(path) in str(exc.value)


class _CreatesFile:
    """Unpickling this calls open(target, "w"): a stand-in for arbitrary code execution."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


def _payload(target: Path, legacy: bool) -> bytes:
    obj = {"out.weight": torch.zeros(2, 8, 1, 1), "evil": _CreatesFile(target)}
    if legacy:
        return pickle.dumps(obj, protocol=2)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("legacy", [False, True])
def test_pickle_payload_is_refused_and_never_runs(tmp_path, legacy):
    # Control: the payload is live — loading it unsafely does create its file.
    control = tmp_path / "control_created"
    unsafe = _payload(control, legacy)
    if legacy:
        pickle.loads(unsafe)
    else:
        torch.load(io.BytesIO(unsafe), weights_only=False)
    assert control.exists()

    target = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    path.write_bytes(_payload(target, legacy))
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path, n_fft=256, device="cpu")
    text = _one_line(exc)
    assert "refused" in text and str(path) in text
    assert not target.exists()


def test_sha256_is_checked_before_deserialising(tmp_path):
    target = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    path.write_bytes(_payload(target, legacy=True))
    with pytest.raises(CheckpointError, match="sha256 mismatch"):
        load_checkpoint(path, n_fft=256, device="cpu", sha256="f" * 64)
    assert not target.exists()


def test_messages_do_not_echo_credentials():
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://alice:hunter2pass@127.0.0.1:{port}/m.pth?token=s3cr3t-t0ken"
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(url, n_fft=256, device="cpu")
    text = _one_line(exc)
    assert f"127.0.0.1:{port}/m.pth" in text
    assert "hunter2pass" not in text and "s3cr3t-t0ken" not in text and "alice" not in text

    with pytest.raises(CheckpointError) as exc:
        load_checkpoint("memory://stemforge-tests/absent.pth", device="cpu", storage_options={"key": "AKIAEXAMPLESECRET"})
    assert "AKIAEXAMPLESECRET" not in _one_line(exc)


@pytest.mark.parametrize(("name", "wrap", "bad"), [("nan.pth", None, float("nan")),
                                                   ("inf.pth", "state_dict", float("inf")),
                                                   ("nan.safetensors", None, float("nan"))])
def test_non_finite_weights_are_refused_naming_the_tensor(net, tmp_path, name, wrap, bad):
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state["stg1_low_band_net.0.enc2.conv1.conv.0.weight"].view(-1)[[1, 5]] = bad
    path = tmp_path / name
    if name.endswith(".safetensors"):
        safetensors.torch.save_file(state, path)
    else:
        torch.save({wrap: state} if wrap else state, path)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(str(path), n_fft=256, device="cpu")
    total = state["stg1_low_band_net.0.enc2.conv1.conv.0.weight"].numel()
    assert _one_line(exc) == (f"{path} holds non-finite weights: tensor 'stg1_low_band_net.0.enc2.conv1.conv.0.weight' "
                              f"has 2 NaN or infinite value(s) of {total}")
