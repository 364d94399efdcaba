"""Convolution -> ReLU -> 2x2 max pooling computed as one step, for speed.

The three layers stay the reference: each has its own forward, backward and gradient
tests. ConvReluPool computes the same numbers in an order that suits NumPy, and
Sequential uses it where nobody looks at the layers between the forward and the
backward pass (``loss_and_gradient``, ``accuracy``). What makes it fast:

1. The convolution is the stride-1 shifted one (layers/conv_shifted.py), which works a
   few images at a time; pooling and ReLU run on each chunk's output while it is still
   in the cache, and the full-size convolution output never exists.
2. Pooling before ReLU. ReLU never changes which of two values is larger, so
   relu(maxpool(v)) == maxpool(relu(v)), value for value, and the gradients agree too
   (a window whose maximum is <= 0 passes no gradient either way). ReLU then touches a
   quarter of the values.
3. The pooling switches are three yes/no arrays (which of each pair of corners won, and
   which pair), so the backward pass routes each window's gradient with four
   element-wise products instead of searching for the maximum again.

The pooling keeps the first maximum of each window in row-major order (corners (0, 0),
(0, 1), (1, 0), (1, 1)), as Pooling and torch's max_pool2d do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dlscratch.layers.activation import Relu
from dlscratch.layers.base import check_same_shape
from dlscratch.layers.conv import Convolution
from dlscratch.layers.conv_shifted import shifted_backward, shifted_forward
from dlscratch.layers.pooling import Pooling

__all__ = ["ConvReluPool"]


class ConvReluPool:
    """Convolution, then Relu, then 2x2 max Pooling with stride 2, run as one step.

    Uses (and updates) the convolution's own parameters and gradient arrays. forward(x,
    train) and backward(dout) have the shapes of the three layers in a row: x (N, C, H, W),
    output and dout (N, FN, OH / 2, OW / 2), dx (N, C, H, W). When the convolution's output
    has an odd height or width (Pooling then reports the misfit), or its stride is not 1,
    the three layers run one by one instead.
    """

    def __init__(self, conv: Convolution, relu: Relu, pool: Pooling) -> None:
        self.layers = (conv, relu, pool)
        self._fallback = False
        self._x: np.ndarray | None = None
        # per pooling window of the last training forward: (top-left >= top-right,
        # bottom-left >= bottom-right, top pair >= bottom pair, pooled value > 0)
        self._switches: np.ndarray | None = None
        self._out_shape: tuple[int, ...] = ()

    @staticmethod
    def applies(layers: Sequence[Any]) -> bool:
        """Whether these are a stride-1 Convolution, a Relu and a 2x2/2 max Pooling."""
        if len(layers) != 3:
            return False
        conv, relu, pool = layers
        return (
            isinstance(conv, Convolution)
            and conv.stride == 1
            and type(relu) is Relu
            and type(pool) is Pooling
            and pool.mode == "max"
            and pool.pool_h == pool.pool_w == pool.stride == 2
            and pool.pad == 0
        )

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        conv, relu, pool = self.layers
        x, out_h, out_w = conv.check_input(x)
        # windows that would not tile the image (the layers' own code explains), or a
        # stride the shifted convolution does not do: the three layers one by one
        self._fallback = out_h % 2 == 1 or out_w % 2 == 1 or conv.stride != 1
        if self._fallback:
            return pool.forward(relu.forward(conv.forward(x)))
        out = np.empty((len(x), conv.W.shape[0], out_h // 2, out_w // 2), dtype=x.dtype)
        switches = np.empty((4, *out.shape), dtype=np.bool_) if train else None

        def pool_and_relu(images: slice, conv_out: np.ndarray) -> None:
            a, b, c, d = _corners(conv_out)
            top, bottom = np.maximum(a, b), np.maximum(c, d)
            if switches is not None:  # on a tie the earlier corner wins
                top_left_wins, bottom_left_wins, top_wins, positive = switches[:, images]
                np.greater_equal(a, b, out=top_left_wins)
                np.greater_equal(c, d, out=bottom_left_wins)
                np.greater_equal(top, bottom, out=top_wins)
            pooled = np.maximum(top, bottom, out=top)
            if switches is not None:
                np.greater(pooled, 0, out=positive)
            np.maximum(pooled, 0, out=out[images])

        shifted_forward(x, conv.W, conv.b, conv.pad, pool_and_relu)
        if train:
            self._x, self._switches, self._out_shape = x, switches, out.shape
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        conv, relu, pool = self.layers
        if self._fallback:
            return conv.backward(relu.backward(pool.backward(dout)))
        check_same_shape(pool, dout, self._out_shape)
        switches = self._switches

        def unpool(images: slice, dgrid: np.ndarray) -> None:
            # each window's gradient goes to the corner that held its maximum: first to
            # the winning pair (d_top or d_bottom), then to the winning corner of that pair
            top_left_wins, bottom_left_wins, top_wins, positive = switches[:, images]
            d_pooled = dout[images] * positive  # ReLU's backward on the pooled values
            d_top = d_pooled * top_wins
            d_bottom = np.subtract(d_pooled, d_top, out=d_pooled)
            a, b, c, d = _corners(dgrid)
            np.multiply(d_top, top_left_wins, out=a)
            np.subtract(d_top, a, out=b)
            np.multiply(d_bottom, bottom_left_wins, out=c)
            np.subtract(d_bottom, c, out=d)

        dW, db, dx = shifted_backward(self._x, conv.W, conv.pad, unpool, conv.needs_input_grad)
        conv.grads["W"][...] = dW
        conv.grads["b"][...] = db
        return dx


def _corners(images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Views (n, F, H / 2, W / 2) of corners (0, 0), (0, 1), (1, 0), (1, 1) of every 2x2 window."""
    return images[..., 0::2, 0::2], images[..., 0::2, 1::2], images[..., 1::2, 0::2], images[..., 1::2, 1::2]
