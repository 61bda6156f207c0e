"""WindowBatcher: windows of several tracks share fixed-size batches, each mask equals the model's on a batch
padded with zeros, a waiting caller can flush a partial batch, the queue bounds a fast producer, and a failing
batch reaches its windows' receivers while the batcher goes on."""

import threading

import numpy as np
import pytest
import torch

from stemforge.model.batcher import WindowBatcher


def model(batch: np.ndarray) -> np.ndarray:
    """A stand-in whose output depends on the whole batch's shape, as a CPU kernel's algorithm choice may."""
    return batch * 2.0 + batch.shape[0]


class Collect:
    def __init__(self) -> None:
        self.results: dict[str, np.ndarray | BaseException] = {}
        self.arrived = threading.Event()

    def receiver(self, key: str):
        def receive(result):
            self.results[key] = result
            self.arrived.set()
        return receive


def windows(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random((2, 3, 4), dtype=np.float32) for _ in range(n)]


def test_windows_of_two_tracks_fill_one_batch_and_masks_equal_a_padded_batch():
    batcher = WindowBatcher(model, batch_size=4)
    got = Collect()
    a, b = windows(2, 0), windows(2, 1)
    for name, track in (("a", a), ("b", b)):
        for i, window in enumerate(track):
            batcher.submit(window, got.receiver(f"{name}{i}"))
    batcher.close()
    assert batcher.batch_sizes() == [4]
    for name, track in (("a", a), ("b", b)):
        for i, window in enumerate(track):
            np.testing.assert_array_equal(got.results[f"{name}{i}"], window * 2.0 + 4)


def test_a_partial_batch_waits_until_flushed_and_is_padded_to_the_batch_size():
    batcher = WindowBatcher(model, batch_size=4)
    got = Collect()
    [window] = windows(1, 2)
    batcher.submit(window, got.receiver("x"))
    assert not got.arrived.wait(0.2)  # one window of four: the batcher waits for more
    batcher.flush()
    assert got.arrived.wait(10)
    np.testing.assert_array_equal(got.results["x"], window * 2.0 + 4)  # computed in a batch of 4
    assert batcher.batch_sizes() == [1]
    batcher.close()


def test_a_full_queue_blocks_the_producer_until_the_model_takes_a_batch():
    release = threading.Event()

    def slow(batch):
        release.wait(10)
        return model(batch)

    batcher = WindowBatcher(slow, batch_size=2, max_queued=2)
    got = Collect()
    items = windows(7, 3)
    producer = threading.Thread(target=lambda: [batcher.submit(w, got.receiver(str(i))) for i, w in enumerate(items)])
    producer.start()
    producer.join(0.3)
    # the model holds one batch of 2 and the queue holds 2 more: the producer waits with 3 windows left
    assert producer.is_alive() and not got.results
    release.set()
    producer.join(10)
    batcher.close()
    assert sorted(got.results, key=int) == [str(i) for i in range(7)]
    assert batcher.batch_sizes() == [2, 2, 2, 1]


def test_a_failing_batch_reaches_its_windows_and_the_next_batch_still_runs():
    calls = []

    def flaky(batch):
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("CUDA out of memory")
        return model(batch)

    batcher = WindowBatcher(flaky, batch_size=2)
    got = Collect()
    items = windows(4, 4)
    for i, window in enumerate(items):
        batcher.submit(window, got.receiver(str(i)))
    batcher.close()
    assert [str(got.results[k]) for k in ("0", "1")] == ["CUDA out of memory"] * 2
    np.testing.assert_array_equal(got.results["3"], items[3] * 2.0 + 2)
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(items[0], got.receiver("late"))


def test_device_tensors_are_stacked_and_padded_where_they_are():
    """The device path submits windows already on the model's device: they are batched as tensors."""
    seen = []

    def device_model(batch):
        seen.append((type(batch), tuple(batch.shape)))
        return (batch * 2.0 + batch.shape[0]).numpy()

    batcher = WindowBatcher(device_model, batch_size=4)
    got = Collect()
    tensors = [torch.from_numpy(w) for w in windows(3, 5)]
    for i, tensor in enumerate(tensors):
        batcher.submit(tensor, got.receiver(str(i)))
    batcher.flush()
    batcher.close()
    assert seen == [(torch.Tensor, (4, 2, 3, 4))]
    for i, tensor in enumerate(tensors):
        np.testing.assert_array_equal(got.results[str(i)], tensor.numpy() * 2.0 + 4)
