"""The stride-1 fast path of Convolution: the book's im2col products, chunk by chunk and part by part."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck_helpers import assert_matches_torch

from dlscratch.layers import conv_shifted
from dlscratch.layers.conv import Convolution, im2col
from dlscratch.layers.conv_shifted import ShiftedGeometry, shifted_backward, shifted_forward


def shifted(x, W, b, pad, dout, needs_input_grad=True):
    """out, dW, db, dx from shifted_forward and shifted_backward, gathered chunk by chunk."""
    geo = ShiftedGeometry(x.shape, W.shape, pad)
    out = np.full((len(x), W.shape[0], geo.OH, geo.OW), np.nan)

    def emit(images, output):  # output (FN, n, OH, OW), filter first
        out[images] = output.transpose(1, 0, 2, 3)

    def spread(images, dgrid):
        dgrid[...] = dout[images].transpose(1, 0, 2, 3)

    shifted_forward(x, W, b, pad, emit)
    return (out, *shifted_backward(x, W, pad, spread, needs_input_grad))


def books_products(x, W, b, pad, dout):
    """out, dW, db, dx of a stride-1 convolution as the book computes them (im2col, col2im)."""
    from dlscratch.layers.conv import col2im

    FN, _, FH, FW = W.shape
    N, _, H, Wd = x.shape
    OH, OW = H + 2 * pad - FH + 1, Wd + 2 * pad - FW + 1
    col, W_col = im2col(x, FH, FW, 1, pad), W.reshape(FN, -1).T
    out = (col @ W_col + b).reshape(N, OH, OW, FN).transpose(0, 3, 1, 2)
    dout_rows = dout.transpose(0, 2, 3, 1).reshape(-1, FN)
    dW = (col.T @ dout_rows).T.reshape(W.shape)
    dx = col2im(dout_rows @ W_col.T, x.shape, FH, FW, 1, pad)
    return out, dW, dout.sum(axis=(0, 2, 3)), dx


@pytest.fixture(params=["one chunk, one part", "an image per chunk, three parts"])
def splitting(request, monkeypatch):
    """Run each test whole, and again cut into the smallest chunks and three thread parts."""
    if request.param != "one chunk, one part":
        monkeypatch.setattr(conv_shifted, "_CACHE_BYTES", 1)
        monkeypatch.setattr(conv_shifted, "_MIN_PART", 1)
        monkeypatch.setattr(conv_shifted, "split_count", lambda: 3)
    else:
        monkeypatch.setattr(conv_shifted, "_CACHE_BYTES", 1 << 40)
        monkeypatch.setattr(conv_shifted, "split_count", lambda: 1)
    return request.param


@pytest.mark.parametrize("filter_hw", [(1, 1), (3, 3), (2, 5), (5, 5)])
@pytest.mark.parametrize("pad", [0, 1, 2])
def test_forward_and_gradients_are_the_books_im2col_products(filter_hw, pad, splitting, rng):
    FH, FW = filter_hw
    N, C, FN, H, Wd = 7, 3, 4, 6, 9
    x = rng.standard_normal((N, C, H, Wd))
    W, b = rng.standard_normal((FN, C, FH, FW)), rng.standard_normal(FN)
    geo = ShiftedGeometry(x.shape, W.shape, pad)
    dout = rng.standard_normal((N, FN, geo.OH, geo.OW))
    out, dW, db, dx = shifted(x, W, b, pad, dout)
    expected = books_products(x, W, b, pad, dout)
    for name, ours, books in zip(("out", "dW", "db", "dx"), (out, dW, db, dx), expected, strict=True):
        np.testing.assert_allclose(ours, books, rtol=1e-10, atol=1e-10, err_msg=name)


def test_without_the_input_gradient_the_weight_gradients_are_the_same(splitting, rng):
    x, W, b = rng.standard_normal((5, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    dout = rng.standard_normal((5, 3, 5, 5))
    with_dx = shifted(x, W, b, 1, dout, needs_input_grad=True)
    without = shifted(x, W, b, 1, dout, needs_input_grad=False)
    assert without[3] is None
    np.testing.assert_allclose(without[1], with_dx[1])
    np.testing.assert_allclose(without[2], with_dx[2])


def test_the_extra_grid_positions_never_leak_into_the_output(rng):
    # a filter as wide as the padded image leaves one valid column per row: every other
    # grid position wraps into the next row and must be dropped
    x, W, b = rng.standard_normal((2, 1, 4, 3)), rng.standard_normal((1, 1, 2, 5)), np.zeros(1)
    dout = rng.standard_normal((2, 1, 5, 1))
    for ours, books in zip(shifted(x, W, b, 1, dout), books_products(x, W, b, 1, dout), strict=True):
        np.testing.assert_allclose(ours, books, atol=1e-12)


def test_geometry_of_deep_conv_nets_padded_layer():
    geo = ShiftedGeometry((100, 16, 28, 28), (16, 16, 3, 3), pad=1)
    assert (geo.Hp, geo.Wp, geo.OH, geo.OW) == (30, 30, 28, 28)
    assert geo.G == 28 * 30 and geo.K == 16 * 9
    assert geo.offsets == [0, 1, 2, 30, 31, 32, 60, 61, 62]
    assert geo.flat == 30 * 30 + 2


@pytest.mark.parametrize(("FN", "C", "size", "pad"), [(16, 16, 28, 1), (32, 32, 14, 2), (64, 64, 8, 1)])
def test_the_layer_matches_torch_in_float32_on_deep_conv_net_shapes(FN, C, size, pad, rng, torch):
    layer = Convolution(
        (rng.standard_normal((FN, C, 3, 3)) / np.sqrt(9 * C)).astype(np.float32),
        rng.standard_normal(FN).astype(np.float32),
        pad=pad,
    )
    x = rng.standard_normal((20, C, size, size)).astype(np.float32)
    conv = torch.nn.functional.conv2d
    assert_matches_torch(
        layer, x, lambda tx, W, b: conv(tx, W, b, padding=pad), rng=rng, rtol=1e-4, atol=5e-3
    )
