"""Weight initialisation: the book's weight_init_std, as a number or a rule's name.

Every network makes its weights through random_weights, which also answers to a budget
(weight_budget): a network built from numbers a file or a command line gives is refused
as soon as its weights would outgrow what the caller can back, before they are allocated;
and a network whose weights are about to be overwritten (loaded from a file) gets zeros
instead of random draws.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Iterator
from contextlib import contextmanager
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


class WeightBudgetError(ValueError):
    """A network's weights would take more bytes than the weight_budget in force allows."""


class _Budget:
    def __init__(self, limit: int, draw: bool, what: str) -> None:
        self.left, self.limit, self.draw, self.what = limit, limit, draw, what

    def charge(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        size = math.prod(int(n) for n in shape) * dtype.itemsize  # Python ints: no overflow
        if size > self.left:
            raise WeightBudgetError(
                f"the network's weights would take more than {self.what} ({self.limit:,} bytes): "
                f"a weight of shape {tuple(int(n) for n in shape)} alone takes {size:,}"
            )
        self.left -= size


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("weight_budget", default=None)


@contextmanager
def weight_budget(limit: int, *, draw: bool = True, what: str = "the budget") -> Iterator[None]:
    """Networks built inside this block may make at most limit bytes of weights in all.

    random_weights raises WeightBudgetError (a ValueError saying "more than <what>") before
    allocating a weight that would pass the limit. draw=False: weights are zeros, and no
    random number is drawn (for weights a file is about to overwrite: np.random's global
    state and any seeded generator are left as they were).
    """
    token = _budget.set(_Budget(int(limit), draw, what))
    try:
        yield
    finally:
        _budget.reset(token)


def random_weights(rng: Any, shape: tuple[int, ...], scale: float, dtype: Any) -> np.ndarray:
    """scale * N(0, 1) samples of the given shape, as dtype (see weight_budget)."""
    dtype = np.dtype(dtype)
    budget = _budget.get()
    if budget is not None:
        budget.charge(shape, dtype)
        if not budget.draw:
            return np.zeros(shape, dtype)
    return (scale * rng.standard_normal(shape)).astype(dtype, copy=False)
