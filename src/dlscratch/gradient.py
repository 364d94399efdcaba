"""Numerical differentiation, the ground truth that backpropagation is checked against."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["gradient_check", "numerical_gradient"]


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
    flat_x, flat_grad = x.reshape(-1), grad.reshape(-1)
    if not np.shares_memory(flat_x, x):
        raise ValueError("numerical_gradient needs a contiguous x, so that f sees the perturbation")
    for i in range(flat_x.size):
        original = flat_x[i]
        flat_x[i] = original + h
        f_plus = float(f(x))
        flat_x[i] = original - h
        f_minus = float(f(x))
        flat_x[i] = original  # restore the exact bits, not original + h - h
        flat_grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def gradient_check(network: Any, x: np.ndarray, t: np.ndarray) -> dict[str, dict[str, float]]:
    """Compare backpropagation with numerical differentiation for every parameter.

    network: anything with ``gradient(x, t)`` and ``numerical_gradient(x, t)`` returning
    dicts of arrays keyed like ``network.params``. Returns, per parameter name,
    ``{"mean_abs_diff": ..., "max_rel_error": ...}``; the first is the book's table.
    """
    numerical = network.numerical_gradient(x, t)
    backprop = {k: np.array(v, copy=True) for k, v in network.gradient(x, t).items()}
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
