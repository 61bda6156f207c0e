"""model.masks.MaskAssembler against vocal-remover's whole-track procedure, computed here independently: every
window's centre laid side by side (the TTA pass's shifted left by half a centre and cropped), averaged,
UVR's aggressiveness, then ``merge_artifacts`` over the whole mask."""

import numpy as np
import pytest

from stemforge.model.masks import Aggression, MaskAssembler, mask_grids
from stemforge.model.postprocess import adjust_aggression, merge_artifacts

FRAMES, CROPSIZE, OFFSET, BINS = 300, 64, 16, 6  # a centre (roi) of 32 frames: ten windows, seams everywhere
HIGH = range(60, 230)  # frames where every value is high, so merge_artifacts has a long run to merge


def _centres(grid, pass_index: int) -> dict[int, np.ndarray]:
    """A random centre mask [2, BINS, roi] for every window, high wherever its frames fall in HIGH."""
    rng = np.random.default_rng(100 + pass_index)
    centres = {}
    for i in range(grid.num_windows):
        start, stop = grid.output_span(i)
        high = np.isin(np.arange(start, stop), HIGH)
        values = rng.uniform(0.0, 1.0, (2, BINS, grid.roi)).astype(np.float32)
        centres[i] = np.where(high, 0.3 + 0.7 * values, values).astype(np.float32)
    return centres


def _whole(grid, centres: dict[int, np.ndarray]) -> np.ndarray:
    """The grid's mask over the whole track: centres side by side from frame -shift, cropped to the track."""
    side_by_side = np.concatenate([centres[i] for i in range(grid.num_windows)], axis=-1)
    return side_by_side[..., grid.shift : grid.shift + FRAMES]


@pytest.mark.parametrize("tta", [False, True])
@pytest.mark.parametrize("aggression", [None, Aggression(10, 3, flip=True)])
@pytest.mark.parametrize("threshold", [None, 0.05])
def test_any_frame_range_equals_the_whole_track_procedure(tta, aggression, threshold):
    passes = mask_grids(FRAMES, CROPSIZE, OFFSET, tta)
    centres = [_centres(grid, p) for p, grid in enumerate(passes)]
    asked: set[tuple[int, int]] = set()

    def load(p: int, i: int) -> np.ndarray:
        asked.add((p, i))
        return centres[p][i]

    whole = _whole(passes[0], centres[0])
    if tta:
        whole = (whole + _whole(passes[1], centres[1])) * 0.5
    if aggression is not None:
        whole = adjust_aggression(whole, aggression.value, aggression.split_bin, aggression.flip)
    if threshold is not None:
        merged = merge_artifacts(whole, thres=threshold)
        assert not np.array_equal(merged, whole)  # the long high run was merged: the check below sees it
        whole = merged

    assembler = MaskAssembler(FRAMES, passes, load, aggression, threshold)
    np.testing.assert_array_equal(assembler.get(0, FRAMES), whole)
    for start, stop in [(0, 1), (31, 33), (45, 170), (150, 151), (299, 300), (200, 300)]:
        np.testing.assert_array_equal(assembler.get(start, stop), whole[..., start:stop], err_msg=f"{start}:{stop}")
    past = assembler.get(280, 330)  # frames after the track's end hold its last frame
    np.testing.assert_array_equal(past[..., :20], whole[..., 280:])
    np.testing.assert_array_equal(past[..., 20:], np.repeat(whole[..., -1:], 30, axis=-1))
    assert asked == {(p, i) for p, grid in enumerate(passes) for i in grid.contributing()}


def test_more_than_two_grids_are_refused():
    grid = mask_grids(FRAMES, CROPSIZE, OFFSET, False)[0]
    with pytest.raises(ValueError, match="expected one grid, or two with TTA, got 3"):
        MaskAssembler(FRAMES, [grid] * 3, lambda p, i: np.zeros((2, BINS, grid.roi), np.float32))
