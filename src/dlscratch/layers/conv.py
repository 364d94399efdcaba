"""Convolution (chapter 7): im2col, its adjoint col2im, and the Convolution layer.

im2col unrolls every filter-sized window of an image batch into a row, so a convolution
becomes one matrix product; col2im is its transpose, adding each row back onto the
pixels it came from (overlapping windows add up), which is exactly what backward needs.
This is the readable tier, computed as the book computes it; the networks train on the
fast kernels of dlscratch.kernels, which are tested against it.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from dlscratch.layers.base import Layer, check_ndim, check_same_shape, in_param_dtype, param_alias


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

    x: (N, C, H, W), converted to W's dtype if it differs. Returns (N, FN, OH, OW) with
    OH = floor((H + 2 pad - FH) / stride) + 1 (likewise OW).
    As the book computes it: with col = im2col(x), one row per output position, and
    col_W = W as (C FH FW, FN) columns,
        out = col @ col_W + b,   dW = col.T @ dout,   db = sum of dout,   dx = col2im(dout @ col_W.T),
    dout taken as one row per output position. backward_params(dout) computes dW and db
    only (a network's first layer needs no dx).

    Parameters
    ----------
    W : ndarray, shape (FN, C, FH, FW)
        The filters, floating point; used (and updated by optimizers) in place.
    b : ndarray, shape (FN,)
        The biases, one per filter.
    stride : int, default 1
        The step between two windows, >= 1.
    pad : int, default 0
        The zeros added on every side of each image, >= 0.

    Raises
    ------
    ValueError
        For W or b of another shape or not floating point, a stride < 1 or a pad < 0.
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
        # kept by forward for backward, as in the book
        self.x: np.ndarray | None = None
        self.col: np.ndarray | None = None
        self.col_W: np.ndarray | None = None
        self._out_shape: tuple[int, ...] = ()

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

    # --8<-- [start:convolution]
    def forward(self, x: np.ndarray) -> np.ndarray:
        x, out_h, out_w = self.check_input(x)
        FN, _, FH, FW = self.W.shape
        N = len(x)
        col = im2col(x, FH, FW, self.stride, self.pad)  # (N OH OW, C FH FW)
        col_W = self.W.reshape(FN, -1).T  # (C FH FW, FN)
        out = col @ col_W + self.b  # (N OH OW, FN): every output position in one product
        out = out.reshape(N, out_h, out_w, FN).transpose(0, 3, 1, 2)
        self.x, self.col, self.col_W = x, col, col_W
        self._out_shape = out.shape
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dx (N, C, H, W); dW and db are kept in grads."""
        dout = self._params_backward(dout)
        dcol = dout @ self.col_W.T  # (N OH OW, C FH FW)
        return col2im(dcol, self.x.shape, *self.W.shape[2:], self.stride, self.pad)

    def backward_params(self, dout: np.ndarray) -> None:
        """backward without dx: only dW and db (a network's first layer needs no dx)."""
        self._params_backward(dout)

    def _params_backward(self, dout: np.ndarray) -> np.ndarray:
        """dW and db into grads; returns dout as one row per output position, (N OH OW, FN)."""
        check_same_shape(self, dout, self._out_shape)
        FN = len(self.W)
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, FN)
        self.grads["W"][...] = (self.col.T @ dout).T.reshape(self.W.shape)
        self.grads["b"][...] = dout.sum(axis=0)
        return dout

    # --8<-- [end:convolution]
