"""Pooling (chapter 7): the maximum or the mean of each window, channel by channel.

Computed as the book does, through im2col: every window becomes a row, the row's maximum
(or mean) is the output, and backward puts each window's gradient back with col2im.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from dlscratch.layers.base import Layer, check_float, check_ndim, check_same_shape
from dlscratch.layers.conv import col2im, im2col, output_hw, pad_images

_MODES = ("max", "avg")


class Pooling(Layer):
    """out[n, c, y, x] = max (or mean) of x[n, c] over the pool_h x pool_w window at (y, x).

    x: (N, C, H, W). Returns (N, C, OH, OW), OH = floor((H + 2 pad - pool_h) / stride) + 1
    (likewise OW): as in the book and torch, rows and columns that no whole window reaches
    are left out (and get no gradient).

    Parameters
    ----------
    pool_h, pool_w : int
        The window's height and width, >= 1.
    stride : int, default 2
        The step between two windows, >= 1. 2, as in the book's code, so Pooling(2, 2)
        halves height and width.
    pad : int, default 0
        The border added on every side of each image, >= 0 and at most half the window
        (as in torch), so every window sees some input.
    mode : str, default 'max'
        'max': the gradient of a window goes to its largest input; on ties to the first
        one in row-major order, and padding is -inf so it never wins (as torch's
        max_pool2d). 'avg': each input gets dout / (pool_h pool_w); padding counts as
        zeros in the mean (torch's avg_pool2d with count_include_pad=True).

    Raises
    ------
    ValueError
        For a pool size or stride < 1, a pad < 0 or over half the window, or another mode.
    """

    def __init__(self, pool_h: int, pool_w: int, stride: int = 2, pad: int = 0, mode: str = "max") -> None:
        super().__init__()
        self.pool_h, self.pool_w = operator.index(pool_h), operator.index(pool_w)
        self.stride, self.pad = operator.index(stride), operator.index(pad)
        if min(self.pool_h, self.pool_w, self.stride) < 1 or self.pad < 0:
            raise ValueError(
                f"Pooling expected pool sizes and stride >= 1 and pad >= 0, got pool {pool_h}x{pool_w}, "
                f"stride {stride}, pad {pad}"
            )
        if 2 * self.pad > min(self.pool_h, self.pool_w):
            raise ValueError(
                f"Pooling expected pad at most half the window {pool_h}x{pool_w}, got pad {pad}: "
                "windows made only of padding would have no input"
            )
        if mode not in _MODES:
            raise ValueError(f"Pooling expected mode 'max' or 'avg', got {mode!r}")
        self.mode = mode
        self._x_shape: tuple[int, ...] = ()
        self._out_shape: tuple[int, ...] = ()
        self._padded_shape: tuple[int, ...] = ()
        self._dtype = np.dtype(np.float64)
        self.arg_max: np.ndarray | None = None  # mode "max": which entry of each window won

    def config(self) -> dict[str, Any]:
        return {
            "pool_h": self.pool_h,
            "pool_w": self.pool_w,
            "stride": self.stride,
            "pad": self.pad,
            "mode": self.mode,
        }

    # --8<-- [start:pooling]
    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_float(self, x)
        check_ndim(self, x, (4,), "input of shape (N, C, H, W)")
        out_h, out_w = output_hw("Pooling", x.shape, self.pool_h, self.pool_w, self.stride, self.pad)
        N, C = x.shape[:2]
        # the book pads with zeros, which would win the max of a window of negative values
        padded = pad_images(x, self.pad, -np.inf if self.mode == "max" else 0.0)
        col = im2col(padded, self.pool_h, self.pool_w, self.stride)  # (N OH OW, C pool_h pool_w)
        col = col.reshape(-1, self.pool_h * self.pool_w)  # one window per row, (N OH OW C, pool_h pool_w)
        if self.mode == "max":
            self.arg_max = np.argmax(col, axis=1)  # the first maximum on ties, as torch's max_pool2d
            out = np.max(col, axis=1)
        else:
            out = np.mean(col, axis=1)
        out = out.reshape(N, out_h, out_w, C).transpose(0, 3, 1, 2)
        self._x_shape, self._padded_shape, self._out_shape = x.shape, padded.shape, out.shape
        self._dtype = x.dtype
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        check_same_shape(self, dout, self._out_shape)
        N, C, H, W = self._x_shape
        pad, size = self.pad, self.pool_h * self.pool_w
        dout = dout.transpose(0, 2, 3, 1).reshape(-1)  # one entry per window, in col's row order
        dcol = np.zeros((dout.size, size), dtype=self._dtype)
        if self.mode == "max":  # a window's gradient goes to its maximum
            dcol[np.arange(dout.size), self.arg_max] = dout
        else:  # ... or evenly to all its entries
            dcol[...] = dout[:, None] / size
        dcol = dcol.reshape(N * self._out_shape[2] * self._out_shape[3], C * size)
        dx = col2im(dcol, self._padded_shape, self.pool_h, self.pool_w, self.stride)
        return dx[:, :, pad : pad + H, pad : pad + W]

    # --8<-- [end:pooling]
