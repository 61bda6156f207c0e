"""AugmentChain / AugmentPlan: config, provenance, determinism across processes and threads, streaming."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from stemforge.transforms import AugmentChain

SR = 44100
REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = [
    {"transform": "ZeroPhaseBiquadLowPass", "cutoff_hz": 4000.0, "q": 0.7071, "jitter": [0.8, 1.2], "p": 0.7},
    {"transform": "Gain", "min_gain_db": -6.0, "max_gain_db": 6.0, "p": 0.8},
]
NOISY_CONFIG = CONFIG + [{"transform": "AddGaussianNoise", "min_amplitude": 0.001, "max_amplitude": 0.01, "p": 0.9}]


def _signal(channels: int = 2, frames: int = 3000) -> np.ndarray:
    t = np.arange(frames) / SR
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 9000 * t)
    return np.stack([tone * (c + 1) / channels for c in range(channels)]).astype(np.float32)


def _digest(plan_output: np.ndarray, params: list[dict]) -> str:
    return hashlib.sha256(plan_output.tobytes() + json.dumps(params, sort_keys=True).encode()).hexdigest()


def test_unknown_transform_is_named():
    with pytest.raises(ValueError, match="NoSuchTransform"):
        AugmentChain.from_config([{"transform": "NoSuchTransform"}])


@pytest.mark.parametrize("entry", [
    {"transform": "Gain", "min_gain_db": 6.0, "max_gain_db": -6.0},
    {"transform": "Gain", "gain": 3.0},
    {"transform": "ZeroPhaseBiquadLowPass"},
    {"transform": "ZeroPhaseBiquadLowPass", "cutoff_hz": 1000.0, "p": 2.0},
    {"transform": "Compose", "transforms": []},
    {"cutoff_hz": 1000.0},
])
def test_invalid_entries_raise_value_error(entry):
    with pytest.raises(ValueError):
        AugmentChain.from_config([entry])


def test_provenance_lists_every_transform_in_order_with_the_values_used(reference_lowpass):
    chain = AugmentChain.from_config([{**CONFIG[0], "p": 1.0}, {**CONFIG[1], "p": 1.0}])
    plan = chain.draw(seed=5, track_key="album/track-01.flac", variant=0, sample_rate=SR, num_channels=2)
    params = plan.params
    assert json.loads(json.dumps(params)) == params
    assert [p["transform"] for p in params] == ["ZeroPhaseBiquadLowPass", "Gain"]
    lowpass, gain = params
    assert lowpass["applied"] and gain["applied"]
    assert set(lowpass) == {"transform", "applied", "cutoff_hz", "q"}
    assert 0.8 * 4000 <= lowpass["cutoff_hz"] <= 1.2 * 4000 and 0.8 * 0.7071 <= lowpass["q"] <= 1.2 * 0.7071
    assert set(gain) == {"transform", "applied", "gain_db"} and -6 <= gain["gain_db"] <= 6
    x = _signal(frames=800)
    expected = reference_lowpass(x, SR, lowpass["cutoff_hz"], lowpass["q"], 10000) * 10 ** (gain["gain_db"] / 20)
    np.testing.assert_allclose(plan.apply(x), expected, atol=3e-6)


def test_not_applied_transforms_report_only_their_name():
    chain = AugmentChain.from_config([{**CONFIG[0], "p": 0.0}, {**CONFIG[1], "p": 0.0}])
    plan = chain.draw(1, "t", 0, SR, 2)
    assert plan.params == [{"transform": "ZeroPhaseBiquadLowPass", "applied": False},
                           {"transform": "Gain", "applied": False}]
    x = _signal()
    np.testing.assert_array_equal(plan.apply(x), x)


def test_probability_p_is_respected_over_many_keys():
    chain = AugmentChain.from_config(CONFIG)
    applied = [chain.draw(0, f"track-{i}", 0, SR, 2).params[0]["applied"] for i in range(2000)]
    assert np.mean(applied) == pytest.approx(0.7, abs=0.04)


def test_same_key_same_bits_other_keys_differ():
    chain = AugmentChain.from_config([{**CONFIG[0], "p": 1.0}, {**CONFIG[1], "p": 1.0}])
    x = _signal()
    first = chain.draw(9, "k", 2, SR, 2)
    again = chain.draw(9, "k", 2, SR, 2)
    assert first.params == again.params
    np.testing.assert_array_equal(first.apply(x), again.apply(x))
    others = [chain.draw(9, "k", 3, SR, 2).params, chain.draw(9, "k2", 2, SR, 2).params,
              chain.draw(10, "k", 2, SR, 2).params]
    assert all(o != first.params for o in others)


def test_editing_one_entry_keeps_the_others_draws():
    base = AugmentChain.from_config([{**CONFIG[0], "p": 1.0}, {**CONFIG[1], "p": 1.0}])
    edited = AugmentChain.from_config([{**CONFIG[0], "p": 1.0, "cutoff_hz": 8000.0}, {**CONFIG[1], "p": 1.0}])
    assert base.draw(1, "t", 0, SR, 2).params[1] == edited.draw(1, "t", 0, SR, 2).params[1]


_CHILD = """
import hashlib, json, sys
import numpy as np
from stemforge.transforms import AugmentChain
config, keys, x = json.loads(sys.argv[1]), json.loads(sys.argv[2]), np.load(sys.argv[3])
chain = AugmentChain.from_config(config)
for seed, key, variant in keys:
    plan = chain.draw(seed, key, variant, 44100, x.shape[0])
    out = plan.apply(x)
    print(hashlib.sha256(out.tobytes() + json.dumps(plan.params, sort_keys=True).encode()).hexdigest())
