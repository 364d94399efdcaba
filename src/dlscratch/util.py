"""The helpers of the book's common/util.py: curve smoothing, shuffling, im2col and friends.

``from dlscratch.util import *`` gives a book script what ``from common.util import *`` did.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlscratch.layers.conv import col2im, conv_output_size, im2col

__all__ = ["col2im", "conv_output_size", "im2col", "shuffle_dataset", "smooth_curve"]


def smooth_curve(x: Any, window: int = 11, beta: float = 2.0) -> np.ndarray:
    """A noisy curve (a loss per iteration) smoothed for plotting; as long as x.

    Each value becomes the average of the `window` values centred on it, weighted by a
    Kaiser window with shape parameter `beta`: the book's 11 and 2. The curve is mirrored
    past both ends so that the first and last values have whole windows too: the start
    about x[0], the end about a point just past x[-1], as the book's version does.
    x: 1-D, at least `window` values. Returns a float array of x's length.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or len(x) < window:
        raise ValueError(
            f"smooth_curve expected a 1-D curve of at least {window} values, got shape {x.shape}"
        )
    weights = np.kaiser(window, beta)
    weights /= weights.sum()
    reach = window - 1  # the mirrored values on each side
    padded = np.concatenate([x[reach:0:-1], x, x[: -reach - 1 : -1]])
    smoothed = np.convolve(weights, padded, mode="valid")  # one value per whole window
    half = window // 2
    return smoothed[half : len(smoothed) - half]


def shuffle_dataset(x: np.ndarray, t: np.ndarray, *, rng: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """x and t reordered by one random permutation of their samples (new arrays).

    x: (N, ...) samples, t: (N, ...) labels. rng: a np.random.Generator, or None for
    np.random's global state (``np.random.permutation``, as the book).
    """
    x, t = np.asarray(x), np.asarray(t)
    if len(x) != len(t):
        raise ValueError(f"shuffle_dataset got {len(x)} samples but {len(t)} labels")
    permutation = (np.random if rng is None else rng).permutation(len(x))
    return x[permutation], t[permutation]
