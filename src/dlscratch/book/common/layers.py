"""The book's common/layers.py: dlscratch's layers, with the book's loss and batch norm arithmetic."""

from typing import Any

import numpy as np

from dlscratch import layers as _layers
from dlscratch.book.common.functions import *  # noqa: F403 (the book's layers module re-exports them)
from dlscratch.book.common.functions import __all__ as _function_names
from dlscratch.layers import Affine, Convolution, Dropout, Pooling, Relu, Sigmoid, col2im, im2col

__all__ = [
    *_function_names,
    "Affine",
    "BatchNormalization",
    "Convolution",
    "Dropout",
    "Pooling",
    "Relu",
    "Sigmoid",
    "SoftmaxWithLoss",
    "col2im",
    "im2col",
]


class SoftmaxWithLoss(_layers.SoftmaxWithLoss):
    """dlscratch's SoftmaxWithLoss with the book's loss: -log(y[t] + 1e-7) (exact=False)."""

    def __init__(self) -> None:
        super().__init__(exact=False)


class BatchNormalization(_layers.BatchNormalization):
    """dlscratch's BatchNormalization with the book's statistics: eps 1e-6, running_var from
    zeros, following the biased batch variance (book_statistics=True); 4-D input normalised
    per pixel when gamma has one entry per pixel, as the book's flattening does.

    x: (N, D), or (N, C, H, W) with gamma of C or C * H * W entries; returns x's shape.

    Parameters
    ----------
    gamma, beta : ndarray, shape (D,), (C,) or (C * H * W,)
        Scale and shift, floating point, as dlscratch's layer takes them.
    momentum : float, default 0.9
        The share of the running statistics that a training batch keeps, in [0, 1].
    running_mean, running_var : ndarray or None, default None
        Starting statistics of gamma's shape; None: zeros for both, as in the book.

    Raises
    ------
    ValueError
        For gamma and beta not of one shape (D,), a momentum outside [0, 1], or running
        statistics of another shape.
    """

    def __init__(
        self,
        gamma: np.ndarray,
        beta: np.ndarray,
        momentum: float = 0.9,
        running_mean: Any = None,
        running_var: Any = None,
    ) -> None:
        super().__init__(gamma, beta, momentum, running_mean, running_var, eps=1e-6, book_statistics=True)
