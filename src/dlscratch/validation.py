"""A validation split carved from the training set, and early stopping on its accuracy.

The test set is for the end: choosing when to stop, or which epoch's weights to keep, by
looking at test accuracy makes the final test accuracy an optimistic number. Hold out part
of the training set instead (``split_validation``), watch accuracy on it, and stop once it
has not improved for a while (``EarlyStopping``); the Trainer does both
(``Trainer(validation=0.1, early_stopping=5)``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["EarlyStopping", "split_validation"]


def split_validation(
    x: np.ndarray, t: np.ndarray, fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out about `fraction` of every class of a training set for validation.

    Parameters
    ----------
    x
        Samples, (N, ...).
    t
        Labels: class indices (N,) or one-hot (N, C).
    fraction
        Strictly between 0 and 1. Each class gives round(fraction * its count) samples,
        at least one of every class with two or more.
    seed
        Seeds the permutation that picks them: the same seed, the same split.

    Returns
    -------
    tuple
        (x_train, t_train, x_val, t_val): new arrays, each keeping the original order of
        its samples; the validation set has the training set's class balance.

    Raises
    ------
    ValueError
        For a fraction outside (0, 1), labels that do not match x, or a split that would
        leave one part empty.
    """
    if not (isinstance(fraction, (int, float)) and 0 < fraction < 1):
        raise ValueError(f"the validation fraction must lie strictly between 0 and 1, got {fraction!r}")
    t_array = np.asarray(t)
    if len(x) != len(t_array):
        raise ValueError(f"split_validation got {len(x)} samples but {len(t_array)} labels")
    labels = t_array.argmax(axis=1) if t_array.ndim == 2 else t_array
    order = np.random.default_rng(seed).permutation(len(labels))
    held = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = order[labels[order] == label]  # this class's samples, in permuted order
        count = round(fraction * len(members))
        if len(members) >= 2:
            count = min(max(count, 1), len(members) - 1)
        held[members[:count]] = True
    if held.all() or not held.any():
        raise ValueError(
            f"a validation fraction of {fraction} of {len(labels)} samples leaves "
            f"{'no training' if held.all() else 'no validation'} samples"
        )
    return x[~held], t_array[~held], x[held], t_array[held]


class EarlyStopping:
    """Stop when validation accuracy has not improved for a while; keep the best weights.

    ``update`` takes each evaluation's validation accuracy with the network's arrays
    (params and buffers, name -> array) and copies them when the accuracy is a new best;
    ``stopped`` turns true after `patience` evaluations in a row without one; ``restore``
    copies the best weights back. The progress (best accuracy, its iteration, evaluations
    since, the copies) is part of the Trainer's state, so a resumed run stops where an
    unbroken one would.

    Parameters
    ----------
    patience
        Evaluations (epochs) without improvement that end training, at least 1.
    min_delta
        An improvement is an accuracy above the best so far by more than this (>= 0).

    Raises
    ------
    ValueError
        For a patience below 1 or a negative or non-finite min_delta.
    """

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)) or patience < 1:
            raise ValueError(f"early stopping needs a patience of at least 1 evaluation, got {patience!r}")
        if not (isinstance(min_delta, (int, float)) and math.isfinite(min_delta) and min_delta >= 0):
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.best_acc: float | None = None
        self.best_iteration: int | None = None
        self.wait = 0  # evaluations since the best
        self.best_arrays: dict[str, np.ndarray] = {}

    @property
    def stopped(self) -> bool:
        """True once `patience` evaluations in a row brought no improvement."""
        return self.wait >= self.patience

    def settings(self) -> dict[str, Any]:
        return {"patience": self.patience, "min_delta": self.min_delta}

    def update(self, accuracy: float, iteration: int, arrays: dict[str, np.ndarray]) -> None:
        """Take one evaluation's validation accuracy, made after `iteration` steps."""
        if self.best_acc is None or accuracy > self.best_acc + self.min_delta:
            self.best_acc, self.best_iteration, self.wait = float(accuracy), int(iteration), 0
            for name, array in arrays.items():
                kept = self.best_arrays.get(name)
                if kept is None or kept.shape != array.shape or kept.dtype != array.dtype:
                    self.best_arrays[name] = array.copy()
                else:
                    np.copyto(kept, array)
        else:
            self.wait += 1

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Copy the best weights into arrays (in place: layers and optimizer stay connected)."""
        for name, array in arrays.items():
            if name in self.best_arrays:
                np.copyto(array, self.best_arrays[name])

    def state_dict(self) -> dict[str, Any]:
        return {
            **self.settings(),
            "best_acc": self.best_acc,
            "best_iteration": self.best_iteration,
            "wait": self.wait,
            "best": {name: array.copy() for name, array in self.best_arrays.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from state_dict()'s progress (checked by dlscratch.train_state)."""
        self.best_acc, self.best_iteration, self.wait = (
            state["best_acc"],
            state["best_iteration"],
            state["wait"],
        )
        self.best_arrays = {name: np.array(array) for name, array in state["best"].items()}

    def __repr__(self) -> str:
        return f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta})"
