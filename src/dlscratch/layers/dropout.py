"""Dropout (Srivastava et al., 2014), the regulariser of chapter 6, in its inverted form."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlscratch.layers.base import Layer, check_float, check_same_shape


class Dropout(Layer):
    """Training: y = x * mask / (1 - dropout_ratio), each mask entry True with probability
    1 - dropout_ratio. Test: y = x.  Any shape in, the same shape out.

    The kept units are scaled up while training ("inverted" dropout) so that test time needs
    no rescaling; the book instead multiplies by (1 - dropout_ratio) at test time. The
    expected output is the same either way.

    seed: an int or np.random.Generator gives the layer its own generator; None draws from
        NumPy's global state, so ``np.random.seed`` makes runs repeatable, as in the book.
    fixed_mask: None (a fresh mask every training forward), or a boolean array of the
        input's shape used instead, so a gradient check sees one fixed function.
    """

    uses_train_flag = True

    def __init__(self, dropout_ratio: float = 0.5, *, seed: Any = None) -> None:
        super().__init__()
        if not 0 <= dropout_ratio < 1:
            raise ValueError(f"Dropout expected 0 <= dropout_ratio < 1, got {dropout_ratio!r}")
        self.dropout_ratio = float(dropout_ratio)
        self._rng = np.random if seed is None else np.random.default_rng(seed)
        self.fixed_mask: np.ndarray | None = None
        self.mask: np.ndarray | None = None  # True where a unit is kept, as in the book
        self._scale: np.floating | None = None  # None after a test-mode forward

    def config(self) -> dict[str, Any]:
        return {"dropout_ratio": self.dropout_ratio}

    def forward(self, x: np.ndarray, train_flg: bool = True) -> np.ndarray:
        x = check_float(self, x)
        if not train_flg:
            self._scale = None
            return x
        if self.fixed_mask is None:
            self.mask = self._rng.random(x.shape) >= self.dropout_ratio
        else:
            if np.shape(self.fixed_mask) != x.shape:
                raise ValueError(
                    f"Dropout expected fixed_mask of the input's shape {x.shape}, "
                    f"got {np.shape(self.fixed_mask)}"
                )
            self.mask = np.asarray(self.fixed_mask, dtype=bool)
        self._scale = x.dtype.type(1 / (1 - self.dropout_ratio))  # x's dtype: no upcast
        return self._apply_mask(x)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dx = dout * mask / (1 - dropout_ratio) after training, dout itself after test."""
        if self._scale is None:
            return dout
        check_same_shape(self, dout, self.mask.shape)
        return self._apply_mask(dout)

    def _apply_mask(self, a: np.ndarray) -> np.ndarray:
        out = a * self.mask  # a new array: the caller's a is left alone
        out *= self._scale
        return out
