"""Classes and probabilities from a network's scores; the confusion matrix and per-class accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from dlscratch import TwoLayerNet
from dlscratch.functions import softmax
from dlscratch.metrics import confusion_matrix, per_class_accuracy, predict_classes, predict_probabilities


def test_probabilities_are_the_softmax_of_the_scores_in_any_batch_size(rng):
    network = TwoLayerNet(6, 5, 4, weight_init_std=1.0, seed=0)
    x = rng.standard_normal((23, 6))
    expected = softmax(network.predict(x))
    for batch_size in (None, 1, 7, 100):
        probabilities = predict_probabilities(network, x, batch_size)
        np.testing.assert_allclose(probabilities, expected, rtol=1e-12)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    classes = predict_classes(network, x, 5)
    assert classes.dtype == np.int64 and np.array_equal(classes, expected.argmax(axis=1))
    assert np.mean(classes == 2) == network.accuracy(x, np.full(23, 2))


def test_predict_probabilities_refuses_no_samples():
    with pytest.raises(ValueError, match="at least one sample"):
        predict_probabilities(TwoLayerNet(6, 5, 4), np.zeros((0, 6)))


def test_the_confusion_matrix_counts_each_pair_and_rows_give_each_class_accuracy():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    predicted = np.array([0, 1, 0, 1, 1, 2, 0, 2, 2])
    matrix = confusion_matrix(labels, predicted, 4)
    assert matrix.tolist() == [[2, 1, 0, 0], [0, 2, 0, 0], [1, 0, 3, 0], [0, 0, 0, 0]]
    accuracy = per_class_accuracy(matrix)
    np.testing.assert_allclose(accuracy[:3], [2 / 3, 1.0, 3 / 4])
    assert np.isnan(accuracy[3])  # a class without samples has no accuracy
    assert np.trace(matrix) / matrix.sum() == np.mean(labels == predicted)


@pytest.mark.parametrize(
    ("labels", "predicted", "message"),
    [
        ([0, 1], [0], "of one shape"),
        ([[0, 1]], [[0, 1]], "of one shape"),
        ([0, 3], [0, 1], r"labels must be class indices 0..2, got 0..3"),
        ([0, 1], [-1, 1], r"predictions must be class indices 0..2, got -1..1"),
    ],
)
def test_bad_confusion_input_is_refused(labels, predicted, message):
    with pytest.raises(ValueError, match=message):
        confusion_matrix(np.array(labels), np.array(predicted), 3)
