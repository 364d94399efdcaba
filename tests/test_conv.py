"""im2col/col2im, conv_output_size and Convolution: layout, adjointness, gradients, torch, errors."""

from __future__ import annotations

import inspect
import itertools
from pathlib import Path

import numpy as np
import pytest
from gradcheck_helpers import assert_leaves_arguments_alone, assert_matches_torch, check_layer_numerically

from dlscratch.layers.conv import Convolution, col2im, conv_output_size, im2col

STRIDES_AND_PADS = list(itertools.product((1, 2, 3), (0, 1, 2)))


def fitting_size(rng: np.random.Generator, filter_size: int, stride: int, pad: int) -> int:
    """A random input size that the filter fits exactly (at least one output)."""
    out = int(rng.integers(1, 4))
    while (out - 1) * stride + filter_size - 2 * pad < 1:
        out += 1
    return (out - 1) * stride + filter_size - 2 * pad


def random_case(rng: np.random.Generator, stride: int, pad: int, dtype=np.float64):
    """A Convolution with random small sizes and an input it fits, for these stride and pad."""
    N, C, FN, FH, FW = (int(v) for v in rng.integers(1, 4, size=5))
    H, W = fitting_size(rng, FH, stride, pad), fitting_size(rng, FW, stride, pad)
    layer = Convolution(
        rng.standard_normal((FN, C, FH, FW)).astype(dtype),
        rng.standard_normal(FN).astype(dtype),
        stride=stride,
        pad=pad,
    )
    return layer, rng.standard_normal((N, C, H, W)).astype(dtype)


def naive_im2col(x: np.ndarray, fh: int, fw: int, stride: int, pad: int) -> np.ndarray:
    """The definition, one output position at a time (the reference the fast one must match)."""
    N, _, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (H + 2 * pad - fh) // stride + 1, (W + 2 * pad - fw) // stride + 1
    rows = [
        xp[n, :, y * stride : y * stride + fh, x_ * stride : x_ * stride + fw].ravel()
        for n in range(N)
        for y in range(oh)
        for x_ in range(ow)
    ]
    return np.array(rows)


# --- conv_output_size -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [((28, 5), 24), ((28, 5, 1, 2), 28), ((7, 3, 2, 1), 4), ((24, 2, 2), 12), ((5, 5), 1), ((1, 3, 1, 1), 1)],
)
def test_conv_output_size(args, expected):
    size = conv_output_size(*args)
    assert size == expected and type(size) is int


def test_conv_output_size_takes_numpy_integers():
    assert type(conv_output_size(np.int64(28), np.int32(5))) is int


@pytest.mark.parametrize(("args", "expected"), [((8, 3, 2, 0), 3), ((28, 5, 3, 0), 8), ((9, 2, 2, 0), 4)])
def test_conv_output_size_floors_as_the_book_and_torch(args, expected):
    """A last window that would run past the input is dropped, as torch and the book's layers do."""
    assert conv_output_size(*args) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((3, 5, 1, 0), r"filter size 5 is larger than input size 3 with pad 0"),
        ((4, 3, 0, 0), r"need stride >= 1, pad >= 0 and sizes >= 1, got stride 0"),
        ((4, 3, 1, -1), r"got stride 1, pad -1"),
        ((0, 1, 1, 1), r"filter size 1, input size 0"),
    ],
)
def test_conv_output_size_misfit_raises(args, message):
    with pytest.raises(ValueError, match=message):
        conv_output_size(*args)


# --- im2col / col2im --------------------------------------------------------------------


def test_im2col_tiny_example_by_hand():
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    # each row is one 2x2 window, read row by row; windows in output order
    expected = [[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]]
    np.testing.assert_array_equal(im2col(x, 2, 2), expected)


def test_im2col_with_padding_and_stride_by_hand():
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    # pad 1 makes a 4x4 image with x in the middle; stride 2 takes its four 2x2 corners
    expected = [[0, 0, 0, 1], [0, 0, 2, 0], [0, 3, 0, 0], [4, 0, 0, 0]]
    np.testing.assert_array_equal(im2col(x, 2, 2, stride=2, pad=1), expected)


