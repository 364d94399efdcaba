"""Convolution -> ReLU -> 2x2 max pooling computed as one step, for speed.

The three layers stay the reference: each has its own forward, backward and gradient
tests. ConvReluPool computes the same numbers in an order that suits NumPy, and
Sequential uses it where nobody looks at the layers between the forward and the
backward pass (``loss_and_gradient``, ``accuracy``). What makes it fast:

1. Pooling before ReLU. ReLU never changes which of two values is larger, so
   relu(maxpool(v)) == maxpool(relu(v)), value for value, and the gradients agree too
   (a window whose maximum is <= 0 passes no gradient either way). ReLU then touches a
   quarter of the values.
2. The im2col columns are grouped by where each output pixel sits in its 2x2 pooling
   window. Output pixel (y, x) = (2 py + di, 2 px + dj) lies at corner (di, dj) of window
   (py, px); ordering the columns (corner, image, py, px) makes the convolution's matrix
   product write four "planes", plane (di, dj) holding that corner of every window.
   Pooling is then three element-wise maxima of contiguous planes, instead of four
   strided reads of the (N, FN, OH, OW) image, and its backward pass four contiguous
   writes.
3. Each thread its own images. With several BLAS threads, the batch is cut into one
   part per thread, and each part runs the whole step (columns, product, pooling, ReLU,
   and backwards) in its own Python thread with single-threaded products. Elementwise
   NumPy work then uses every core too, and no array is passed between cores, which on
   a small machine costs more than the arithmetic. The parts' weight gradients are added
   up at the end.
4. Work arrays (the columns, the planes, the switches) are reused from batch to batch:
   fresh multi-megabyte arrays every step cost more in page faults than the arithmetic.

The pooling keeps the first maximum of each window in row-major order (corners (0, 0),
(0, 1), (1, 0), (1, 1)), as Pooling and torch's max_pool2d do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dlscratch._threads import run_parallel, single_threaded_blas, split_count
from dlscratch.layers.activation import Relu
from dlscratch.layers.base import check_same_shape
from dlscratch.layers.conv import Convolution, pad_images
from dlscratch.layers.conv_shifted import weights_with_bias
from dlscratch.layers.pooling import Pooling

__all__ = ["ConvReluPool"]

_INFERENCE_CHUNK = 100  # images per product when evaluating: keeps the columns in cache
_MIN_PART = 16  # fewer images than this per thread are not worth a thread
# columns per output (C FH FW) up to which a stride-1 convolution is fused. Forward +
# backward on batches of 100, medians (python bench/conv_layers.py, 2 threads):
# SimpleConvNet's 1 x 5 x 5 takes 6.9 ms fused and 14.3 ms as layers, DeepConvNet's
# 16 x 3 x 3 takes 39.5 ms fused and 24.9 ms as layers
_FUSED_COLUMNS_UP_TO = 64


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
        self._parts: list[_Part] = []
        self._trained: list[tuple[_Part, slice]] = []  # the parts the last training forward used
        self._fallback = False
        self._x_shape: tuple[int, ...] = ()
        self._out_shape: tuple[int, ...] = ()

    @staticmethod
    def applies(layers: Sequence[Any]) -> bool:
        """Whether these three layers are a Convolution, a Relu and a 2x2/2 max Pooling
        that run faster as one step.

        A stride-1 convolution with many columns per output (input channels x filter
        size, as DeepConvNet's 16 x 3 x 3) runs faster as the layers themselves: the
        Convolution's shifted stride-1 path (layers/conv_shifted.py) builds no strided
        columns, and that saving outweighs what fusing saves.
        """
        if len(layers) != 3:
            return False
        conv, relu, pool = layers
        return (
            isinstance(conv, Convolution)
            and (conv.stride != 1 or conv.W[0].size <= _FUSED_COLUMNS_UP_TO)
            and type(relu) is Relu
            and type(pool) is Pooling
            and pool.mode == "max"
            and pool.pool_h == pool.pool_w == pool.stride == 2
            and pool.pad == 0
        )

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        conv, relu, pool = self.layers
        x, out_h, out_w = conv.check_input(x)
        FN = len(conv.W)
        self._fallback = out_h % 2 == 1 or out_w % 2 == 1
        if self._fallback:  # windows would not tile the image: the layers' own code explains
            return pool.forward(relu.forward(conv.forward(x)))
        weights = weights_with_bias(conv.W, conv.b, x.dtype)  # [Wm | b], for [col; ones]
        out = np.empty((len(x), FN, out_h // 2, out_w // 2), dtype=x.dtype)
        tasks = self._split(len(x))
        method = _Part.forward if train else _Part.evaluate
        _run([lambda p=p, r=r: method(p, conv, x[r], weights, out[r]) for p, r in tasks])
        if train:
            self._trained, self._x_shape, self._out_shape = tasks, x.shape, out.shape
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dx (N, C, H, W); the convolution's dW and db are kept in its grads."""
        return self._backward(dout, with_dx=True)

    def backward_params(self, dout: np.ndarray) -> None:
        """backward without dx: only the convolution's dW and db."""
        self._backward(dout, with_dx=False)

    def _backward(self, dout: np.ndarray, with_dx: bool) -> np.ndarray | None:
        conv, relu, pool = self.layers
        if self._fallback:
            d_conv = relu.backward(pool.backward(dout))
            return conv.backward(d_conv) if with_dx else conv.backward_params(d_conv)
        check_same_shape(pool, dout, self._out_shape)
        N, C, H, W = self._x_shape
        pad = conv.pad
        dx = None
        if with_dx:
            dx = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=np.result_type(dout, conv.W))
        grads = _run(
            [
                lambda p=p, r=r: p.backward(conv, dout[r], None if dx is None else dx[r])
                for p, r in self._trained
            ]
        )
        total = sum(grads[1:], start=grads[0])  # [dW | db] of each part, added up
        conv.grads["W"][...] = total[:, :-1].reshape(conv.W.shape)
        conv.grads["b"][...] = total[:, -1]
        return None if dx is None else dx[:, :, pad : pad + H, pad : pad + W]

    def _split(self, n: int) -> list[tuple[_Part, slice]]:
        """n images cut into one contiguous range per thread (at least _MIN_PART each)."""
        count = max(1, min(split_count(), n // _MIN_PART))
        while len(self._parts) < count:
            self._parts.append(_Part())
        bounds = [n * i // count for i in range(count + 1)]
        return [(self._parts[i], slice(bounds[i], bounds[i + 1])) for i in range(count)]


class _Part:
    """One thread's share of a batch: its work arrays, and its images' pooling switches."""

    def __init__(self) -> None:
        self._work: dict[str, np.ndarray] = {}

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """The work array `name`, made anew only when the shape or dtype changes."""
        array = self._work.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = self._work[name] = np.empty(shape, dtype=dtype)
        return array

    def _planes(
        self, conv: Convolution, x: np.ndarray, weights: np.ndarray, PH: int, PW: int, use: str
    ) -> np.ndarray:
        """The convolution of x as (FN, 4, N PH PW): plane q holds corner q of every window.

        use: "train" or "eval", so an evaluation between a forward and its backward pass
        keeps the columns the backward pass needs.
        """
        FN, C, FH, FW = conv.W.shape
        N, s, k = len(x), conv.stride, C * FH * FW
        col = self._buffer(use + " col", (k + 1, 4, N, PH * PW), x.dtype)
        col[-1] = 1  # [col; ones]: the bias row
        images = pad_images(x, conv.pad)
        cols = col[:-1].reshape(C, FH, FW, 2, 2, N, PH, PW)  # (c, i, j, di, dj, n, py, px)
        for i in range(FH):
            for j in range(FW):
                # pixel (i, j) of the filter window of output (y, x) = (2 py + di, 2 px + dj)
                # is input pixel (y s + i, x s + j): all four corners in one copy
                cols[:, i, j] = _corners(_window(images, i, j, s, PH, PW))
        planes = self._buffer(use + " planes", (FN, 4, N * PH * PW), x.dtype)
        np.matmul(weights, col.reshape(k + 1, -1), out=planes.reshape(FN, -1))
        return planes

    def forward(self, conv: Convolution, x: np.ndarray, weights: np.ndarray, out: np.ndarray) -> None:
        """Training: out = relu(maxpool(conv(x))), keeping what backward needs."""
        FN, N, PH, PW = len(weights), len(x), out.shape[2], out.shape[3]
        planes = self._planes(conv, x, weights, PH, PW, "train")
        a, b, c, d = planes[:, 0], planes[:, 1], planes[:, 2], planes[:, 3]
        # which corner holds each window's maximum, as three yes/no switches, kept the
        # way backward uses them: top_left_wins: (0, 0) >= (0, 1); bottom_left_wins:
        # (1, 0) >= (1, 1); top_wins: the top pair >= the bottom pair. On a tie the
        # earlier corner wins, as the first maximum in row-major order.
        switches = self._buffer("switches", (3, *a.shape), np.bool_)
        self._top_left_wins = np.greater_equal(a, b, out=switches[0])
        self._bottom_left_wins = np.greater_equal(c, d, out=switches[1])
        top = np.maximum(a, b, out=self._buffer("top", a.shape, a.dtype))
        bottom = np.maximum(c, d, out=self._buffer("bottom", a.shape, a.dtype))
        self._top_wins = np.greater_equal(top, bottom, out=switches[2])
        pooled = np.maximum(top, bottom, out=top)  # (FN, N PH PW)
        self._positive = np.greater(pooled, 0, out=self._buffer("positive", a.shape, np.bool_))
        # ReLU, written straight into (N, FN, PH, PW) order
        np.maximum(pooled.reshape(FN, N, PH, PW), 0, out=out.transpose(1, 0, 2, 3))

    def evaluate(self, conv: Convolution, x: np.ndarray, weights: np.ndarray, out: np.ndarray) -> None:
        """Evaluation: out = relu(maxpool(conv(x))), a chunk of images at a time, no switches."""
        FN, PH, PW = len(weights), out.shape[2], out.shape[3]
        for start in range(0, len(x), _INFERENCE_CHUNK):
            part = slice(start, start + _INFERENCE_CHUNK)
            planes = self._planes(conv, x[part], weights, PH, PW, "eval")
            pooled = np.maximum(
                planes[:, 0], planes[:, 1], out=self._buffer("eval top", planes[:, 0].shape, planes.dtype)
            )
            np.maximum(pooled, planes[:, 2], out=pooled)
            np.maximum(pooled, planes[:, 3], out=pooled)
            np.maximum(pooled.reshape(FN, -1, PH, PW), 0, out=out[part].transpose(1, 0, 2, 3))

    def backward(self, conv: Convolution, dout: np.ndarray, dx: np.ndarray | None) -> np.ndarray:
        """[dW | db] of this part's images; adds their input gradient into dx (padded) if given."""
        FN, _, FH, FW = conv.W.shape
        N, PH, PW = len(dout), dout.shape[2], dout.shape[3]
        shape = self._positive.shape
        dtype = np.result_type(dout.dtype, conv.W.dtype)
        # ReLU's backward on the pooled values, in the planes' (FN, N PH PW) order
        d_pooled = self._buffer("d_pooled", shape, dtype)
        np.multiply(
            dout.reshape(N, FN, -1).transpose(1, 0, 2),
            self._positive.reshape(FN, N, -1),
            out=d_pooled.reshape(FN, N, -1),
        )
        # each window's gradient goes to the corner that held its maximum: first to the
        # winning pair (d_top or d_bottom), then to the winning corner of that pair
        d_planes = self._buffer("d_planes", (FN, 4, shape[1]), dtype)
        d_top, d_bottom = self._buffer("d_top", shape, dtype), self._buffer("d_bottom", shape, dtype)
        np.multiply(d_pooled, self._top_wins, out=d_top)
        np.subtract(d_pooled, d_top, out=d_bottom)
        np.multiply(d_top, self._top_left_wins, out=d_planes[:, 0])
        np.subtract(d_top, d_planes[:, 0], out=d_planes[:, 1])
        np.multiply(d_bottom, self._bottom_left_wins, out=d_planes[:, 2])
        np.subtract(d_bottom, d_planes[:, 2], out=d_planes[:, 3])
        # [dW | db] = d_planes @ [col; ones].T, summed over corners and images: one small
        # product per (corner, image), far faster than one product with a very long sum
        col = self._work["train col"]
        per_image = np.matmul(
            d_planes.reshape(FN, 4, N, PH * PW).transpose(1, 2, 0, 3),  # (4, N, FN, P)
            col.transpose(1, 2, 3, 0),  # (4, N, P, k + 1)
        )
        grads = per_image.sum(axis=(0, 1))
        if dx is not None:
            # the transpose of the im2col: each column's gradient added back onto the input
            # pixel it was read from
            d_col = conv.W.reshape(FN, -1).T.astype(dtype, copy=False) @ d_planes.reshape(FN, -1)
            s = conv.stride
            d_cols = d_col.reshape(*conv.W.shape[1:], 2, 2, N, PH, PW)
            for i in range(FH):
                for j in range(FW):
                    _corners(_window(dx, i, j, s, PH, PW))[...] += d_cols[:, i, j]
        return grads


def _window(images: np.ndarray, i: int, j: int, stride: int, PH: int, PW: int) -> np.ndarray:
    """The view (N, C, 2 PH, 2 PW) of the input pixels (y stride + i, x stride + j), y < 2 PH, x < 2 PW."""
    rows = slice(i, i + stride * (2 * PH - 1) + 1, stride)
    columns = slice(j, j + stride * (2 * PW - 1) + 1, stride)
    return images[:, :, rows, columns]


def _corners(window: np.ndarray) -> np.ndarray:
    """(N, C, 2 PH, 2 PW) viewed as (C, 2, 2, N, PH, PW): pixel (2 py + di, 2 px + dj) at [di, dj, py, px].

    Plane q = 2 di + dj of the columns is corner (di, dj) of each pooling window.
    """
    N, C, H2, W2 = window.shape
    return window.reshape(N, C, H2 // 2, 2, W2 // 2, 2).transpose(1, 3, 5, 0, 2, 4)


def _run(tasks: list[Callable[[], Any]]) -> list[Any]:
    """The tasks run at once, one per thread, with single-threaded matrix products."""
    if len(tasks) == 1:
        return [tasks[0]()]
    with single_threaded_blas():
        return run_parallel(tasks)
