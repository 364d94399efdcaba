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
        shifted = x - x.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        sums = exp.sum(axis=1, keepdims=True)
        self.y = exp / sums
        picked = shifted[np.arange(len(x)), self._t_index]
        self.loss = float(np.mean(np.log(sums[:, 0]) - picked))
        return self.loss

    def backward(self, dout: float | np.ndarray = 1) -> np.ndarray:
        batch_size = len(self.y)
        dx = self.y.copy()
        dx[np.arange(batch_size), self._t_index] -= 1
        dx *= np.asarray(dout, dtype=dx.dtype) / batch_size
        return dx
