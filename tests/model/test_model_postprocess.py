"""merge_artifacts against a frame-by-frame loop written from the description, and hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stemforge.model import artifact_weights, merge_artifacts


def loop_reference(mask: np.ndarray, thres: float, min_range: int, fade: int) -> np.ndarray:
    """Plain-Python reading of the description: runs, filter, optional bridge, fades, ones."""
    n = mask.shape[2]
    high = [bool(mask[:, :, t].min() > thres) for t in range(n)]
    runs = []
    t = 0
    while t < n:
        if high[t]:
            first = t
            while t + 1 < n and high[t + 1]:
                t += 1
            runs.append((first, t))
        t += 1
    weight = [0.0] * n
    previous_last = None
    for first, last in runs:
        if not last - first > min_range:
            continue
        if previous_last is not None and first - previous_last < fade:
            first = previous_last - 2 * fade
        if first != 0:
            for k in range(fade):
                weight[first + k] = k / (fade - 1)
        for k in range(fade):
            weight[last - fade + k] = 1.0 - k / (fade - 1)
        for frame in range(first + fade if first != 0 else 0, last - fade):
            weight[frame] = 1.0
        previous_last = last
    w = np.array(weight, dtype=np.float64)
    return (mask + w * (1.0 - mask)).astype(mask.dtype)


def _mask_from_pattern(high: list[bool], seed: int = 0) -> np.ndarray:
    """A [2, 5, frames] mask whose per-frame minimum is above 0.05 exactly where ``high`` is set."""
    rng = np.random.default_rng(seed)
    mask = rng.uniform(0.1, 0.9, size=(2, 5, len(high))).astype(np.float32)
    for t, is_high in enumerate(high):
        if not is_high:
            mask[rng.integers(2), rng.integers(5), t] = 0.01
    return mask


def test_whole_track_run_from_frame_zero():
    mask = np.full((2, 3, 100), 0.5, dtype=np.float32)
    out = merge_artifacts(mask)
    # One run, frames 0..99: no fade-in (starts at 0), ones up to 99-32, fade-out over 67..98, frame 99 untouched.
    expected_w = np.zeros(100)
    expected_w[:67] = 1.0
    expected_w[67:99] = np.linspace(1.0, 0.0, 32)
    expected = np.broadcast_to(0.5 + 0.5 * expected_w, mask.shape)
    np.testing.assert_allclose(out, expected, atol=1e-7)
    assert out[0, 0, 99] == pytest.approx(0.5)
    np.testing.assert_array_equal(mask, 0.5)  # the input is not modified


def test_run_must_span_more_than_min_range():
    high = [False] * 10 + [True] * 65 + [False] * 10  # last - first == 64: not > 64
    mask = _mask_from_pattern(high)
    np.testing.assert_array_equal(merge_artifacts(mask), mask)
    high = [False] * 10 + [True] * 66 + [False] * 10  # last - first == 65
    out = merge_artifacts(_mask_from_pattern(high))
    assert not np.array_equal(out, _mask_from_pattern(high))
    np.testing.assert_allclose(out, loop_reference(_mask_from_pattern(high), 0.05, 64, 32), atol=1e-6)


def test_no_high_frames_leaves_mask_unchanged():
    mask = np.full((2, 4, 50), 0.01, dtype=np.float32)
    np.testing.assert_array_equal(merge_artifacts(mask), mask)


def test_close_runs_are_bridged():
    # Two long runs 10 frames apart (< fade_size): the second one's fade-in restarts 64 frames before
    # the first one's last frame (frames 35..66), and the gap between the runs is filled.
    high = [True] * 100 + [False] * 10 + [True] * 100 + [False] * 5
    mask = _mask_from_pattern(high, seed=3)
    out = merge_artifacts(mask)
    np.testing.assert_allclose(out, loop_reference(mask, 0.05, 64, 32), atol=1e-6)
    # The gap frames (100..109) end up fully weighted.
    np.testing.assert_allclose(out[:, :, 100:110], 1.0, atol=1e-6)
    fade_in = np.linspace(0.0, 1.0, 32)
    np.testing.assert_allclose(out[:, :, 35:67], mask[:, :, 35:67] + fade_in * (1 - mask[:, :, 35:67]), atol=1e-6)


def test_rejects_min_range_below_two_fades():
    with pytest.raises(ValueError):
        merge_artifacts(np.ones((2, 3, 10), dtype=np.float32), min_range=10, fade_size=8)


@settings(max_examples=80, deadline=None)
@given(
    segments=st.lists(st.tuples(st.booleans(), st.integers(1, 150)), min_size=1, max_size=8),
    seed=st.integers(0, 1000),
)
def test_matches_loop_reference(segments, seed):
    high = [flag for flag, length in segments for _ in range(length)]
    mask = _mask_from_pattern(high, seed)
    out = merge_artifacts(mask)
    assert out.dtype == mask.dtype and out.shape == mask.shape
    np.testing.assert_allclose(out, loop_reference(mask, 0.05, 64, 32), atol=1e-6)


def test_artifact_weights_stream_form_equals_merge_artifacts_bit_for_bit():
    high = [True] * 90 + [False] * 20 + [True] * 200 + [False] * 3 + [True] * 70
    mask = _mask_from_pattern(high, seed=9)
    weight = artifact_weights(mask.min(axis=(0, 1)))
    assert weight.dtype == np.float32 and weight.shape == (len(high),)
    assert weight.min() >= 0 and weight.max() <= 1
    # Applied chunk by chunk, as a streaming caller would.
    chunks = [mask[:, :, s : s + 50] + weight[s : s + 50] * (1 - mask[:, :, s : s + 50]) for s in range(0, len(high), 50)]
    np.testing.assert_array_equal(np.concatenate(chunks, axis=2), merge_artifacts(mask))
    with pytest.raises(ValueError):
        artifact_weights(mask)
