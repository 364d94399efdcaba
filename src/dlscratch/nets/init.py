"""Weight initialisation: the book's weight_init_std, as a number or a rule's name."""

from __future__ import annotations

from typing import Any

import numpy as np

WeightInitStd = float | str

_RULES = {
    # He et al.: keeps ReLU activations' variance steady layer after layer
    "he": 2.0,
    "relu": 2.0,
    # Xavier/Glorot as the book simplifies it: sqrt(1 / n)
    "xavier": 1.0,
    "sigmoid": 1.0,
}


def init_scale(weight_init_std: WeightInitStd, fan_in: int) -> float:
    """The standard deviation of a layer's initial weights.

    weight_init_std: a positive number, or 'he'/'relu' (sqrt(2 / fan_in)) or
    'xavier'/'sigmoid' (sqrt(1 / fan_in)); fan_in: inputs per output unit.
    """
    if isinstance(weight_init_std, str):
        key = weight_init_std.lower()
        if key not in _RULES:
            raise ValueError(
                f"weight_init_std must be a number or one of {sorted(_RULES)}, got {weight_init_std!r}"
            )
        return float(np.sqrt(_RULES[key] / fan_in))
    scale = float(weight_init_std)
    if not np.isfinite(scale) or scale < 0:
        raise ValueError(f"weight_init_std must be a finite number >= 0, got {weight_init_std!r}")
    return scale


def as_rng(seed: Any = None) -> Any:
    """A random source with standard_normal/random/choice/permutation.

    None gives NumPy's global generator, so ``np.random.seed(0)`` works as in the book;
    an int seeds a fresh ``np.random.Generator``; a Generator is used as is.
    """
    if seed is None:
        return np.random
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def check_dtype(dtype: Any) -> np.dtype:
    """float32 or float64 as a NumPy dtype; ValueError for anything else."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def random_weights(rng: Any, shape: tuple[int, ...], scale: float, dtype: Any) -> np.ndarray:
    """scale * N(0, 1) samples of the given shape, as dtype."""
    return (scale * rng.standard_normal(shape)).astype(dtype, copy=False)
