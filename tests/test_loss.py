"""SoftmaxWithLoss: gradients against numerical differences and torch's cross_entropy, labels."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck_helpers import assert_matches_torch, check_layer_numerically

from dlscratch.layers.loss import SoftmaxWithLoss

SHAPES = [(1, 3), (4, 7), (6, 2)]


class LossWithFixedLabels:
    """A loss layer seen as an ordinary layer x -> loss (a 0-d array), so the gradient helpers,
    which feed it a random dout, also check that backward scales by dout."""

    def __init__(self, t: np.ndarray) -> None:
        self.layer, self.t = SoftmaxWithLoss(), t
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.layer.forward(x, self.t), dtype=x.dtype)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self.layer.backward(dout)


def labels(rng: np.random.Generator, shape: tuple[int, int], one_hot: bool) -> np.ndarray:
    t = rng.integers(0, shape[1], shape[0])
    return np.eye(shape[1])[t] if one_hot else t


@pytest.mark.parametrize("one_hot", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_matches_numerical_gradient(shape, one_hot, rng):
    layer = LossWithFixedLabels(labels(rng, shape, one_hot))
    check_layer_numerically(layer, rng.standard_normal(shape), rng=rng)


@pytest.mark.parametrize("one_hot", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_torch_cross_entropy(shape, one_hot, rng, torch):
    t = labels(rng, shape, one_hot)
    target = torch.tensor(t)  # one-hot: a probabilities target; indices: int64 class labels

    def cross_entropy(tx):
        return torch.nn.functional.cross_entropy(tx, target)

    assert_matches_torch(LossWithFixedLabels(t), rng.standard_normal(shape), cross_entropy, rng=rng)


def test_backward_is_softmax_minus_one_hot_over_n_times_dout(rng):
    layer = SoftmaxWithLoss()
    x, t = rng.standard_normal((4, 3)), np.array([0, 2, 1, 2])
    loss = layer.forward(x, t)
    y = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    assert isinstance(loss, float)
    assert loss == pytest.approx(-np.mean(np.log(y[np.arange(4), t])), rel=1e-14)
    np.testing.assert_allclose(layer.y, y)
    expected = (y - np.eye(3)[t]) / 4
    np.testing.assert_allclose(layer.backward(), expected)  # dout defaults to 1, as in the book
    np.testing.assert_allclose(layer.backward(2.5), 2.5 * expected)
    np.testing.assert_allclose(layer.backward(np.array(-0.5)), -0.5 * expected)


def test_backward_returns_a_new_array_each_time(rng):
    layer = SoftmaxWithLoss()
    layer.forward(rng.standard_normal((2, 3)), np.array([0, 1]))
    first = layer.backward(3.0)
    y_before = layer.y.copy()
    assert layer.backward(1.0) is not first
    np.testing.assert_array_equal(layer.y, y_before)


def test_one_hot_and_index_labels_give_the_same_loss(rng):
    x, t = rng.standard_normal((5, 4)), np.array([3, 0, 1, 1, 2])
    by_index, by_one_hot = SoftmaxWithLoss(), SoftmaxWithLoss()
    assert by_index.forward(x, t) == by_one_hot.forward(x, np.eye(4)[t])
    np.testing.assert_array_equal(by_index.backward(), by_one_hot.backward())


def test_float32_stays_float32(rng):
    layer = SoftmaxWithLoss()
    layer.forward(rng.standard_normal((3, 4)).astype(np.float32), np.array([0, 1, 3]))
    assert layer.y.dtype == np.float32
    assert layer.backward().dtype == np.float32
    assert layer.backward(np.float64(2.0)).dtype == np.float32


def test_large_scores_do_not_overflow():
    layer = SoftmaxWithLoss()
    with np.errstate(over="raise", invalid="raise"):
        loss = layer.forward(np.array([[1000.0, 0.0], [0.0, -1000.0]]), np.array([0, 0]))
    assert loss == 0.0  # both rows certain and right: exactly zero, no log(0)


@pytest.mark.parametrize(
    ("t", "message"),
    [
        (np.array([0, 3]), r"class-index labels must lie in \[0, 2\], got values from 0 to 3"),
        (np.array([-1, 0]), r"must lie in \[0, 2\], got values from -1 to 0"),
        (np.array([0, 1, 2]), r"labels must be one-hot of shape \(2, 3\) or class indices of shape \(2,\)"),
        (np.zeros((2, 4)), r"got shape \(2, 4\)"),
        (np.array([0.5, 1.0]), "class-index labels must be whole numbers"),
    ],
)
def test_bad_labels_raise(t, message):
    with pytest.raises(ValueError, match=message):
        SoftmaxWithLoss().forward(np.zeros((2, 3)), t)


@pytest.mark.parametrize("shape", [(3,), (2, 3, 4), (0, 3)])
def test_bad_scores_raise(shape):
    with pytest.raises(ValueError, match="SoftmaxWithLoss expected scores of shape"):
        SoftmaxWithLoss().forward(np.zeros(shape), np.zeros(shape[:1], dtype=int))


def test_integer_scores_raise():
    with pytest.raises(ValueError, match="SoftmaxWithLoss expected floating-point input"):
        SoftmaxWithLoss().forward(np.array([[1, 2]]), np.array([0]))


def test_the_books_loss_adds_1e7_inside_the_log(rng):
    x, t = rng.standard_normal((4, 5)) * 3, np.array([0, 4, 2, 2])
    y = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    book = SoftmaxWithLoss(exact=False)
    expected = -np.sum(np.log(y[np.arange(4), t] + 1e-7)) / 4
    np.testing.assert_allclose(book.forward(x, t), expected, rtol=1e-15)
    exact = SoftmaxWithLoss()
    np.testing.assert_allclose(exact.forward(x, t), -np.mean(np.log(y[np.arange(4), t])), rtol=1e-12)
    np.testing.assert_array_equal(book.backward(), exact.backward())  # the same gradient either way
    assert book.config() == {"exact": False} and exact.config() == {"exact": True}


def test_the_books_loss_is_capped_where_the_exact_one_is_not():
    x, t = np.array([[50.0, 0.0]]), np.array([1])  # softmax(x)[1] = exp(-50), far below 1e-7
    assert SoftmaxWithLoss(exact=False).forward(x, t) == pytest.approx(-np.log(1e-7), rel=1e-6)
    assert SoftmaxWithLoss().forward(x, t) == pytest.approx(50.0, rel=1e-12)


def test_backward_is_the_books_arithmetic_bit_for_bit(rng):
    """dx = (y - onehot(t)) / N, rounded as the book's code rounds it, so book scripts agree to the bit."""
    x, t = rng.standard_normal((7, 4)), np.array([0, 3, 1, 1, 2, 0, 3])
    layer = SoftmaxWithLoss()
    layer.forward(x, t)
    book = layer.y.copy()
    book[np.arange(7), t] -= 1
    np.testing.assert_array_equal(layer.backward(), book / 7)


def test_class_indices_as_a_column_are_accepted(rng):
    """The book's chapter 7 gradient check gives one label as np.array([1]).reshape((1, 1))."""
    x = rng.standard_normal((3, 4))
    column, flat = SoftmaxWithLoss(), SoftmaxWithLoss()
    assert column.forward(x, np.array([[1], [3], [0]])) == flat.forward(x, np.array([1, 3, 0]))
    np.testing.assert_array_equal(column.backward(), flat.backward())
