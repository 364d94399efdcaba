"""The fully connected layer."""

from __future__ import annotations

import math

import numpy as np

from dlscratch.layers.base import Layer, check_same_shape, in_param_dtype, param_alias


class Affine(Layer):
    """y = x @ W + b.

    x: (N, D) or (N, *dims) flattened to (N, D); returns (N, M); backward returns dx in
    x's original shape. x of another float dtype than W is converted to W's first.

    Parameters
    ----------
    W : ndarray, shape (D, M)
        The weights, floating point; used (and updated by optimizers) in place.
    b : ndarray, shape (M,)
        The biases.
    """

    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        super().__init__()
        W, b = np.asarray(W), np.asarray(b)
        if W.ndim != 2 or b.shape != W.shape[1:]:
            raise ValueError(
                f"Affine expected W of shape (D, M) and b of shape (M,), got {W.shape} and {b.shape}"
            )
        self._set_params(W=W, b=b)
        self._x: np.ndarray | None = None
        self._x_shape: tuple[int, ...] = ()

    # the book's attribute names, kept for learners
    W = param_alias("W")
    b = param_alias("b")
    dW = property(lambda self: self.grads["W"])
    db = property(lambda self: self.grads["b"])

    @property
    def x(self) -> np.ndarray | None:
        """The (flattened) input of the last forward, as the book's Affine.x."""
        return self._x

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = in_param_dtype(self, x)
        features = math.prod(x.shape[1:]) if x.ndim else 0  # not x[0].size: a batch may be empty
        if features != self.W.shape[0]:
            raise ValueError(
                f"Affine expected {self.W.shape[0]} input features, got {features} (input shape {x.shape})"
            )
        self._x_shape = x.shape
        self._x = x.reshape(len(x), features)
        out = self._x @ self.W
        out += self.b  # in place: no second (N, M) array
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dx = dout @ W.T (in x's shape); dW = x.T @ dout and db = sum of dout over N are kept."""
        self.backward_params(dout)
        return (dout @ self.W.T).reshape(self._x_shape)

    def backward_params(self, dout: np.ndarray) -> None:
        """backward without dx: only dW and db (a network's first layer needs no dx)."""
        check_same_shape(self, dout, (len(self._x), self.W.shape[1]))
        # written in place: the network's grads dict and the optimizer hold these arrays
        np.matmul(self._x.T, dout, out=self.grads["W"])
        dout.sum(axis=0, out=self.grads["b"])
