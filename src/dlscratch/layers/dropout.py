"""Dropout (Srivastava et al., 2014), the regulariser of chapter 6."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlscratch.layers.base import Layer, check_float, check_same_shape


class Dropout(Layer):
    """Drops each unit with probability dropout_ratio while training.  Any shape in, the same out.

    As the book (the default):  training y = x * mask;  test y = x * (1 - dropout_ratio).
    inverted=True:  training y = x * mask / (1 - dropout_ratio);  test y = x.
    mask entries are True (kept) with probability 1 - dropout_ratio. Both forms give the
    same expected output; the inverted one, which torch and Keras use, leaves test time
    untouched, but scales the gradient by 1 / (1 - dropout_ratio), so the two train
    differently at the same learning rate. backward multiplies dout by what forward
    multiplied x by.

    ``fixed_mask``: None (a fresh mask every training forward), or a boolean array of the
    input's shape used instead, so a gradient check sees one fixed function.

    Parameters
    ----------
    dropout_ratio : float, default 0.5
        The probability of dropping a unit, in [0, 1).
    inverted : bool, default False
        Scale by 1 / (1 - dropout_ratio) while training instead of by (1 - dropout_ratio)
        at test time.
    seed : int, np.random.Generator or None, default None
        The layer's own generator (an int seeds one); None draws from NumPy's global state
        (``np.random.rand``), so ``np.random.seed`` repeats the book's runs.
    """

    uses_train_flag = True

    def __init__(self, dropout_ratio: float = 0.5, *, inverted: bool = False, seed: Any = None) -> None:
        super().__init__()
        if not 0 <= dropout_ratio < 1:
            raise ValueError(f"Dropout expected 0 <= dropout_ratio < 1, got {dropout_ratio!r}")
        self.dropout_ratio = float(dropout_ratio)
        self.inverted = bool(inverted)
        self._rng = np.random if seed is None else np.random.default_rng(seed)
        self.fixed_mask: np.ndarray | None = None
        self.mask: np.ndarray | None = None  # True where a unit is kept, as in the book
        self._train_scale: float = 1 / (1 - self.dropout_ratio) if self.inverted else 1.0
        self._trained = False  # whether the last forward drew a mask (backward needs it)

    def config(self) -> dict[str, Any]:
        return {"dropout_ratio": self.dropout_ratio, "inverted": self.inverted}

    def forward(self, x: np.ndarray, train_flg: bool = True) -> np.ndarray:
        x = check_float(self, x)
        self._trained = bool(train_flg)
        if not train_flg:
            # a Python float: NumPy keeps x's dtype
            return x if self.inverted else x * (1.0 - self.dropout_ratio)
        if self.fixed_mask is None:
            self.mask = self._rng.random(x.shape) > self.dropout_ratio
        else:
            if np.shape(self.fixed_mask) != x.shape:
                raise ValueError(
                    f"Dropout expected fixed_mask of the input's shape {x.shape}, "
                    f"got {np.shape(self.fixed_mask)}"
                )
            self.mask = np.asarray(self.fixed_mask, dtype=bool)
        return self._kept(x)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dx = dout times what forward multiplied x by (the mask, scaled if inverted)."""
        if not self._trained:
            return dout if self.inverted else dout * (1.0 - self.dropout_ratio)
        check_same_shape(self, dout, self.mask.shape)
        return self._kept(dout)

    def _kept(self, a: np.ndarray) -> np.ndarray:
        out = a * self.mask  # a new array: the caller's a is left alone
        if self.inverted:
            out *= self._train_scale
        return out