def test_im2col_orders_channels_before_rows():
    x = np.stack([np.arange(4.0).reshape(2, 2), 10 + np.arange(4.0).reshape(2, 2)])[None]
    np.testing.assert_array_equal(im2col(x, 2, 2), [[0, 1, 2, 3, 10, 11, 12, 13]])


def test_col2im_adds_overlapping_windows():
    # every pixel gets one 1 per window that covers it
    counts = col2im(np.ones((4, 4)), (1, 1, 3, 3), 2, 2)
    np.testing.assert_array_equal(counts[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


@pytest.mark.parametrize(("stride", "pad"), STRIDES_AND_PADS)
def test_im2col_matches_the_definition_and_col2im_is_its_transpose(stride, pad, rng):
    fh, fw = (int(v) for v in rng.integers(1, 5, size=2))
    shape = (2, 3, fitting_size(rng, fh, stride, pad), fitting_size(rng, fw, stride, pad))
    x = rng.standard_normal(shape)
    col = im2col(x, fh, fw, stride, pad)
    np.testing.assert_array_equal(col, naive_im2col(x, fh, fw, stride, pad))
    c = rng.standard_normal(col.shape)
    # <im2col(x), c> == <x, col2im(c)>: col2im is the adjoint that backward needs
    np.testing.assert_allclose(np.vdot(col, c), np.vdot(x, col2im(c, shape, fh, fw, stride, pad)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_and_col2im_keep_the_dtype(dtype):
    x = np.ones((1, 2, 4, 4), dtype=dtype)
    col = im2col(x, 3, 3, pad=1)
    assert col.dtype == dtype and col.shape == (16, 18)
    assert col2im(col, x.shape, 3, 3, pad=1).dtype == dtype


def test_im2col_and_col2im_errors():
    with pytest.raises(
        ValueError, match=r"im2col expected input_data of shape \(N, C, H, W\), got shape \(3,"
    ):
        im2col(np.zeros((3, 4)), 2, 2)
    with pytest.raises(ValueError, match=r"im2col cannot slide a 6x6 window with stride 2 and pad 0"):
        im2col(np.zeros((1, 1, 5, 5)), 6, 6, stride=2)
    with pytest.raises(ValueError, match=r"col2im expected col of shape \(4, 4\) .* got \(4, 5\)"):
        col2im(np.zeros((4, 5)), (1, 1, 3, 3), 2, 2)


# --- Convolution ------------------------------------------------------------------------


def test_forward_and_backward_are_the_books_im2col_products(rng):
    layer, x = random_case(rng, 2, 1)
    FN, _, FH, FW = layer.W.shape
    out = layer.forward(x)
    N, _, OH, OW = out.shape
    col, W_col = im2col(x, FH, FW, 2, 1), layer.W.reshape(FN, -1).T
    # the book: out = col @ col_W + b, reshaped (N, OH, OW, FN) and transposed to (N, FN, OH, OW)
    np.testing.assert_allclose(out, (col @ W_col + layer.b).reshape(N, OH, OW, FN).transpose(0, 3, 1, 2))
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    dout_rows = dout.transpose(0, 2, 3, 1).reshape(-1, FN)
    np.testing.assert_allclose(layer.dW, (col.T @ dout_rows).T.reshape(layer.W.shape))
    np.testing.assert_allclose(dx, col2im(dout_rows @ W_col.T, x.shape, FH, FW, 2, 1))


@pytest.mark.parametrize(("stride", "pad"), STRIDES_AND_PADS)
def test_backward_matches_numerical_gradient(stride, pad, rng):
    layer, x = random_case(rng, stride, pad)
    check_layer_numerically(layer, x, rng=rng)


@pytest.mark.parametrize(("stride", "pad"), STRIDES_AND_PADS)
def test_matches_torch(stride, pad, rng, torch):
    layer, x = random_case(rng, stride, pad)
    conv = torch.nn.functional.conv2d
    assert_matches_torch(layer, x, lambda tx, W, b: conv(tx, W, b, stride=stride, padding=pad), rng=rng)


def test_matches_torch_in_float32_on_the_simple_conv_net_shape(rng, torch):
    layer = Convolution(
        0.1 * rng.standard_normal((30, 1, 5, 5)).astype(np.float32),
        rng.standard_normal(30).astype(np.float32),
    )
    x = rng.standard_normal((4, 1, 28, 28)).astype(np.float32)
    assert_matches_torch(layer, x, torch.nn.functional.conv2d, rng=rng, rtol=1e-4, atol=1e-4)


def test_matches_torch_in_float32_with_stride_and_padding(rng, torch):
    layer, x = random_case(rng, 2, 1, dtype=np.float32)
    conv = torch.nn.functional.conv2d
    assert_matches_torch(
        layer, x, lambda tx, W, b: conv(tx, W, b, stride=2, padding=1), rng=rng, rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype, rng):
    layer, x = random_case(rng, 1, 1, dtype=dtype)
    out = layer.forward(x)
    dx = layer.backward(np.ones_like(out))
    assert {a.dtype for a in (out, dx, layer.dW, layer.db)} == {np.dtype(dtype)}


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_input_of_another_float_dtype_is_computed_in_the_weights_dtype(dtype, stride, rng):
    """As the book's layers: float16 or float32 images into a float64 net give float64 results."""
    layer, x = random_case(rng, stride, 0)
    low = x.astype(dtype)
    out = layer.forward(low)
    assert out.dtype == np.float64
    assert layer.backward(np.ones_like(out)).dtype == np.float64
    np.testing.assert_array_equal(out, layer.forward(low.astype(np.float64)))


def test_gradients_written_in_place_and_book_aliases(rng):
    layer, x = random_case(rng, 1, 1)
    dW, db = layer.grads["W"], layer.grads["b"]
    dout = rng.standard_normal(layer.forward(x).shape)
    layer.backward(dout)
    assert layer.dW is dW and layer.db is db
    assert layer.W is layer.params["W"] and layer.b is layer.params["b"]
    np.testing.assert_allclose(db, dout.sum(axis=(0, 2, 3)))


def test_forward_and_backward_leave_their_arguments_alone(rng):
    assert_leaves_arguments_alone(*random_case(rng, 2, 1), rng)


def test_backward_params_computes_the_gradients_without_dx(rng):
    layer, x = random_case(rng, 1, 0)
    reference = Convolution(layer.W.copy(), layer.b.copy())
    dout = rng.standard_normal(layer.forward(x).shape)
    reference.forward(x)
    reference.backward(dout)
    layer.forward(x)
    assert layer.backward_params(dout) is None
    np.testing.assert_allclose(layer.dW, reference.dW)
    np.testing.assert_allclose(layer.db, reference.db)


def test_batch_size_may_change_between_calls(rng):
    layer = Convolution(rng.standard_normal((2, 3, 3, 3)), rng.standard_normal(2), pad=1)
    fresh = Convolution(layer.W.copy(), layer.b.copy(), pad=1)
    layer.forward(rng.standard_normal((5, 3, 4, 4)))
    x = rng.standard_normal((2, 3, 4, 4))
    np.testing.assert_allclose(layer.forward(x), fresh.forward(x))
    dout = rng.standard_normal((2, 2, 4, 4))
    np.testing.assert_allclose(layer.backward(dout), fresh.backward(dout))
    np.testing.assert_allclose(layer.dW, fresh.dW)


def test_an_empty_batch_gives_an_empty_output(rng):
    layer = Convolution(rng.standard_normal((2, 1, 3, 3)), np.zeros(2))
    assert layer.forward(np.zeros((0, 1, 5, 5))).shape == (0, 2, 3, 3)
    assert layer.backward(np.zeros((0, 2, 3, 3))).shape == (0, 1, 5, 5)
    np.testing.assert_array_equal(layer.dW, 0)


def test_config_and_repr():
    layer = Convolution(np.zeros((30, 1, 5, 5)), np.zeros(30), stride=2, pad=1)
    assert layer.config() == {"stride": 2, "pad": 1}
    assert repr(layer) == "Convolution(W=(30, 1, 5, 5), b=(30,), stride=2, pad=1)"


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((1, 28, 28), r"Convolution expected input of shape \(N, C, H, W\), got an array of shape \(1, 28,"),
        (
            (2, 3, 28, 28),
            r"Convolution expected 1 input channels \(W has shape \(30, 1, 5, 5\)\), got 3 "
            r"\(input shape \(2, 3, 28, 28\)\)",
        ),
        ((2, 1, 4, 28), r"Convolution cannot slide a 5x5 window .* filter size 5 is larger than input size"),
    ],
)
def test_wrong_input_shape_raises(shape, message):
    with pytest.raises(ValueError, match=message):
        Convolution(np.zeros((30, 1, 5, 5)), np.zeros(30)).forward(np.zeros(shape))


def test_sizes_that_do_not_fit_the_stride_leave_the_last_rows_out(rng):
    """Height 6, width 7, 3x3 windows with stride 2: 2 x 3 outputs; row 5 is never read."""
    W, b = rng.standard_normal((2, 1, 3, 3)), rng.standard_normal(2)
    layer = Convolution(W, b, stride=2)
    x = rng.standard_normal((1, 1, 6, 7))
    out = layer.forward(x)
    assert out.shape == (1, 2, 2, 3)
    np.testing.assert_allclose(out, Convolution(W, b, stride=2).forward(x[:, :, :5, :7]))
    dx = layer.backward(rng.standard_normal(out.shape))
    assert dx.shape == x.shape and np.all(dx[:, :, 5] == 0)
    check_layer_numerically(Convolution(W, b, stride=2), x, rng=rng)


def test_integer_input_raises():
    with pytest.raises(ValueError, match="Convolution expected floating-point input, got dtype int64"):
        Convolution(np.zeros((1, 1, 2, 2)), np.zeros(1)).forward(np.ones((1, 1, 3, 3), dtype=np.int64))


def test_wrong_dout_shape_raises(rng):
    layer, x = random_case(rng, 1, 0)
    out = layer.forward(x)
    with pytest.raises(ValueError, match=r"Convolution.backward expected dout of shape"):
        layer.backward(np.ones(out.shape[:-1]))


@pytest.mark.parametrize(
    ("W", "b", "kwargs", "message"),
    [
        (np.zeros((2, 1, 3)), np.zeros(2), {}, r"W of shape \(FN, C, FH, FW\) and b of shape \(FN,\), got"),
        (np.zeros((2, 1, 3, 3)), np.zeros(3), {}, r"got \(2, 1, 3, 3\) and \(3,\)"),
        (np.zeros((2, 1, 3, 3), dtype=int), np.zeros(2, dtype=int), {}, "floating-point array for W"),
        (np.zeros((2, 1, 3, 3)), np.zeros(2), {"stride": 0}, "stride >= 1 and pad >= 0, got stride=0"),
        (np.zeros((2, 1, 3, 3)), np.zeros(2), {"pad": -1}, "got stride=1, pad=-1"),
    ],
)
def test_bad_parameters_raise(W, b, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Convolution(W, b, **kwargs)


def test_the_tour_shows_the_code_that_runs():
    """docs/tour/ch7.md includes Convolution's own source, so the page and the layer cannot drift."""
    root = Path(__file__).resolve().parents[1]
    assert '--8<-- "src/dlscratch/layers/conv.py:convolution"' in (root / "docs/tour/ch7.md").read_text()
    source = (root / "src/dlscratch/layers/conv.py").read_text()
    section = source.split("# --8<-- [start:convolution]")[1].split("# --8<-- [end:convolution]")[0]
    for method in (Convolution.forward, Convolution.backward, Convolution.backward_params):
        assert inspect.getsource(method) in section
    assert "im2col(" in section and "col2im(" in section
