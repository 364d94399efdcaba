"""The output layer that turns scores into a loss."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlscratch.functions import as_class_indices, cross_entropy_of_indices
from dlscratch.layers.base import Layer, check_float


class SoftmaxWithLoss(Layer):
    """Softmax followed by the cross-entropy error, mean over the batch.

    exact=True (the default): the loss is log(sum(exp(x))) - x[t] (shifted by the row
    maximum), the exact value of -log(softmax(x)[t]). exact=False: -log(softmax(x)[t] + 1e-7),
    the book's, which disagrees with its own gradient once a probability drops near 1e-7
    (a gradient check of a confident network then fails) and never exceeds -log(1e-7) = 16.1.

    forward(x, t): x scores (N, C); t one-hot (N, C) or class indices (N,) (or (N, 1)).
    Returns the loss. backward(dout=1): dL/dx = dout * (softmax(x) - onehot(t)) / N, (N, C).

    Parameters
    ----------
    exact : bool, default True
        Compute the loss exactly; False adds the book's 1e-7 inside the log.
    """

    def __init__(self, *, exact: bool = True) -> None:
        super().__init__()
        self.exact = bool(exact)
        self.loss: float | None = None
        self.y: np.ndarray | None = None  # softmax output
        self.t: np.ndarray | None = None  # labels as given
        self._t_index: np.ndarray | None = None

    def forward(self, x: np.ndarray, t: np.ndarray) -> float:
        x = check_float(self, x)
        if x.ndim != 2 or len(x) == 0:
            raise ValueError(f"SoftmaxWithLoss expected scores of shape (N, C) with N > 0, got {x.shape}")
        self.t = t
        self._t_index = as_class_indices(x, t)
        rows = np.arange(len(x))
        # each row's maximum, read at its argmax: the same value as x.max(axis=1), which
        # numpy computes slowly along rows as short as the number of classes
        shifted = x - x[rows, x.argmax(axis=1)][:, None]
        picked = shifted[rows, self._t_index]
        # one (N, C) array becomes exp(shifted), then the softmax, in place
        y = np.exp(shifted, out=shifted)
        sums = y.sum(axis=1, keepdims=True)
        y /= sums
        self.y = y
        if self.exact:
            self.loss = float((np.log(sums[:, 0]) - picked).sum()) / len(x)  # the mean over the batch
        else:
            self.loss = cross_entropy_of_indices(y, self._t_index)
        return self.loss

    def config(self) -> dict[str, Any]:
        return {"exact": self.exact}

    def backward(self, dout: float | np.ndarray = 1) -> np.ndarray:
        batch_size = len(self.y)
        dx = self.y.copy()  # a new array: self.y stays the softmax
        dx[np.arange(batch_size), self._t_index] -= 1
        dx /= batch_size  # (y - onehot(t)) / N, rounded as the book's
        if not (np.ndim(dout) == 0 and dout == 1):
            dx *= np.asarray(dout, dtype=dx.dtype)
        return dx