"""


def test_bit_identical_in_another_process(tmp_path):
    keys = [[0, "a", 0], [0, "a", 1], [7, "b/c.wav", 0], [7, "b/c.wav", 5]]
    x = _signal()
    np.save(tmp_path / "x.npy", x)
    chain = AugmentChain.from_config(NOISY_CONFIG)
    expected = []
    for seed, key, variant in keys:
        plan = chain.draw(seed, key, variant, SR, 2)
        out = plan.apply(x)
        expected.append(_digest(out, plan.params))
    for hash_seed in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-c", _CHILD, json.dumps(NOISY_CONFIG), json.dumps(keys), str(tmp_path / "x.npy")],
            capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": hash_seed}, cwd=REPO_ROOT,
        )
        assert result.stdout.split() == expected


def test_eight_threads_do_not_disturb_each_other():
    chain = AugmentChain.from_config(NOISY_CONFIG)
    x = _signal(frames=2000)
    keys = [(3, f"track-{i % 5}", i) for i in range(40)]

    def run(key: tuple[int, str, int]) -> str:
        plan = chain.draw(*key, SR, 2)
        out = plan.apply(x)
        return _digest(out, plan.params)

    sequential = [run(k) for k in keys]
    stop = threading.Event()

    def meddle() -> None:  # other code in the process using the global RNGs meanwhile
        while not stop.is_set():
            random.seed(0)
            np.random.seed(0)
            random.random()

    meddler = threading.Thread(target=meddle)
    meddler.start()
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            concurrent = list(pool.map(run, keys * 2))
    finally:
        stop.set()
        meddler.join()
    assert concurrent == sequential * 2


def test_third_party_transform_is_seeded_and_leaves_global_rngs_alone():
    chain = AugmentChain.from_config([{"transform": "AddGaussianNoise", "min_amplitude": 0.01,
                                       "max_amplitude": 0.02, "p": 1.0}])
    x = _signal(frames=500)
    random.seed(99)
    np.random.seed(99)
    before = (random.getstate(), np.random.get_state()[1].copy())
    plan = chain.draw(1, "t", 0, SR, 2)
    out = plan.apply(x)
    assert random.getstate() == before[0]
    np.testing.assert_array_equal(np.random.get_state()[1], before[1])
    np.testing.assert_array_equal(chain.draw(1, "t", 0, SR, 2).apply(x), out)
    amplitude = plan.params[0]["amplitude"]
    assert 0.01 <= amplitude <= 0.02
    assert np.std(out - x) == pytest.approx(amplitude, rel=0.1)
    assert not plan.is_streamable


def test_mono_plan_with_a_mono_only_transform():
    chain = AugmentChain.from_config([{"transform": "Reverse", "p": 1.0}])
    x = _signal(channels=1)
    out = chain.draw(0, "m", 0, SR, 1).apply(x)
    np.testing.assert_array_equal(out, x[:, ::-1])


def test_plan_rejects_other_channel_counts():
    plan = AugmentChain.from_config(CONFIG).draw(0, "t", 0, SR, 2)
    with pytest.raises(ValueError):
        plan.apply(_signal(channels=1))


class _Source:
    def __init__(self, x: np.ndarray) -> None:
        self.x, self.largest = x, 0

    def __call__(self, start: int, stop: int) -> np.ndarray:
        self.largest = max(self.largest, stop - start)
        return self.x[:, start:stop]


@pytest.mark.parametrize("frames", [1, 900, 25000])
@pytest.mark.parametrize("chunk", [1000, 4096])
def test_stream_equals_whole_apply(frames, chunk):
    config = [
        {"transform": "Gain", "min_gain_db": -3.0, "max_gain_db": 3.0, "p": 1.0},
        {"transform": "ZeroPhaseBiquadLowPass", "cutoff_hz": 3000.0, "p": 1.0, "pad": 3000},
        {"transform": "Gain", "min_gain_db": 1.0, "max_gain_db": 2.0, "p": 1.0},
        {"transform": "ZeroPhaseBiquadLowPass", "cutoff_hz": 6000.0, "q": 1.2, "p": 1.0},
        {"transform": "AddGaussianNoise", "p": 0.0},
    ]
    plan = AugmentChain.from_config(config).draw(4, "s", 0, SR, 2)
    assert plan.is_streamable
    x = np.random.default_rng(frames).uniform(-0.5, 0.5, (2, frames)).astype(np.float32)
    source = _Source(x)
    chunks = list(plan.apply_stream(source, frames, chunk_frames=chunk))
    assert all(c.shape[1] <= chunk for c in chunks)
    np.testing.assert_array_equal(np.concatenate(chunks, axis=1), plan.apply(x))
    assert source.largest <= chunk


def test_stream_refused_for_non_streamable_plan():
    plan = AugmentChain.from_config([{"transform": "AddGaussianNoise", "p": 1.0}]).draw(0, "t", 0, SR, 2)
    with pytest.raises(ValueError, match="not streamable"):
        plan.apply_stream(lambda a, b: np.zeros((2, b - a), np.float32), 100, 10)


def test_a_new_linear_transform_streams_and_records_through_the_interface_alone(monkeypatch):
    """The chain treats a linear transform by its interface, not its name: a transform registered under a new
    name is drawn, applied, streamed bit for bit and recorded in its row column with no other change."""
    from stemforge.transforms import LinearTransform, chain

    class Invert(LinearTransform):
        supports_multichannel = True
        ROW_COLUMNS = {"invert_sign": "sign"}

        def draw_parameters(self, rng):
            return {"sign": -1.0}

        def freeze(self, drawn):
            self.parameters = {"should_apply": True, **drawn}
            self.freeze_parameters()

        def apply(self, samples, sample_rate):
            return samples * self.parameters["sign"]

        def stream(self, source, n_frames, sample_rate, chunk_frames):
            return lambda start, stop: source(start, stop) * self.parameters["sign"]

        def configured_ranges(self):
            return {"invert_sign": (-1.0, -1.0)}

    monkeypatch.setitem(chain.LINEAR_TRANSFORMS, "Invert", Invert)
    plan = AugmentChain.from_config([*CONFIG, {"transform": "Invert", "p": 1.0}]).draw(0, "k", 0, SR, 2)
    x = _signal(frames=5000)
    whole = plan.apply(x)
    streamed = np.concatenate(list(plan.apply_stream(lambda a, b: x[:, a:b], x.shape[1], chunk_frames=1234)), axis=1)
    assert plan.is_streamable and whole.tobytes() == streamed.tobytes()
    assert chain.is_linear("Invert") and not chain.is_linear("AddGaussianNoise")
    drawn = {p["transform"]: p for p in plan.params}
    assert chain.recorded_draws(plan.params) == {
        "lowpass_cutoff_hz": drawn["ZeroPhaseBiquadLowPass"].get("cutoff_hz"),
        "lowpass_q": drawn["ZeroPhaseBiquadLowPass"].get("q"), "gain_db": drawn["Gain"].get("gain_db"),
        "invert_sign": -1.0}
