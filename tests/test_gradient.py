import numpy as np
import pytest

from dlscratch import TwoLayerNet, gradient_check, numerical_gradient
from dlscratch.gradient import numerical_gradient_1d, numerical_gradient_2d


def test_numerical_gradient_of_book_function_2():
    def function_2(x):
        return np.sum(x**2)

    for point, expected in [([3.0, 4.0], [6.0, 8.0]), ([0.0, 2.0], [0.0, 4.0]), ([3.0, 0.0], [6.0, 0.0])]:
        np.testing.assert_allclose(numerical_gradient(function_2, np.array(point)), expected, atol=1e-7)


def test_any_shape_and_x_restored_bit_for_bit(rng):
    x = rng.standard_normal((2, 3, 4))
    before = x.copy()
    grad = numerical_gradient(lambda z: np.sum(np.sin(z)), x)
    assert grad.shape == x.shape
    np.testing.assert_allclose(grad, np.cos(x), atol=1e-8)
    assert np.array_equal(x, before)  # exactly: restored, not x + h - h


def test_f_that_reads_x_itself_sees_the_perturbation(rng):
    W = rng.standard_normal((3, 2))
    grad = numerical_gradient(lambda _: float(np.sum(W**3)), W)
    np.testing.assert_allclose(grad, 3 * W**2, atol=1e-7)


@pytest.mark.parametrize("x", [np.ones(3, dtype=np.float32), np.array([3, 4])])
def test_refuses_float32_and_integers(x):
    with pytest.raises(ValueError, match="float64"):
        numerical_gradient(lambda z: np.sum(z), x)


def test_refuses_non_arrays_and_strided_views():
    with pytest.raises(ValueError, match="NumPy array"):
        numerical_gradient(lambda z: 0.0, [1.0, 2.0])
    with pytest.raises(ValueError, match="contiguous"):
        numerical_gradient(lambda z: 0.0, np.ones((3, 4)).T)


def test_two_layer_net_gradient_check_meets_the_seed_bound(rng):
    network = TwoLayerNet(input_size=20, hidden_size=8, output_size=4, seed=1)
    x = rng.random((3, 20))
    t = np.eye(4)[[0, 3, 1]]
    report = gradient_check(network, x, t)
    assert list(report) == ["W1", "b1", "W2", "b2"]
    for key, row in report.items():
        assert row["mean_abs_diff"] < 1e-6, key
        assert row["max_rel_error"] < 1e-3, key


def test_gradient_check_detects_a_wrong_backward(rng):
    network = TwoLayerNet(input_size=6, hidden_size=5, output_size=3, seed=2)
    x, t = rng.random((3, 6)), np.array([0, 1, 2])
    real_gradient = network.gradient

    def doubled(x, t):
        return {k: 2 * v for k, v in real_gradient(x, t).items()}

    network.gradient = doubled
    report = gradient_check(network, x, t)
    assert report["W2"]["max_rel_error"] > 0.3


def test_numerical_gradient_1d_and_2d_are_the_books_chapter_4_helpers(rng):
    def f(v):  # a function of one point
        return float(np.sum(v**2) + v[0] * v[1])

    point = rng.standard_normal(3)
    expected = 2 * point + np.array([point[1], point[0], 0.0])
    np.testing.assert_allclose(numerical_gradient_1d(f, point.copy()), expected, atol=1e-7)
    points = rng.standard_normal((4, 3))
    before = points.copy()
    rows = numerical_gradient_2d(f, points)  # f sees one row at a time
    np.testing.assert_allclose(rows[2], numerical_gradient_1d(f, before[2].copy()), atol=1e-12)
    np.testing.assert_array_equal(points, before)
    np.testing.assert_allclose(numerical_gradient_2d(f, point.copy()), expected, atol=1e-7)
    with pytest.raises(ValueError, match=r"numerical_gradient_1d expected a 1-D x, got shape \(4, 3\)"):
        numerical_gradient_1d(f, points)
    with pytest.raises(ValueError, match=r"numerical_gradient_2d expected X of shape \(N, D\) or \(D,\)"):
        numerical_gradient_2d(f, np.zeros((2, 2, 2)))
