"""Convolution -> ReLU -> 2x2 max pooling computed as one step, for speed.

The three layers stay the reference: each has its own forward, backward and gradient
tests. ConvReluPool computes the same numbers in an order that suits NumPy, and
Sequential uses it where nobody looks at the layers between the forward and the
backward pass (``loss_and_gradient``, ``accuracy``). Two changes of order make it fast:

1. Pooling before ReLU. ReLU never changes which of two values is larger, so
   relu(maxpool(v)) == maxpool(relu(v)), value for value, and the gradients agree too
   (a window whose maximum is <= 0 passes no gradient either way). ReLU then touches a
   quarter of the values.
2. The im2col columns are grouped by where each output pixel sits in its 2x2 pooling
   window. Output pixel (y, x) = (2 py + di, 2 px + dj) lies at corner (di, dj) of window
   (py, px); ordering the columns (corner, image, py, px) makes the convolution's one
   matrix product write four "planes", plane (di, dj) holding that corner of every window.
   Pooling is then three element-wise maxima of contiguous planes, instead of four
   strided reads of the (N, FN, OH, OW) image, and its backward pass four contiguous
   writes.

The pooling keeps the first maximum of each window in row-major order (corners (0, 0),
(0, 1), (1, 0), (1, 1)), as Pooling and torch's max_pool2d do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dlscratch.layers.activation import Relu
from dlscratch.layers.base import check_float, check_ndim, check_same_shape
from dlscratch.layers.conv import Convolution, output_hw, pad_images
from dlscratch.layers.pooling import Pooling

__all__ = ["ConvReluPool"]

_CORNERS = ((0, 0), (0, 1), (1, 0), (1, 1))  # (di, dj) of plane q, row-major in the window
_INFERENCE_CHUNK = 100  # images per product when evaluating: keeps the columns in cache


class ConvReluPool:
    """Convolution, then Relu, then 2x2 max Pooling with stride 2, run as one step.

    Uses (and updates) the convolution's own parameters and gradient arrays. forward(x,
    train) and backward(dout) have the shapes of the three layers in a row: x (N, C, H, W),
    output and dout (N, FN, OH / 2, OW / 2), dx (N, C, H, W). When the convolution's output
    has an odd height or width, the three layers run one by one instead (and Pooling
    reports the misfit).
    """

    def __init__(self, conv: Convolution, relu: Relu, pool: Pooling) -> None:
        self.layers = (conv, relu, pool)
        # work arrays reused from batch to batch while shapes repeat (fresh multi-megabyte
        # arrays every step would cost more in page faults than the arithmetic)
        self._work: dict[str, np.ndarray] = {}
        self._fallback = False
        self._x_shape: tuple[int, ...] = ()
        self._out_shape: tuple[int, ...] = ()

    @staticmethod
    def applies(layers: Sequence[Any]) -> bool:
        """Whether these three layers are a Convolution, a Relu and a 2x2/2 max Pooling."""
        if len(layers) != 3:
            return False
        conv, relu, pool = layers
        return (
            isinstance(conv, Convolution)
            and type(relu) is Relu
            and type(pool) is Pooling
            and pool.mode == "max"
            and pool.pool_h == pool.pool_w == pool.stride == 2
            and pool.pad == 0
        )

    # ----------------------------------------------------------------------- forward

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        conv, relu, pool = self.layers
        x = check_float(conv, x)
        check_ndim(conv, x, (4,), "input of shape (N, C, H, W)")
        FN, C, FH, FW = conv.W.shape
        if x.shape[1] != C:
            raise ValueError(
                f"Convolution expected {C} input channels (W has shape {conv.W.shape}), "
                f"got {x.shape[1]} (input shape {x.shape})"
            )
        out_h, out_w = output_hw("Convolution", x.shape, FH, FW, conv.stride, conv.pad)
        self._fallback = out_h % 2 == 1 or out_w % 2 == 1
        if self._fallback:  # windows would not tile the image: the layers' own code explains
            return pool.forward(relu.forward(conv.forward(x)))
        N, PH, PW = len(x), out_h // 2, out_w // 2
        # [Wm | b]: with a row of ones under the columns, the bias rides along in the product
        weights = np.empty((FN, C * FH * FW + 1), dtype=x.dtype)
        weights[:, :-1] = conv.W.reshape(FN, -1)
        weights[:, -1] = conv.b
        out = np.empty((N, FN, PH, PW), dtype=x.dtype)
        if not train:  # evaluation: a chunk of images at a time, no caches for backward
            for start in range(0, N, _INFERENCE_CHUNK):
                part = slice(start, start + _INFERENCE_CHUNK)
                planes = self._planes(x[part], weights, PH, PW)
                pooled = np.maximum(planes[:, 0], planes[:, 1])
                np.maximum(pooled, planes[:, 2], out=pooled)
                np.maximum(pooled, planes[:, 3], out=pooled)
                # ReLU, written straight into (N, FN, PH, PW) order
                np.maximum(pooled.reshape(FN, -1, PH, PW), 0, out=out[part].transpose(1, 0, 2, 3))
            return out
        planes = self._planes(x, weights, PH, PW)
        a, b, c, d = planes[:, 0], planes[:, 1], planes[:, 2], planes[:, 3]
        # the max of each window and which corner holds it, as three yes/no switches:
        # right_top: (0, 1) beats (0, 0); right_bottom: (1, 1) beats (1, 0); bottom: the
        # bottom pair beats the top pair. Strictly greater, so ties keep the earlier corner.
        switches = self._buffer("switches", (3, *a.shape), np.bool_)
        self._right_top = np.greater(b, a, out=switches[0])
        self._right_bottom = np.greater(d, c, out=switches[1])
        top = np.maximum(a, b, out=self._buffer("top", a.shape, a.dtype))
        bottom = np.maximum(c, d, out=self._buffer("bottom", a.shape, a.dtype))
        self._bottom = np.greater(bottom, top, out=switches[2])
        pooled = np.maximum(top, bottom, out=top)  # (FN, N PH PW)
        self._positive = np.greater(pooled, 0, out=self._buffer("positive", a.shape, np.bool_))
        np.maximum(pooled.reshape(FN, N, PH, PW), 0, out=out.transpose(1, 0, 2, 3))
        self._x_shape, self._out_shape = x.shape, out.shape
        return out

    def _planes(self, x: np.ndarray, weights: np.ndarray, PH: int, PW: int) -> np.ndarray:
        """The convolution of x as (FN, 4, N PH PW): plane q holds corner q of every window."""
        conv = self.layers[0]
        FN, C, FH, FW = conv.W.shape
        N, s = len(x), conv.stride
        k = C * FH * FW
        col = self._buffer("col", (k + 1, 4, N, PH * PW), x.dtype)
        col[-1] = 1  # [col; ones]: the bias row
        images = pad_images(x, conv.pad)
        cols = col[:-1].reshape(C, FH, FW, 4, N, PH, PW)
        for i in range(FH):
            for j in range(FW):
                for q, (di, dj) in enumerate(_CORNERS):
                    # pixel (i, j) of the filter window of output (2 py + di, 2 px + dj):
                    # input row (2 py + di) s + i, column (2 px + dj) s + j
                    rows = slice(di * s + i, di * s + i + 2 * s * (PH - 1) + 1, 2 * s)
                    columns = slice(dj * s + j, dj * s + j + 2 * s * (PW - 1) + 1, 2 * s)
                    cols[:, i, j, q] = images[:, :, rows, columns].transpose(1, 0, 2, 3)
        planes = self._buffer("planes", (FN, 4, N * PH * PW), x.dtype)
        np.matmul(weights, col.reshape(k + 1, -1), out=planes.reshape(FN, -1))
        return planes

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """The work array `name`, made anew only when the shape or dtype changes."""
        array = self._work.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = self._work[name] = np.empty(shape, dtype=dtype)
        return array

    # ----------------------------------------------------------------------- backward

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        conv, relu, pool = self.layers
        if self._fallback:
            return conv.backward(relu.backward(pool.backward(dout)))
        check_same_shape(pool, dout, self._out_shape)
        N, C, H, W = self._x_shape
        FN, _, FH, FW = conv.W.shape
        dtype = np.result_type(dout.dtype, conv.W.dtype)
        shape = self._positive.shape
        # ReLU's backward on the pooled values, in the planes' (FN, N PH PW) order
        d_pooled = self._buffer("d_pooled", shape, dtype)
        np.multiply(
            dout.reshape(N, FN, -1).transpose(1, 0, 2),
            self._positive.reshape(FN, N, -1),
            out=d_pooled.reshape(FN, N, -1),
        )
        # each window's gradient goes to the corner that held its maximum: d_top is the
        # gradient of the windows whose top pair won, d_bottom the rest; likewise inside a pair
        d_planes = self._buffer("d_planes", (FN, 4, shape[1]), dtype)
        not_switch = self._buffer("not_switch", shape, np.bool_)
        d_top, d_bottom = self._buffer("d_top", shape, dtype), self._buffer("d_bottom", shape, dtype)
        np.multiply(d_pooled, np.logical_not(self._bottom, out=not_switch), out=d_top)
        np.subtract(d_pooled, d_top, out=d_bottom)
        np.multiply(d_top, np.logical_not(self._right_top, out=not_switch), out=d_planes[:, 0])
        np.subtract(d_top, d_planes[:, 0], out=d_planes[:, 1])
        np.multiply(d_bottom, np.logical_not(self._right_bottom, out=not_switch), out=d_planes[:, 2])
        np.subtract(d_bottom, d_planes[:, 2], out=d_planes[:, 3])
        # [dW | db] = d_planes @ [col; ones].T, summed over corners and images: one small
        # product per (corner, image), far faster than one product with a very long sum
        col = self._work["col"]
        positions = col.shape[-1]
        per_image = np.matmul(
            d_planes.reshape(FN, 4, N, positions).transpose(1, 2, 0, 3),  # (4, N, FN, P)
            col.transpose(1, 2, 3, 0),  # (4, N, P, k + 1)
        )
        grads = per_image.sum(axis=(0, 1))
        conv.grads["W"][...] = grads[:, :-1].reshape(conv.W.shape)
        conv.grads["b"][...] = grads[:, -1]
        if not conv.needs_input_grad:
            return None
        # dx: the transpose of the im2col above, each column's gradient added back onto
        # the input pixel it was read from
        d_col = conv.W.reshape(FN, -1).T.astype(d_planes.dtype, copy=False) @ d_planes.reshape(FN, -1)
        d_cols = d_col.reshape(C, FH, FW, 4, N, *self._out_shape[2:])
        pad, s = conv.pad, conv.stride
        PH, PW = self._out_shape[2:]
        dx = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=d_planes.dtype)
        for i in range(FH):
            for j in range(FW):
                for q, (di, dj) in enumerate(_CORNERS):
                    rows = slice(di * s + i, di * s + i + 2 * s * (PH - 1) + 1, 2 * s)
                    columns = slice(dj * s + j, dj * s + j + 2 * s * (PW - 1) + 1, 2 * s)
                    dx[:, :, rows, columns] += d_cols[:, i, j, q].transpose(1, 0, 2, 3)
        return dx[:, :, pad : pad + H, pad : pad + W]
