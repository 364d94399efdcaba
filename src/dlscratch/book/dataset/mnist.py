"""The book's dataset/mnist.py: load_mnist reads MNIST through dlscratch.datasets.

The files are looked for, and downloaded if missing, where dlscratch keeps its data sets
($DLSCRATCH_DATA_DIR, else the user's cache folder), not in the book's dataset folder.
"""

from __future__ import annotations

import numpy as np

from dlscratch import datasets

__all__ = ["img_dim", "img_size", "key_file", "load_mnist", "test_num", "train_num"]

key_file = {
    "train_img": "train-images-idx3-ubyte.gz",
    "train_label": "train-labels-idx1-ubyte.gz",
    "test_img": "t10k-images-idx3-ubyte.gz",
    "test_label": "t10k-labels-idx1-ubyte.gz",
}
train_num = 60000
test_num = 10000
img_dim = (1, 28, 28)
img_size = 784


def load_mnist(
    normalize: bool = True, flatten: bool = True, one_hot_label: bool = False
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """dlscratch.datasets.load_mnist with the book's label types: uint8 class indices, or
    float64 one-hot rows (dlscratch's own gives int64 indices and float32 rows)."""
    (x_train, t_train), (x_test, t_test) = datasets.load_mnist(normalize=normalize, flatten=flatten)
    return (x_train, _labels(t_train, one_hot_label)), (x_test, _labels(t_test, one_hot_label))


def _labels(t: np.ndarray, one_hot: bool) -> np.ndarray:
    if not one_hot:
        return t.astype(np.uint8)
    rows = np.zeros((len(t), 10))
    rows[np.arange(len(t)), t] = 1
    return rows
