"""Pooling: max and average, gradients against numerical differences and torch, ties, errors."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
from gradcheck_helpers import assert_leaves_arguments_alone, assert_matches_torch, check_layer_numerically

from dlscratch.layers.pooling import Pooling

# (pool_h, pool_w, stride, pad): tiled, overlapping (stride 1), gappy (stride 3), padded
SETTINGS = [
    (2, 2, 2, 0),
    (2, 2, 1, 0),
    (2, 2, 3, 1),
    (3, 3, 2, 1),
    (3, 2, 1, 1),
    (2, 3, 3, 0),
    (4, 4, 2, 2),
    (1, 1, 1, 0),
]


def fitting_input(rng: np.random.Generator, pool_h: int, pool_w: int, stride: int, pad: int) -> np.ndarray:
    """A (2, 3, H, W) input the windows fit exactly, of distinct values far apart.

    Values at least 0.1 apart keep every max unique and out of reach of the numerical
    gradient's h = 1e-4, so the max is differentiable where it is checked.
    """
    out_h, out_w = (int(v) for v in rng.integers(2, 4, size=2))  # 2+ outputs: H, W >= 1 despite pad
    H = (out_h - 1) * stride + pool_h - 2 * pad
    W = (out_w - 1) * stride + pool_w - 2 * pad
    return 0.1 * rng.permutation(2 * 3 * H * W).reshape(2, 3, H, W) - 0.05 * H * W


def torch_pool(torch, mode: str, pool_h: int, pool_w: int, stride: int, pad: int):
    F = torch.nn.functional
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    return lambda tx: pool(tx, (pool_h, pool_w), stride=stride, padding=pad)


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("setting", SETTINGS)
def test_backward_matches_numerical_gradient(setting, mode, rng):
    check_layer_numerically(Pooling(*setting, mode=mode), fitting_input(rng, *setting), rng=rng)


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("setting", SETTINGS)
def test_matches_torch(setting, mode, rng, torch):
    x = fitting_input(rng, *setting) + rng.standard_normal((1, 1, 1, 1))
    assert_matches_torch(Pooling(*setting, mode=mode), x, torch_pool(torch, mode, *setting), rng=rng)


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("setting", [(2, 2, 2, 0), (3, 3, 2, 1)])
def test_matches_torch_in_float32(setting, mode, rng, torch):
    x = rng.standard_normal((4, 3, 9, 9) if setting[0] == 3 else (4, 3, 8, 8)).astype(np.float32)
    layer = Pooling(*setting, mode=mode)
    assert_matches_torch(layer, x, torch_pool(torch, mode, *setting), rng=rng, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("setting", [(2, 2, 2, 0), (2, 2, 1, 0), (3, 3, 2, 1)])
def test_ties_send_the_gradient_to_one_position_like_torch(setting, rng, torch):
    # after a ReLU whole windows are 0: the gradient must go to one of them, not to all
    x = np.maximum(
        np.round(rng.standard_normal((2, 2, 7, 7)) if setting[0] == 3 else rng.standard_normal((2, 2, 6, 6))),
        0,
    )
    assert_matches_torch(Pooling(*setting), x, torch_pool(torch, "max", *setting), rng=rng)


def test_ties_go_to_the_first_position_in_the_window():
    layer = Pooling(2, 2)
    layer.forward(np.zeros((1, 1, 4, 4)))
    dx = layer.backward(np.ones((1, 1, 2, 2)))
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1
    np.testing.assert_array_equal(dx[0, 0], expected)


def test_max_padding_never_wins():
    # all inputs negative: a zero padding would be the max of every border window
    x = -1.0 - np.arange(16.0).reshape(1, 1, 4, 4)
    layer = Pooling(2, 2, stride=2, pad=1)
    out = layer.forward(x)
    np.testing.assert_array_equal(out[0, 0], [[-1, -2, -4], [-5, -6, -8], [-13, -14, -16]])
    dx = layer.backward(np.ones_like(out))
    assert dx.sum() == out.size  # every window's gradient lands on a real pixel


def test_avg_padding_counts_as_zeros_in_a_full_window():
    out = Pooling(2, 2, stride=2, pad=1, mode="avg").forward(np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(out[0, 0], [[0.25, 0.25], [0.25, 0.25]])


def test_book_example_values():
    x = np.array([[[[1.0, 2, 3, 0], [0, 1, 2, 4], [1, 0, 4, 2], [3, 2, 0, 1]]]])
    np.testing.assert_array_equal(Pooling(2, 2).forward(x)[0, 0], [[2, 4], [3, 4]])
    np.testing.assert_array_equal(Pooling(2, 2, mode="avg").forward(x)[0, 0], [[1, 2.25], [1.5, 1.75]])


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("setting", [(2, 2, 2, 0), (3, 3, 1, 1)])
def test_dtype_is_kept(setting, dtype, mode, rng):
    layer = Pooling(*setting, mode=mode)
    out = layer.forward(rng.standard_normal((2, 3, 6, 6)).astype(dtype))
    dx = layer.backward(np.ones_like(out))
    assert out.dtype == dtype and dx.dtype == dtype


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("setting", [(2, 2, 2, 0), (3, 3, 1, 1)])
def test_forward_and_backward_leave_their_arguments_alone(setting, mode, rng):
    assert_leaves_arguments_alone(Pooling(*setting, mode=mode), rng.standard_normal((2, 3, 6, 6)), rng)


def test_default_stride_is_two_and_config_holds_every_setting():
    layer = Pooling(2, 2)
    assert layer.config() == {"pool_h": 2, "pool_w": 2, "stride": 2, "pad": 0, "mode": "max"}
    assert Pooling(**layer.config()).config() == layer.config()
    assert layer.forward(np.zeros((1, 1, 28, 28))).shape == (1, 1, 14, 14)
    assert repr(Pooling(3, 3, 1, 1, "avg")) == "Pooling(pool_h=3, pool_w=3, stride=1, pad=1, mode='avg')"


def test_an_empty_batch_gives_an_empty_output():
    layer = Pooling(2, 2)
    assert layer.forward(np.zeros((0, 3, 4, 4))).shape == (0, 3, 2, 2)
    assert layer.backward(np.zeros((0, 3, 2, 2))).shape == (0, 3, 4, 4)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((3, 4, 4), r"Pooling expected input of shape \(N, C, H, W\), got an array of shape \(3, 4, 4\)"),
        (
            (1, 1, 1, 4),
            r"Pooling cannot slide a 2x2 window with stride 2 and pad 0 over input shape \(1, 1, 1, 4\): "
            "filter size 2 is larger than input size 1",
        ),
    ],
)
def test_wrong_input_shape_raises(shape, message):
    with pytest.raises(ValueError, match=message):
        Pooling(2, 2).forward(np.zeros(shape))


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize(("shape", "window", "stride"), [((2, 3, 5, 9), 2, 2), ((1, 2, 7, 6), 3, 2)])
def test_windows_that_do_not_tile_the_input_floor_the_size_as_the_book_and_torch(
    shape, window, stride, mode, rng, torch
):
    """2x2 stride 2 over width 9: 4 windows; the last column is never read and gets no gradient."""
    layer = Pooling(window, window, stride=stride, mode=mode)
    torch_pool = torch.nn.functional.max_pool2d if mode == "max" else torch.nn.functional.avg_pool2d
    assert_matches_torch(
        layer, rng.standard_normal(shape), lambda tx: torch_pool(tx, window, stride), rng=rng
    )
    out_w = (shape[3] - window) // stride + 1
    dx = layer.backward(np.ones((*shape[:2], (shape[2] - window) // stride + 1, out_w)))
    assert np.all(dx[..., (out_w - 1) * stride + window :] == 0)


def test_integer_input_raises():
    with pytest.raises(ValueError, match="Pooling expected floating-point input, got dtype int64"):
        Pooling(2, 2).forward(np.ones((1, 1, 2, 2), dtype=np.int64))


def test_wrong_dout_shape_raises():
    layer = Pooling(2, 2)
    layer.forward(np.zeros((1, 1, 4, 4)))
    with pytest.raises(
        ValueError, match=r"Pooling.backward expected dout of shape \(1, 1, 2, 2\), got \(1, 1, 4, 4\)"
    ):
        layer.backward(np.zeros((1, 1, 4, 4)))


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((2, 2), {"mode": "min"}, r"Pooling expected mode 'max' or 'avg', got 'min'"),
        ((2, 2), {"pad": 2}, r"Pooling expected pad at most half the window 2x2, got pad 2"),
        ((0, 2), {}, r"pool sizes and stride >= 1 and pad >= 0, got pool 0x2"),
        ((2, 2), {"stride": 0}, r"got pool 2x2, stride 0, pad 0"),
    ],
)
def test_bad_settings_raise(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Pooling(*args, **kwargs)


def test_the_tour_shows_the_code_that_runs():
    """docs/tour/ch7.md includes Pooling's own forward and backward."""
    root = Path(__file__).resolve().parents[1]
    assert '--8<-- "src/dlscratch/layers/pooling.py:pooling"' in (root / "docs/tour/ch7.md").read_text()
    source = (root / "src/dlscratch/layers/pooling.py").read_text()
    section = source.split("# --8<-- [start:pooling]")[1].split("# --8<-- [end:pooling]")[0]
    for method in (Pooling.forward, Pooling.backward):
        assert inspect.getsource(method) in section
    assert "im2col(" in section and "col2im(" in section
