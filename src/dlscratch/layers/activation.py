"""Activation layers: elementwise functions with no parameters.

Each caches what its backward needs; none mutates the arrays it is given.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlscratch.functions import sigmoid
from dlscratch.layers.base import Layer, check_float, check_same_shape


class Relu(Layer):
    """y = max(0, x), any shape; the gradient is 0 where x <= 0, as in the book."""

    def __init__(self) -> None:
        super().__init__()
        self.mask: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_float(self, x)
        self.mask = x <= 0
        # the book's out[mask] = 0 on a copy, in one pass: np.where and boolean indexing
        # branch on every element and run ten times slower on a random mask
        return np.maximum(x, 0)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        check_same_shape(self, dout, self.mask.shape)  # a wrong dout would broadcast silently
        # dout where x > 0, else 0 (multiplied by the boolean "x > 0"); a new array: the
        # book's version zeroed the caller's dout in place
        return dout * ~self.mask


class LeakyRelu(Layer):
    """y = x for x > 0, else alpha * x; any shape.

    Parameters
    ----------
    alpha : float, default 0.01
        The slope for x <= 0.
    """

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__()
        self.alpha = float(alpha)
        self.mask: np.ndarray | None = None

    def config(self) -> dict[str, Any]:
        return {"alpha": self.alpha}

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_float(self, x)
        self.mask = x <= 0
        return np.where(self.mask, x * self.alpha, x)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        check_same_shape(self, dout, self.mask.shape)
        return np.where(self.mask, dout * self.alpha, dout)


class Sigmoid(Layer):
    """y = 1 / (1 + exp(-x)); dy/dx = y (1 - y), so only y is kept."""

    def __init__(self) -> None:
        super().__init__()
        self.out: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.out = sigmoid(check_float(self, x))
        return self.out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        check_same_shape(self, dout, self.out.shape)
        return dout * (1.0 - self.out) * self.out


class Tanh(Layer):
    """y = tanh(x); dy/dx = 1 - y^2."""

    def __init__(self) -> None:
        super().__init__()
        self.out: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.out = np.tanh(check_float(self, x))
        return self.out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        check_same_shape(self, dout, self.out.shape)
        return dout * (1.0 - self.out**2)
