import warnings

import numpy as np
import pytest

from dlscratch.functions import (
    cross_entropy_error,
    identity_function,
    mean_squared_error,
    relu,
    relu_grad,
    sigmoid,
    sigmoid_grad,
    softmax,
    softmax_loss,
    step_function,
    sum_squared_error,
)


def test_book_values():
    x = np.array([-1.0, 1.0, 2.0])
    assert np.array_equal(step_function(x), [0, 1, 1])
    np.testing.assert_allclose(sigmoid(x), [0.26894142, 0.73105858, 0.88079708], rtol=1e-7)
    assert np.array_equal(relu(x), [0.0, 1.0, 2.0])
    assert identity_function(x) is x


def test_sigmoid_is_exact_and_quiet_for_extremes():
    x = np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow RuntimeWarning would fail the test
        y = sigmoid(x)
    np.testing.assert_allclose(y[1:4], 1 / (1 + np.exp(-x[1:4])), rtol=1e-15)
    assert y[0] == 0.0 and y[-1] == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    x = np.linspace(-3, 3, 12, dtype=dtype).reshape(3, 4)
    for f in (sigmoid, sigmoid_grad, relu, relu_grad, softmax):
        assert f(x).dtype == dtype, f.__name__


def test_gradients_match_finite_differences():
    x = np.linspace(-4, 4, 17) + 0.01  # avoid relu's kink at 0
    h = 1e-6
    np.testing.assert_allclose(sigmoid_grad(x), (sigmoid(x + h) - sigmoid(x - h)) / (2 * h), rtol=1e-6)
    np.testing.assert_allclose(relu_grad(x), (relu(x + h) - relu(x - h)) / (2 * h), atol=1e-9)
    assert relu_grad(np.array([0.0]))[0] == 1.0  # the book's function (its Relu layer passes 0 there)


def test_softmax_is_stable_batched_and_sums_to_one(rng):
    x = rng.standard_normal((5, 7)) * 1000  # exp would overflow without the shift
    y = softmax(x)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(axis=1), 1.0)
    np.testing.assert_allclose(softmax(x[2]), y[2])  # 1-D is one vector
    np.testing.assert_allclose(
        softmax(np.array([0.3, 2.9, 4.0])), [0.01821127, 0.24519181, 0.73659691], rtol=1e-6
    )


def test_sum_squared_error_book_example():
    t = [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    y = [0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0]
    assert sum_squared_error(np.array(y), np.array(t)) == pytest.approx(0.0975)
    assert mean_squared_error is sum_squared_error
    with pytest.raises(ValueError, match="same shape"):
        sum_squared_error(np.zeros(3), np.zeros(4))


def test_cross_entropy_one_hot_indices_and_1d_agree():
    y = np.array(
        [
            [0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0],
            [0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0],
        ]
    )
    one_hot = np.eye(10)[[2, 2]]
    assert cross_entropy_error(y[0], one_hot[0]) == pytest.approx(0.510825457, rel=1e-6)
    assert cross_entropy_error(y[1], one_hot[1]) == pytest.approx(2.302584092, rel=1e-6)
    mean = (0.510825457 + 2.302584092) / 2
    assert cross_entropy_error(y, one_hot) == pytest.approx(mean, rel=1e-6)
    assert cross_entropy_error(y, np.array([2, 2])) == pytest.approx(mean, rel=1e-6)
    assert cross_entropy_error(y[0], 2) == pytest.approx(0.510825457, rel=1e-6)


def test_cross_entropy_never_takes_log_of_zero():
    y = np.array([[1.0, 0.0]])
    assert np.isfinite(cross_entropy_error(y, np.array([1])))


@pytest.mark.parametrize(
    ("t", "message"),
    [
        (np.array([0, 3]), r"\[0, 2\]"),
        (np.array([0, -1]), r"\[0, 2\]"),
        (np.zeros((2, 5)), "one-hot"),
        (np.array([0.5, 1]), "whole"),
    ],
)
def test_cross_entropy_rejects_bad_labels(t, message):
    with pytest.raises(ValueError, match=message):
        cross_entropy_error(np.full((2, 3), 1 / 3), t)


def test_cross_entropy_rejects_empty_batch():
    with pytest.raises(ValueError, match="empty"):
        cross_entropy_error(np.zeros((0, 3)), np.zeros(0, dtype=int))


def test_softmax_loss_is_the_cross_entropy_of_the_softmax(rng):
    X, t = rng.standard_normal((4, 3)), np.array([2, 0, 1, 1])
    assert softmax_loss(X, t) == cross_entropy_error(softmax(X), t)
    assert softmax_loss(X[0], 2) == cross_entropy_error(softmax(X[:1]), np.array([2]))


def test_class_indices_as_a_column_are_accepted():
    y = np.array([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]])
    assert cross_entropy_error(y, np.array([[1], [0]])) == cross_entropy_error(y, np.array([1, 0]))
