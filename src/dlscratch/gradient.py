"""Numerical differentiation, the ground truth that backpropagation is checked against."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["gradient_check", "numerical_gradient", "numerical_gradient_1d", "numerical_gradient_2d"]


def numerical_gradient(f: Callable[[np.ndarray], Any], x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Central-difference gradient of the scalar f at x: (f(x + h) - f(x - h)) / 2h per element.

    x: a float64 array of any shape, perturbed in place one element at a time (so f may
    read x itself, as the book's networks do) and restored exactly afterwards.
    Returns an array shaped like x.

    float32 is refused: h = 1e-4 moves a float32 value by only a few units of its last
    place, so the difference would be mostly rounding noise.
    """
    if not isinstance(x, np.ndarray):
        raise ValueError(f"numerical_gradient expected x as a NumPy array, got {type(x).__name__}")
    if x.dtype != np.float64:
        raise ValueError(
            f"numerical_gradient needs a float64 x, got {x.dtype}: with h = {h} the result would be "
            "rounding noise (float32) or wrong (integers). Use x.astype(np.float64)."
        )
    grad = np.zeros_like(x)
    grad.reshape(-1)[:] = _central_differences(f, x, np.arange(x.size), h)
    return grad


def numerical_gradient_1d(f: Callable[[np.ndarray], Any], x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """numerical_gradient for a 1-D x (the book's _numerical_gradient_1d): shape (D,) in and out."""
    if np.ndim(x) != 1:
        raise ValueError(f"numerical_gradient_1d expected a 1-D x, got shape {np.shape(x)}")
    return numerical_gradient(f, x, h)


def numerical_gradient_2d(f: Callable[[np.ndarray], Any], X: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """The gradient of f at each row of X, f given one row at a time (the book's numerical_gradient_2d).

    X: (N, D), each row a point at which f (a function of one (D,) vector) is
    differentiated; returns (N, D). A 1-D X is one point: numerical_gradient_1d.
    """
    if np.ndim(X) == 1:
        return numerical_gradient_1d(f, X, h)
    if np.ndim(X) != 2:
        raise ValueError(f"numerical_gradient_2d expected X of shape (N, D) or (D,), got {np.shape(X)}")
    grad = np.zeros_like(X)
    for i, row in enumerate(X):  # each row a view into X, so f sees X change
        grad[i] = numerical_gradient_1d(f, row, h)
    return grad


def _central_differences(
    f: Callable[[np.ndarray], Any], x: np.ndarray, indices: np.ndarray, h: float
) -> np.ndarray:
    """(f(x + h e_i) - f(x - h e_i)) / 2h for each flat index i, x restored exactly."""
    flat_x = x.reshape(-1)
    if not np.shares_memory(flat_x, x):
        raise ValueError("numerical_gradient needs a contiguous x, so that f sees the perturbation")
    result = np.empty(len(indices))
    for n, i in enumerate(indices):
        original = flat_x[i]
        flat_x[i] = original + h
        f_plus = float(f(x))
        flat_x[i] = original - h
        f_minus = float(f(x))
        flat_x[i] = original  # restore the exact bits, not original + h - h
        result[n] = (f_plus - f_minus) / (2 * h)
    return result


def gradient_check(
    network: Any,
    x: np.ndarray,
    t: np.ndarray,
    *,
    max_entries: int | None = None,
    seed: int = 0,
    h: float = 1e-4,
) -> dict[str, dict[str, float]]:
    """Compare backpropagation with numerical differentiation for every parameter.

    network: anything with ``gradient(x, t)`` and ``numerical_gradient(x, t)`` returning
    dicts of arrays keyed like ``network.params``. Returns, per parameter name,
    ``{"mean_abs_diff": ..., "max_rel_error": ...}``; the first is the book's table.

    max_entries: differentiate numerically only that many randomly chosen entries of
    each parameter (seeded), through ``network.loss``: a convolutional net has hundreds
    of thousands of weights, each costing two forward passes. h: the step used then
    (max pooling switches its winner when two inputs are closer than the step, so
    convolutional nets check better with h = 1e-6 in float64).
    """
    backprop = {k: np.array(v, copy=True).reshape(-1) for k, v in network.gradient(x, t).items()}
    if max_entries is None:
        numerical = {k: v.reshape(-1) for k, v in network.numerical_gradient(x, t).items()}
    else:
        numerical = _sampled_numerical_gradient(network, x, t, max_entries, seed, h, backprop)
    report = {}
    for key, num in numerical.items():
        diff = np.abs(backprop[key] - num)
        # relative to the gradients' own size; below 1e-8 both are noise, so the error counts as absolute
        scale = np.maximum(np.abs(backprop[key]) + np.abs(num), 1e-8)
        report[key] = {
            "mean_abs_diff": float(np.mean(diff)),
            "max_rel_error": float(np.max(diff / scale)),
        }
    return report


def _sampled_numerical_gradient(
    network: Any,
    x: np.ndarray,
    t: np.ndarray,
    max_entries: int,
    seed: int,
    h: float,
    backprop: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Numerical gradients at a random subset of each parameter's entries; the matching
    entries of ``backprop`` are cut down to the same subset, in place of the dict."""
    rng = np.random.default_rng(seed)

    def loss(_: np.ndarray) -> float:
        return network.loss(x, t, train_flg=True)

    numerical = {}
    for key, param in network.params.items():
        indices = np.sort(rng.choice(param.size, min(max_entries, param.size), replace=False))
        numerical[key] = _central_differences(loss, param, indices, h)
        backprop[key] = backprop[key][indices]
    return numerical
