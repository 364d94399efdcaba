"""The output layer that turns scores into a loss."""

from __future__ import annotations

import numpy as np

from dlscratch.functions import as_class_indices
from dlscratch.layers.base import Layer, check_float


class SoftmaxWithLoss(Layer):
    """Softmax followed by the cross-entropy error, mean over the batch.

    The loss is computed as log(sum(exp(x))) - x[t] (shifted by the row maximum), the
    exact value of -log(softmax(x)[t]). The book adds 1e-7 inside the log instead, which
    makes the loss disagree with its own gradient once a probability drops near 1e-7.

    forward(x, t): x scores (N, C); t one-hot (N, C) or class indices (N,). Returns the loss.
    backward(dout=1): dL/dx = dout * (softmax(x) - onehot(t)) / N, shape (N, C).
    """

    def __init__(self) -> None:
        super().__init__()
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
        self.loss = float((np.log(sums[:, 0]) - picked).sum()) / len(x)  # the mean over the batch
        return self.loss

    def backward(self, dout: float | np.ndarray = 1) -> np.ndarray:
        batch_size = len(self.y)
        scale = np.asarray(dout, dtype=self.y.dtype) / batch_size
        dx = self.y * scale  # a new array: self.y stays the softmax
        dx[np.arange(batch_size), self._t_index] -= scale
        return dx
