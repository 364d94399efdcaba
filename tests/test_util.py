"""dlscratch.util: the book's common/util helpers (smooth_curve, shuffle_dataset, im2col...)."""

from __future__ import annotations

import numpy as np
import pytest

from dlscratch import util
from dlscratch.layers import conv as conv_module


def test_the_convolution_helpers_are_dlscratchs_own():
    assert util.im2col is conv_module.im2col and util.col2im is conv_module.col2im
    assert util.conv_output_size(28, 5) == 24


def test_smooth_curve_keeps_the_length_and_a_constant():
    np.testing.assert_allclose(util.smooth_curve(np.full(30, 2.5)), 2.5)
    assert util.smooth_curve(list(range(40))).shape == (40,)


def test_smooth_curve_is_a_centred_kaiser_weighted_average(rng):
    x = rng.standard_normal(25)
    weights = np.kaiser(11, 2)
    weights /= weights.sum()
    smoothed = util.smooth_curve(x)
    # inside the curve each value averages the 11 values centred on it
    for i in (5, 12, 19):
        assert smoothed[i] == pytest.approx(np.dot(weights, x[i - 5 : i + 6]), rel=1e-12)
    # at the start the window reaches past x[0] into the curve mirrored about x[0]
    mirrored = np.concatenate([x[5:0:-1], x[:6]])
    assert smoothed[0] == pytest.approx(np.dot(weights, mirrored), rel=1e-12)
    # at the end the mirror repeats the last value: x[-1] stands next to itself
    mirrored = np.concatenate([x[-6:], x[:-6:-1]])
    assert smoothed[-1] == pytest.approx(np.dot(weights, mirrored), rel=1e-12)


def test_smooth_curve_refuses_curves_shorter_than_the_window():
    with pytest.raises(ValueError, match=r"at least 11 values, got shape \(10,\)"):
        util.smooth_curve(np.ones(10))


@pytest.mark.parametrize("shape", [(6, 4), (6, 1, 3, 3)])
def test_shuffle_dataset_moves_samples_and_labels_together(shape, rng):
    x = rng.standard_normal(shape)
    t = np.arange(6)
    np.random.seed(3)
    shuffled_x, shuffled_t = util.shuffle_dataset(x, t)
    np.random.seed(3)  # the book's np.random.permutation, so np.random.seed repeats it
    order = np.random.permutation(6)
    np.testing.assert_array_equal(shuffled_t, order)
    np.testing.assert_array_equal(shuffled_x, x[order])
    again_x, _ = util.shuffle_dataset(x, t, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(again_x, x[np.random.default_rng(1).permutation(6)])


def test_shuffle_dataset_refuses_unequal_lengths():
    with pytest.raises(ValueError, match="shuffle_dataset got 3 samples but 2 labels"):
        util.shuffle_dataset(np.ones((3, 2)), np.ones(2))
