"""rng_isolation: seeded per-thread draws for audiomentations, globals untouched and still honoured."""

from __future__ import annotations

import random
import threading

import numpy as np
from audiomentations import AddGaussianNoise, Gain

from stemforge.transforms import rng_isolation

X = np.zeros((2, 256), dtype=np.float32)


def _gain_draw() -> float:
    gain = Gain(min_gain_db=-20.0, max_gain_db=20.0, p=1.0)
    gain.randomize_parameters(X, 16000)
    return gain.parameters["amplitude_ratio"]


def test_seeded_block_is_reproducible_and_leaves_globals_alone():
    random.seed(5)
    np.random.seed(5)
    state = random.getstate()
    with rng_isolation.seeded(123):
        first = (_gain_draw(), AddGaussianNoise(p=1.0)(X, 16000).tobytes())
    with rng_isolation.seeded(123):
        second = (_gain_draw(), AddGaussianNoise(p=1.0)(X, 16000).tobytes())
    assert first == second
    assert random.getstate() == state
    assert np.random.get_state()[1][0] == np.random.RandomState(5).get_state()[1][0]


def test_outside_a_block_audiomentations_still_follows_the_global_seed():
    rng_isolation.install()
    random.seed(42)
    a = _gain_draw()
    random.seed(42)
    assert _gain_draw() == a


def test_threads_get_independent_streams_despite_global_reseeding():
    with rng_isolation.seeded(7):
        expected = [_gain_draw() for _ in range(200)]
    results: list[list[float]] = []
    stop = threading.Event()

    def worker() -> None:
        with rng_isolation.seeded(7):
            results.append([_gain_draw() for _ in range(200)])

    def meddle() -> None:
        while not stop.is_set():
            random.seed(0)
            random.random()

    meddler = threading.Thread(target=meddle)
    meddler.start()
    workers = [threading.Thread(target=worker) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    meddler.join()
    assert results == [expected] * 8
