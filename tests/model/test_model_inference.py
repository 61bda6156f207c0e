"""InferenceModel (BN folding, channels_last, autocast), threads sharing a Separator, and device resolution."""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest
import torch
from stemforge_testing import randomise_batchnorm
from torch import nn

from stemforge.model import CascadedNet, InferenceModel, Separator, fold_batchnorm, resolve_device


def _windows(batch: int, width: int = 256, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, size=(batch, 2, 129, width)).astype(np.float32)


def _reference(net: nn.Module, windows: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net.eval().predict_mask(torch.from_numpy(windows)).numpy()


def test_optimised_model_matches_plain_predict_mask(small_net):
    windows = _windows(3)
    model = InferenceModel(small_net, device="cpu", precision="fp32", optimize=True)
    out = model(windows)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    assert out.shape == (3, 2, 129, 256 - 2 * 64)
    np.testing.assert_allclose(out, _reference(small_net, windows), atol=1e-5)
    assert (model.device, model.offset, model.n_fft) == (torch.device("cpu"), 64, 256)


def test_accepts_torch_batches_and_leaves_callers_net_untouched(small_net):
    before = copy.deepcopy(small_net.state_dict())
    model = InferenceModel(small_net, device="cpu")
    windows = _windows(2, width=160)
    np.testing.assert_array_equal(model(torch.from_numpy(windows)), model(windows))
    after = small_net.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert any(isinstance(m, nn.BatchNorm2d) for m in small_net.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.net.modules())


def test_unoptimised_model_is_the_plain_net(small_net):
    windows = _windows(2)
    model = InferenceModel(small_net, device="cpu", optimize=False)
    np.testing.assert_array_equal(model(windows), _reference(small_net, windows))


def test_empty_batch():
    model = InferenceModel(CascadedNet(256, 8, 32), device="cpu")
    assert model(np.zeros((0, 2, 129, 256), dtype=np.float32)).shape == (0, 2, 129, 128)


@pytest.mark.parametrize(
    "shape", [(2, 129, 256), (1, 1, 129, 256), (1, 2, 128, 256), (1, 2, 129, 120), (1, 2, 129, 200)]
)
def test_rejects_wrong_shapes(small_net, shape):
    model = InferenceModel(small_net, device="cpu")
    with pytest.raises(ValueError):
        model(np.zeros(shape, dtype=np.float32))


def test_rejects_complex_input(small_net):
    with pytest.raises(TypeError):
        InferenceModel(small_net, device="cpu")(np.zeros((1, 2, 129, 256), dtype=np.complex64))


def test_threads_sharing_one_separator_interleave_and_each_gets_its_own_result(small_net):
    """One Separator (and its InferenceModel) shared by eight threads. The model's lock serialises only the network
    calls; everything around them (normalisation, window grids, stitching, TTA, aggression, merge_artifacts)
    runs concurrently, and with one window per network call the threads take turns between windows. Any state a
    call kept on the shared objects would mix tracks; each thread's result must equal that track run alone."""
    sep = Separator(small_net, batch_size=1, tta=True, postprocess=True, device="cpu")
    rng = np.random.default_rng(7)
    tracks = [(rng.standard_normal((2, 129, frames)) + 1j * rng.standard_normal((2, 129, frames))).astype(np.complex64)
              * scale for frames, scale in ((300, 1.0), (517, 0.01), (129, 50.0), (400, 3.0))]
    expected = [sep.predict_mask(track) for track in tracks]
    start = threading.Barrier(8)
    order: list[int] = []
    results: dict[int, np.ndarray] = {}
    model_call = sep.model.predict

    def noted(windows: torch.Tensor) -> torch.Tensor:
        order.append(threading.get_ident())
        return model_call(windows)

    def work(i: int) -> None:
        start.wait()
        results[i] = sep.predict_mask(tracks[i % 4])

    sep.model.predict = noted
    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    switches = sum(a != b for a, b in zip(order, order[1:]))
    assert switches > len(threads)  # the calls did interleave: more turns than one per thread
    for i in range(8):
        np.testing.assert_array_equal(results[i], expected[i % 4])


def test_bf16_autocast_on_cpu_is_close(small_net):
    windows = _windows(1)
    out = InferenceModel(small_net, device="cpu", precision="bf16")(windows)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, _reference(small_net, windows), atol=0.1)


def test_unknown_precision():
    with pytest.raises(ValueError, match="precision"):
        InferenceModel(CascadedNet(256, 8, 32), device="cpu", precision="fp8")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(("precision", "atol"), [("fp32", 1e-4), ("fp16", 2e-2), ("bf16", 1e-1)])
def test_cuda_precisions(small_net, precision, atol):
    windows = _windows(4)
    out = InferenceModel(small_net, device="cuda", precision=precision)(windows)
    np.testing.assert_allclose(out, _reference(small_net, windows), atol=atol)


def test_fold_batchnorm_preserves_the_function():
    torch.manual_seed(3)
    net = randomise_batchnorm(CascadedNet(256, 8, 32), seed=5).eval()
    folded = copy.deepcopy(net)
    # Every Conv2DBNActiv and the LSTM dense block hold one foldable pair each.
    expected_pairs = sum(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in net.modules())
    assert fold_batchnorm(folded) == expected_pairs
    x = torch.rand(2, 2, 129, 256)
    with torch.no_grad():
        assert torch.allclose(folded(x), net(x), atol=1e-5)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    auto = resolve_device("auto")
    if torch.cuda.is_available():
        assert auto.type == "cuda"
    elif torch.backends.mps.is_available():
        assert auto.type == "mps"
    else:
        assert auto == torch.device("cpu")
    assert resolve_device(None) == auto
    with pytest.raises(ValueError):
        resolve_device("banana")
    with pytest.raises(ValueError):
        resolve_device("xla")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present")
def test_unavailable_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="CUDA"):
        InferenceModel(CascadedNet(256, 8, 32), device="cuda:0")


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="MPS present")
def test_unavailable_mps_is_a_clear_error():
    with pytest.raises(ValueError, match="MPS"):
        resolve_device("mps")
