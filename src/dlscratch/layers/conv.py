"""Convolution (chapter 7): im2col, its adjoint col2im, and the Convolution layer.

im2col unrolls every filter-sized window of an image batch into a row, so a convolution
becomes one matrix product; col2im is its transpose, adding each row back onto the
pixels it came from (overlapping windows add up), which is exactly what backward needs.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from dlscratch.layers.base import Layer, check_ndim, check_same_shape, in_param_dtype, param_alias
from dlscratch.layers.conv_shifted import shifted_backward, shifted_forward, weights_with_bias


def conv_output_size(input_size: int, filter_size: int, stride: int = 1, pad: int = 0) -> int:
    """Output length of a filter sliding along one axis: floor((input + 2 pad - filter) / stride) + 1.

    As in the book's layers and torch, a last window that would run past the padded input
    is dropped (width 9, window 2, stride 2: 4 windows; the ninth column is never read).
    Raises ValueError for sizes below 1, a negative pad, or an empty output.
    """
    input_size, filter_size = operator.index(input_size), operator.index(filter_size)
    stride, pad = operator.index(stride), operator.index(pad)
    if stride < 1 or pad < 0 or filter_size < 1 or input_size < 1:
        raise ValueError(
            "need stride >= 1, pad >= 0 and sizes >= 1, got stride "
            f"{stride}, pad {pad}, filter size {filter_size}, input size {input_size}"
        )
    span = input_size + 2 * pad - filter_size
    if span < 0:
        raise ValueError(
            f"filter size {filter_size} is larger than input size {input_size} with pad {pad} "
            f"({input_size} + 2*{pad} = {input_size + 2 * pad}): the output would be empty"
        )
    return span // stride + 1


def output_hw(
    name: str, x_shape: tuple[int, ...], filter_h: int, filter_w: int, stride: int, pad: int
) -> tuple[int, int]:
    """(OH, OW) of a window sliding over an (N, C, H, W) input; errors start with name."""
    try:
        return (
            conv_output_size(x_shape[2], filter_h, stride, pad),
            conv_output_size(x_shape[3], filter_w, stride, pad),
        )
    except ValueError as error:
        raise ValueError(
            f"{name} cannot slide a {filter_h}x{filter_w} window with stride {stride} "
            f"and pad {pad} over input shape {tuple(x_shape)}: {error}"
        ) from None


def pad_images(x: np.ndarray, pad: int, value: float = 0.0) -> np.ndarray:
    """(N, C, H, W) -> (N, C, H + 2 pad, W + 2 pad), borders filled with value; x itself if pad is 0."""
    if pad == 0:
        return x
    N, C, H, W = x.shape
    padded = np.full((N, C, H + 2 * pad, W + 2 * pad), value, dtype=x.dtype)
    padded[:, :, pad : pad + H, pad : pad + W] = x
    return padded


def window(images: np.ndarray, i: int, j: int, stride: int, out_h: int, out_w: int) -> np.ndarray:
    """The view (N, C, OH, OW) of the pixels at offset (i, j) inside every window.

    images[:, :, i + stride * y, j + stride * x] for y < OH, x < OW: element (y, x) is the
    (i, j) pixel of output position (y, x)'s window. Looping over the FH * FW offsets
    instead of the OH * OW positions keeps each step one large vectorised copy.
    """
    return images[:, :, i : i + stride * (out_h - 1) + 1 : stride, j : j + stride * (out_w - 1) + 1 : stride]


def _fill_columns(columns: np.ndarray, images: np.ndarray, stride: int) -> None:
    """columns[n, c, i, j, y, x] = images[n, c, i + stride y, j + stride x] (images padded)."""
    _, _, filter_h, filter_w, out_h, out_w = columns.shape
    for i in range(filter_h):
        for j in range(filter_w):
            columns[:, :, i, j] = window(images, i, j, stride, out_h, out_w)


def _add_columns(images: np.ndarray, columns: np.ndarray, stride: int) -> None:
    """The adjoint of _fill_columns: images[n, c, i + stride y, j + stride x] += columns[n, c, i, j, y, x]."""
    _, _, filter_h, filter_w, out_h, out_w = columns.shape
    for i in range(filter_h):
        for j in range(filter_w):
            window(images, i, j, stride, out_h, out_w)[...] += columns[:, :, i, j]


def im2col(input_data: np.ndarray, filter_h: int, filter_w: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """Unroll every window into a row, as the book's im2col.

    input_data: (N, C, H, W). Returns (N * OH * OW, C * FH * FW): row n * OH * OW + y * OW + x
    holds the window of output position (y, x) of image n, ordered channel, row, column.
    """
    x = np.asarray(input_data)
    if x.ndim != 4:
        raise ValueError(f"im2col expected input_data of shape (N, C, H, W), got shape {x.shape}")
    N, C = x.shape[:2]
    out_h, out_w = output_hw("im2col", x.shape, filter_h, filter_w, stride, pad)
    col = np.empty((N, out_h, out_w, C, filter_h, filter_w), dtype=x.dtype)
    _fill_columns(col.transpose(0, 3, 4, 5, 1, 2), pad_images(x, pad), stride)
    return col.reshape(N * out_h * out_w, C * filter_h * filter_w)


def col2im(
    col: np.ndarray,
    input_shape: tuple[int, int, int, int],
    filter_h: int,
    filter_w: int,
    stride: int = 1,
    pad: int = 0,
) -> np.ndarray:
    """The transpose of im2col: add every row back onto the pixels of its window.

    col: (N * OH * OW, C * FH * FW) as im2col returns it; input_shape: (N, C, H, W).
    Returns (N, C, H, W); a pixel shared by overlapping windows gets the sum of their
    entries, so <im2col(x), c> == <x, col2im(c)> for all x, c.
    """
    col = np.asarray(col)
    N, C, H, W = input_shape
    out_h, out_w = output_hw("col2im", input_shape, filter_h, filter_w, stride, pad)
    expected = (N * out_h * out_w, C * filter_h * filter_w)
    if col.shape != expected:
        raise ValueError(
            f"col2im expected col of shape {expected} for input shape {tuple(input_shape)}, got {col.shape}"
        )
    images = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=col.dtype)
    columns = col.reshape(N, out_h, out_w, C, filter_h, filter_w).transpose(0, 3, 4, 5, 1, 2)
    _add_columns(images, columns, stride)
    return images[:, :, pad : pad + H, pad : pad + W]


class Convolution(Layer):
    """out[n, f] = sum over c of x[n, c] cross-correlated with W[f, c], plus b[f].

    x: (N, C, H, W), converted to W's dtype if it differs; W: (FN, C, FH, FW); b: (FN,).
    Returns (N, FN, OH, OW) with OH = floor((H + 2 pad - FH) / stride) + 1 (likewise OW).
    With col = im2col(x) per image as a (C FH FW, OH OW) matrix and Wm = W as (FN, C FH FW):
        out = Wm @ col + b,   dW = sum_n dout @ col.T,   db = sum of dout over n, y, x,
        dx = col2im(Wm.T @ dout).
    backward_params(dout) computes dW and db only (a network's first layer needs no dx).
    With stride 1 the same sums come from shifted slices of the padded
    image instead of a column matrix (layers/conv_shifted.py explains how); other strides
    build the columns as written above.
    """

    def __init__(self, W: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0) -> None:
        super().__init__()
        W, b = np.asarray(W), np.asarray(b)
        if W.ndim != 4 or b.shape != W.shape[:1]:
            raise ValueError(
                "Convolution expected W of shape (FN, C, FH, FW) and b of shape (FN,), "
                f"got {W.shape} and {b.shape}"
            )
        self._set_params(W=W, b=b)
        self.stride, self.pad = operator.index(stride), operator.index(pad)
        if self.stride < 1 or self.pad < 0:
            raise ValueError(f"Convolution expected stride >= 1 and pad >= 0, got stride={stride}, pad={pad}")
        self._x_shape: tuple[int, ...] = ()
        self._out_shape: tuple[int, ...] = ()
        self._col: np.ndarray | None = None  # stride > 1: (N, C FH FW + 1, OH OW), reused
        self._x: np.ndarray | None = None  # the input, kept with stride 1 instead of the columns

    # the book's attribute names, kept for learners
    W = param_alias("W")
    b = param_alias("b")
    dW = property(lambda self: self.grads["W"])
    db = property(lambda self: self.grads["b"])

    def config(self) -> dict[str, Any]:
        return {"stride": self.stride, "pad": self.pad}

    def check_input(self, x: np.ndarray) -> tuple[np.ndarray, int, int]:
        """x as an (N, C, H, W) array of W's dtype that fits W, stride and pad; returns (x, OH, OW)."""
        x = in_param_dtype(self, x)
        check_ndim(self, x, (4,), "input of shape (N, C, H, W)")
        _, C, FH, FW = self.W.shape
        if x.shape[1] != C:
            raise ValueError(
                f"Convolution expected {C} input channels (W has shape {self.W.shape}), "
                f"got {x.shape[1]} (input shape {x.shape})"
            )
        out_h, out_w = output_hw("Convolution", x.shape, FH, FW, self.stride, self.pad)
        return x, out_h, out_w

    def forward(self, x: np.ndarray) -> np.ndarray:
        x, out_h, out_w = self.check_input(x)
        FN, C, FH, FW = self.W.shape
        N, k = len(x), C * FH * FW
        self._x_shape, self._out_shape = x.shape, (N, FN, out_h, out_w)
        if self.stride == 1:  # the same sums without im2col's strided copies (conv_shifted.py)
            self._x = x
            out = np.empty(self._out_shape, dtype=x.dtype)

            def emit(images: slice, output: np.ndarray) -> None:
                out[images].transpose(1, 0, 2, 3)[...] = output  # output: (FN, n, OH, OW)

            shifted_forward(x, self.W, self.b, self.pad, emit)
            return out
        col = self._columns_buffer(N, k, out_h * out_w, x.dtype)
        _fill_columns(col[:, :k].reshape(N, C, FH, FW, out_h, out_w), pad_images(x, self.pad), self.stride)
        weights = weights_with_bias(self.W, self.b, x.dtype)
        # one (FN, k+1) @ (k+1, OH OW) product per image, written straight in (N, FN, OH OW) order
        return np.matmul(weights, col).reshape(N, FN, out_h, out_w)

    def _columns_buffer(self, N: int, k: int, positions: int, dtype: np.dtype) -> np.ndarray:
        """The (N, k + 1, positions) im2col buffer, last row all ones; kept while shapes repeat."""
        col = self._col
        if col is None or col.shape != (N, k + 1, positions) or col.dtype != dtype:
            col = np.empty((N, k + 1, positions), dtype=dtype)
            col[:, k] = 1
            self._col = col
        return col

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dx (N, C, H, W); dW and db are kept in grads."""
        return self._backward(dout, with_dx=True)

    def backward_params(self, dout: np.ndarray) -> None:
        """backward without dx: only dW and db (a network's first layer needs no dx)."""
        self._backward(dout, with_dx=False)

    def _backward(self, dout: np.ndarray, with_dx: bool) -> np.ndarray | None:
        check_same_shape(self, dout, self._out_shape)
        if self.stride == 1:

            def spread(images: slice, dgrid: np.ndarray) -> None:
                dgrid[...] = dout[images].transpose(1, 0, 2, 3)  # dgrid: (FN, n, OH, OW)

            dW, db, dx = shifted_backward(self._x, self.W, self.pad, spread, with_dx)
            self.grads["W"][...] = dW
            self.grads["b"][...] = db
            return dx
        N, C, H, W = self._x_shape
        FN, _, FH, FW = self.W.shape
        col, k, pad = self._col, C * FH * FW, self.pad
        dout = dout.reshape(N, FN, col.shape[2])
        # [col; ones] @ dout.T = [dW | db].T per image; their sum over the batch is the
        # gradient (this orientation of the product is the faster one for OpenBLAS)
        grads = np.matmul(col, dout.transpose(0, 2, 1)).sum(axis=0)
        self.grads["W"][...] = grads[:k].T.reshape(self.W.shape)
        self.grads["b"][...] = grads[k]
        if not with_dx:
            return None
        # dx = col2im(Wm.T @ dout), one filter offset at a time: the pixels at offset (i, j)
        # of every window receive W[:, :, i, j].T @ dout. Same sums as the book's, but the
        # (N, C FH FW, OH OW) dcol never exists, so each piece is added while still in cache.
        W_by_offset = np.ascontiguousarray(self.W.transpose(2, 3, 1, 0), dtype=col.dtype)  # (FH, FW, C, FN)
        dx = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=col.dtype)
        out_h, out_w = self._out_shape[2:]
        for i in range(FH):
            for j in range(FW):
                piece = np.matmul(W_by_offset[i, j], dout).reshape(N, C, out_h, out_w)
                window(dx, i, j, self.stride, out_h, out_w)[...] += piece
        return dx[:, :, pad : pad + H, pad : pad + W]
