"""Pooling (chapter 7): the maximum or the mean of each window, channel by channel."""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from dlscratch.layers.base import Layer, check_float, check_ndim, check_same_shape
from dlscratch.layers.conv import output_hw, pad_images, window

_MODES = ("max", "avg")


class Pooling(Layer):
    """out[n, c, y, x] = max (or mean) of x[n, c] over the pool_h x pool_w window at (y, x).

    x: (N, C, H, W). Returns (N, C, OH, OW), OH = floor((H + 2 pad - pool_h) / stride) + 1
    (likewise OW): as in the book and torch, rows and columns that no whole window reaches
    are left out (and get no gradient). The default stride is 2, as in the book's code, so
    Pooling(2, 2) halves height and width.

    mode "max": the gradient of a window goes to its largest input; on ties to the first
    one in row-major order, and padding is -inf so it never wins (as torch's max_pool2d).
    mode "avg": each input gets dout / (pool_h pool_w); padding counts as zeros in the
    mean (torch's avg_pool2d with count_include_pad=True).
    As in torch, pad may be at most half the window, so every window sees some input.
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
        self._dtype = np.dtype(np.float64)
        self._argmax: np.ndarray | None = None  # window offset of each max, row-major

    def config(self) -> dict[str, Any]:
        return {
            "pool_h": self.pool_h,
            "pool_w": self.pool_w,
            "stride": self.stride,
            "pad": self.pad,
            "mode": self.mode,
        }

    def _offsets(self) -> list[tuple[int, int]]:
        """The (i, j) positions inside a window, row-major: offset k is (k // pool_w, k % pool_w)."""
        return [(i, j) for i in range(self.pool_h) for j in range(self.pool_w)]

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_float(self, x)
        check_ndim(self, x, (4,), "input of shape (N, C, H, W)")
        out_h, out_w = output_hw("Pooling", x.shape, self.pool_h, self.pool_w, self.stride, self.pad)
        self._x_shape, self._out_shape, self._dtype = x.shape, (*x.shape[:2], out_h, out_w), x.dtype
        images = pad_images(x, self.pad, -np.inf if self.mode == "max" else 0.0)
        # one view per window offset, each (N, C, OH, OW): a loop over offsets, not positions
        windows = [window(images, i, j, self.stride, out_h, out_w) for i, j in self._offsets()]
        out = windows[0].copy()
        if self.mode == "avg":
            for w in windows[1:]:
                out += w
            out *= 1 / len(windows)  # a Python float: NumPy keeps out's dtype
            return out
        # offset k of the window holds the max; uint8 unless the window is huge
        argmax = np.zeros(out.shape, dtype=np.min_scalar_type(len(windows) - 1))
        for k, w in enumerate(windows[1:], start=1):
            improves = w > out  # strictly: on a tie the earlier offset keeps the max
            # k grows, so max(argmax, k * improves) keeps the last offset that improved the
            # running max: the window's first argmax (a masked assignment is much slower)
            np.maximum(argmax, improves * argmax.dtype.type(k), out=argmax)
            np.maximum(out, w, out=out)
        self._argmax = argmax
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        check_same_shape(self, dout, self._out_shape)
        N, C, H, W = self._x_shape
        pad, (out_h, out_w) = self.pad, self._out_shape[2:]
        # stride == window size and no leftover rows or columns: the windows tile the
        # input, each pixel is in exactly one
        tiled = self.stride == self.pool_h == self.pool_w and (out_h * self.stride, out_w * self.stride) == (
            H + 2 * pad,
            W + 2 * pad,
        )
        dx = (np.empty if tiled else np.zeros)((N, C, H + 2 * pad, W + 2 * pad), dtype=self._dtype)
        for k, (i, j) in enumerate(self._offsets()):
            # the part of dout that offset k of each window receives
            weight = self._argmax == k if self.mode == "max" else 1 / (self.pool_h * self.pool_w)
            target = window(dx, i, j, self.stride, out_h, out_w)
            if tiled:  # fast path: write straight into the pixels, no temporary
                np.multiply(dout, weight, out=target)
            else:  # windows may overlap or leave gaps: pixels sum what their windows send
                target += dout * weight
        return dx[:, :, pad : pad + H, pad : pad + W]
