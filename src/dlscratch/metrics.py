"""What a trained classifier says about data: its classes and their probabilities, and
where it goes wrong (a confusion matrix, accuracy per class).

A network's ``predict`` gives scores before the softmax, as the book's does; these give
what scikit-learn's ``predict`` and ``predict_proba`` give.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlscratch.functions import softmax

__all__ = ["confusion_matrix", "per_class_accuracy", "predict_classes", "predict_probabilities"]


def predict_probabilities(network: Any, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
    """The probability of each class for each sample: softmax(network.predict(x)), test mode.

    Parameters
    ----------
    network
        Anything with ``predict(x, train_flg=False)`` giving scores (N, classes).
    x
        Samples (N, ...) as the network takes them, N >= 1.
    batch_size
        Samples per forward pass (default: the network's ``accuracy_batch_size``, else
        1000), so a whole data set is never held as activations.

    Returns
    -------
    numpy.ndarray
        (N, classes), each row summing to 1.
    """
    if len(x) == 0:
        raise ValueError("predict_probabilities needs at least one sample, got an empty array")
    size = batch_size or getattr(network, "accuracy_batch_size", 1000)
    parts = [
        softmax(network.predict(x[start : start + size], train_flg=False)) for start in range(0, len(x), size)
    ]
    return np.concatenate(parts)


def predict_classes(network: Any, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
    """The most probable class of each sample, as scikit-learn's ``predict`` gives.

    Parameters
    ----------
    network, x, batch_size
        As for predict_probabilities.

    Returns
    -------
    numpy.ndarray
        int64 (N,): class indices.
    """
    return predict_probabilities(network, x, batch_size).argmax(axis=1)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts of each (true class, predicted class) pair.

    Parameters
    ----------
    labels, predicted
        Class indices (N,), each in 0..num_classes-1.
    num_classes
        The number of classes C.

    Returns
    -------
    numpy.ndarray
        int64 (C, C): entry [i, j] counts samples of class i predicted as j. The diagonal
        holds the correct predictions; row i sums to the number of samples of class i.

    Raises
    ------
    ValueError
        For shapes that differ or are not (N,), or an index outside 0..C-1.
    """
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    if labels.shape != predicted.shape or labels.ndim != 1:
        raise ValueError(
            f"confusion_matrix expected labels and predictions of one shape (N,), got "
            f"{labels.shape} and {predicted.shape}"
        )
    for name, values in (("labels", labels), ("predictions", predicted)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"{name} must be class indices 0..{num_classes - 1}, got {values.min()}..{values.max()}"
            )
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    """The accuracy of each class: the fraction of its samples predicted right.

    Parameters
    ----------
    matrix
        A confusion matrix (C, C), as confusion_matrix gives.

    Returns
    -------
    numpy.ndarray
        float64 (C,): the diagonal over the row sums; NaN for a class without samples.
    """
    matrix = np.asarray(matrix)
    totals = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(matrix) / totals, np.nan)
