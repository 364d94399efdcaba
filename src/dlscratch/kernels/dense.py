"""An Affine layer's products on the kernels' threads, in a network whose convolutions use them.

Such a network runs its steps with one-thread BLAS (steps.running): left to the BLAS's
own threads, an Affine's products would leave them busy-waiting on the cores the next
kernel needs. So the step cuts its three products into a fixed number of pieces and
runs them on the kernels' threads: the batch's rows for y = x W + b and dx = dout W^T,
W's rows for dW = x^T dout. No sum is cut, so the numbers do not depend on the thread count.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dlscratch.kernels.parallel import chunks, parallel_map
from dlscratch.layers.affine import Affine
from dlscratch.layers.base import check_same_shape, in_param_dtype

__all__ = ["AffineStep"]

PIECES = 4  # pieces per product: a few per thread, whatever the thread count


class AffineStep:
    """y = x @ W + b as the Affine layer computes it, each product in PIECES pieces.

    x: (N, D) or (N, *dims); returns (N, M). backward(dout) returns dx in x's shape and
    writes the layer's dW and db in place; backward_params(dout) skips dx.

    Parameters
    ----------
    layer : Affine
        The layer whose W (D, M) and b (M,) the step reads and whose grads it writes.
    xp : module, default numpy
        The array module of the products.
    """

    uses_train_flag = False

    def __init__(self, layer: Affine, xp: Any = np) -> None:
        self.layer, self.xp = layer, xp
        self._x: Any = None
        self._x_shape: tuple[int, ...] = ()

    def forward(self, x: Any) -> Any:
        layer, xp = self.layer, self.xp
        x = in_param_dtype(layer, x)
        features = math.prod(x.shape[1:]) if x.ndim else 0
        if features != layer.W.shape[0]:
            return layer.forward(x)  # which raises the layer's own error
        self._x_shape, self._x = x.shape, x.reshape(len(x), features)
        out = xp.empty((len(x), layer.W.shape[1]), self._x.dtype)

        def rows(part: slice) -> None:
            xp.matmul(self._x[part], layer.W, out=out[part])
            out[part] += layer.b

        parallel_map(rows, chunks(len(x), -(-len(x) // PIECES)))
        return out

    def backward(self, dout: Any) -> Any:
        """dx (in x's shape); dW and db are written into the layer's grads."""
        self.backward_params(dout)
        W, xp = self.layer.W, self.xp
        dx = xp.empty(self._x.shape, self._x.dtype)
        pieces = chunks(len(dout), -(-len(dout) // PIECES))
        parallel_map(lambda part: xp.matmul(dout[part], W.T, out=dx[part]), pieces)
        return dx.reshape(self._x_shape)

    def backward_params(self, dout: Any) -> None:
        """dW = x^T dout (by blocks of W's rows) and db = sum of dout over the batch, in place."""
        layer, xp = self.layer, self.xp
        check_same_shape(layer, dout, (len(self._x), layer.W.shape[1]))
        dW, x_t = layer.grads["W"], self._x.T
        parallel_map(
            lambda part: xp.matmul(x_t[part], dout, out=dW[part]), chunks(len(dW), -(-len(dW) // PIECES))
        )
        dout.sum(axis=0, out=layer.grads["b"])

    def __repr__(self) -> str:
        return f"AffineStep({self.layer!r})"
