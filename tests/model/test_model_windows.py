"""Window geometry against vocal-remover's padded-array slicing, built here explicitly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stemforge.model import WindowGrid, crop_frames, make_padding


@pytest.mark.parametrize(
    ("n_frames", "cropsize", "offset", "expected"),
    [
        (1, 256, 64, (64, 64 + 127, 128)),
        (128, 256, 64, (64, 64 + 128, 128)),  # a multiple of roi still gets a whole extra roi
        (129, 256, 64, (64, 64 + 127, 128)),
        (1287, 256, 64, (64, 64 + 121, 128)),
        (10, 128, 64, (64, 128 - 10 + 64, 128)),  # roi would be 0: cropsize is used
        (50, 16, 0, (0, 14, 16)),
    ],
)
def test_make_padding_follows_vocal_remover_rule(n_frames, cropsize, offset, expected):
    assert make_padding(n_frames, cropsize, offset) == expected


def test_make_padding_rejects_cropsize_below_context():
    with pytest.raises(ValueError):
        make_padding(10, 100, 64)


def _upstream_windows(spec: np.ndarray, cropsize: int, offset: int, extra: int) -> list[np.ndarray]:
    """vocal-remover's windows: zero-pad, then slice every roi frames."""
    left, right, roi = make_padding(spec.shape[-1], cropsize, offset)
    padded = np.pad(spec, ((0, 0), (0, 0), (left + extra, right + extra)))
    count = (padded.shape[-1] - 2 * offset) // roi
    return [padded[:, :, i * roi : i * roi + cropsize] for i in range(count)]


@settings(max_examples=60, deadline=None)
@given(
    n_frames=st.integers(1, 700),
    roi_units=st.integers(1, 6),
    offset=st.sampled_from([0, 8, 64]),
    tta=st.booleans(),
)
def test_grid_windows_equal_padded_slices(n_frames, roi_units, offset, tta):
    cropsize = 2 * offset + 16 * roi_units
    roi = cropsize - 2 * offset
    shift = roi // 2 if tta else 0
    spec = np.random.default_rng(n_frames).standard_normal((2, 3, n_frames)).astype(np.float32)
    grid = WindowGrid(n_frames, cropsize, offset, shift)
    expected = _upstream_windows(spec, cropsize, offset, shift)
    assert grid.roi == roi
    assert grid.num_windows == len(expected)
    assert grid.pad_left == offset + shift
    assert grid.pad_right == roi - n_frames % roi + offset + shift
    for i, window in enumerate(expected):
        start, stop = grid.input_span(i)
        assert stop - start == cropsize
        np.testing.assert_array_equal(crop_frames(spec, start, stop), window)
        # The centre kept from window i covers original frames i*roi - shift ... + roi.
        assert grid.output_span(i) == (i * roi - shift, (i + 1) * roi - shift)
    # Centres tile without gaps and cover every frame.
    assert grid.output_span(0)[0] <= 0
    assert grid.output_span(grid.num_windows - 1)[1] >= n_frames


def test_grid_properties_for_default_tta_pass():
    grid = WindowGrid(300, 256, 64, shift=64)
    # 300 % 128 = 44, so the right pad is 128 - 44 + 64, plus the shift.
    assert (grid.roi, grid.pad_left, grid.pad_right) == (128, 128, 148 + 64)
    assert grid.num_windows == (128 + 300 + 212 - 2 * 64) // 128 == 4
    assert grid.input_span(0) == (-128, 128)
    assert grid.output_span(0) == (-64, 64)
    assert grid.output_span(1) == (64, 192)


def test_grid_is_frozen_and_checks_indices():
    grid = WindowGrid(10, 256, 64)
    with pytest.raises(AttributeError):
        grid.shift = 3  # type: ignore[misc]
    with pytest.raises(IndexError):
        grid.input_span(grid.num_windows)
    with pytest.raises(ValueError):
        WindowGrid(0, 256, 64)


def test_grid_rejects_shift_that_leaves_frames_uncovered():
    # roi = 5 (odd), shift 2 < roi/2: with 9 frames the last window's centre ends at frame 8.
    with pytest.raises(ValueError, match="uncovered"):
        WindowGrid(9, 7, 1, shift=2)


def test_crop_frames_zero_fills_outside():
    spec = np.arange(1, 13, dtype=np.float32).reshape(1, 2, 6)
    np.testing.assert_array_equal(crop_frames(spec, -2, 3)[0, 0], [0, 0, 1, 2, 3])
    np.testing.assert_array_equal(crop_frames(spec, 4, 9)[0, 1], [11, 12, 0, 0, 0])
    np.testing.assert_array_equal(crop_frames(spec, -3, -1), np.zeros((1, 2, 2)))
    np.testing.assert_array_equal(crop_frames(spec, 7, 9), np.zeros((1, 2, 2)))
    np.testing.assert_array_equal(crop_frames(spec, 0, 6), spec)
    complex_spec = spec.astype(np.complex64) * 1j
    assert crop_frames(complex_spec, -1, 2).dtype == np.complex64
    with pytest.raises(ValueError):
        crop_frames(spec, 3, 2)
