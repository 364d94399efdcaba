"""Pure array functions of the book: activations, softmax and losses.

Every function takes and returns NumPy arrays and keeps the input's floating dtype
(float32 in, float32 out). None of them modifies its arguments.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "cross_entropy_error",
    "identity_function",
    "mean_squared_error",
    "relu",
    "relu_grad",
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "softmax_loss",
    "step_function",
    "sum_squared_error",
]


def _as_float(x: np.ndarray | float) -> np.ndarray:
    """x as a floating array: float inputs keep their dtype, integers become float64."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise ValueError(f"expected an array of numbers, got dtype {x.dtype}")
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


def identity_function(x: np.ndarray) -> np.ndarray:
    """y = x (the output activation of regression)."""
    return x


def step_function(x: np.ndarray) -> np.ndarray:
    """y = 1 where x > 0 else 0, as int64 like the book's ``np.array(x > 0, dtype=int)``."""
    return np.array(np.asarray(x) > 0, dtype=np.int64)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """y = 1 / (1 + exp(-x)), any shape.

    Computed from z = exp(-|x|), which never overflows: 1 / (1 + z) for x >= 0 and
    z / (1 + z) for x < 0 are the same function, without the book's overflow warning.
    """
    x = _as_float(x)
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, z) / (1.0 + z)


def sigmoid_grad(x: np.ndarray) -> np.ndarray:
    """dy/dx of the sigmoid at x: y * (1 - y)."""
    y = sigmoid(x)
    return (1.0 - y) * y


def relu(x: np.ndarray) -> np.ndarray:
    """y = max(0, x), any shape."""
    return np.maximum(_as_float(x), 0)


def relu_grad(x: np.ndarray) -> np.ndarray:
    """dy/dx of relu: 1 where x >= 0 else 0, as the book's function.

    At x = 0 relu has no derivative; the book's relu_grad says 1 there while its Relu
    layer passes no gradient (mask x <= 0). Both are kept as the book has them.
    """
    x = _as_float(x)
    return (x >= 0).astype(x.dtype)


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis; 1-D input is one vector, (N, C) is a batch.

    The row maximum is subtracted first: softmax(x) = softmax(x - c) and exp no longer
    overflows for large scores.
    """
    x = _as_float(x)
    shifted = x - x.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def sum_squared_error(y: np.ndarray, t: np.ndarray) -> float:
    """0.5 * sum((y - t)^2) over every element, as the book defines it."""
    y, t = _as_float(y), _as_float(t)
    if y.shape != t.shape:
        raise ValueError(f"sum_squared_error expected y and t of the same shape, got {y.shape} and {t.shape}")
    return float(0.5 * np.sum((y - t) ** 2))


# The book's chapter 4 calls the same function mean_squared_error.
mean_squared_error = sum_squared_error


def as_class_indices(y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Class indices (N,) from labels, validated against the scores y (N, C).

    t: one-hot (N, C), class indices (N,), or class indices as a column (N, 1) - the
    book's chapter 7 gradient check writes ``np.array([1]).reshape((1, 1))``.
    """
    t = np.asarray(t)
    if t.shape == y.shape:
        return t.argmax(axis=1)
    if t.ndim == 2 and t.shape == (len(y), 1):
        t = t[:, 0]
    if t.shape != y.shape[:1]:
        raise ValueError(
            f"labels must be one-hot of shape {y.shape} or class indices of shape {y.shape[:1]} "
            f"(or {(len(y), 1)}), got shape {t.shape}"
        )
    if t.dtype.kind not in "iu":  # not an integer type
        if not np.all(np.mod(t, 1) == 0):
            raise ValueError(f"class-index labels must be whole numbers, got dtype {t.dtype}")
        t = t.astype(np.int64)
    if t.size and (t.min() < 0 or t.max() >= y.shape[1]):
        raise ValueError(
            f"class-index labels must lie in [0, {y.shape[1] - 1}], got values from {t.min()} to {t.max()}"
        )
    return t


def cross_entropy_error(y: np.ndarray, t: np.ndarray) -> float:
    """Mean over the batch of -log(y[t]).

    y: probabilities (N, C), or (C,) taken as a batch of one. t: one-hot labels shaped like
    y, or class indices (N,) / a scalar index. A tiny 1e-7 keeps log(0) finite, as in the book.
    """
    y = _as_float(y)
    if y.ndim == 1:
        y = y.reshape(1, -1)
        t = np.asarray(t).reshape(1, -1) if np.ndim(t) == 1 else np.reshape(t, 1)
    if y.ndim != 2:
        raise ValueError(f"cross_entropy_error expected y of shape (N, C) or (C,), got {y.shape}")
    if len(y) == 0:
        raise ValueError("cross_entropy_error got an empty batch")
    return cross_entropy_of_indices(y, as_class_indices(y, t))


def cross_entropy_of_indices(y: np.ndarray, t: np.ndarray) -> float:
    """Mean of -log(y[i, t[i]]) for probabilities y (N, C) and class indices t (N,).

    The 1e-7 keeps log finite when a probability underflows to 0, as in the book.
    """
    picked = y[np.arange(len(y)), t]
    return float(-np.log(picked + 1e-7).mean())


def softmax_loss(X: np.ndarray, t: np.ndarray) -> float:
    """cross_entropy_error(softmax(X), t): the loss of scores X (N, C) or (C,), as the book's."""
    return cross_entropy_error(softmax(X), t)
