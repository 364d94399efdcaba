import numpy as np
import pytest

from dlscratch import Affine, Relu, Sequential, Sigmoid, gradient_check


def _affine(rng, n_in, n_out):
    return Affine(rng.standard_normal((n_in, n_out)) * 0.5, rng.standard_normal(n_out) * 0.1)


def test_names_and_params_follow_the_book(rng):
    network = Sequential([_affine(rng, 4, 5), Relu(), _affine(rng, 5, 5), Sigmoid(), _affine(rng, 5, 3)])
    assert list(network.layers) == ["Affine1", "Relu1", "Affine2", "Sigmoid1", "Affine3"]
    assert list(network.params) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert network.params["W3"] is network.layers["Affine3"].W


def test_mapping_keeps_the_given_names(rng):
    network = Sequential({"fc": _affine(rng, 4, 3), "act": Relu()})
    assert list(network.layers) == ["fc", "act"]


def test_first_layer_skips_the_input_gradient(rng):
    network = Sequential([_affine(rng, 4, 5), Relu(), _affine(rng, 5, 3)])
    assert network.layers["Affine1"].needs_input_grad is False
    assert network.layers["Affine2"].needs_input_grad is True
    network.predict(rng.random((2, 4)))
    assert network.layers["Affine1"].backward(np.ones((2, 5))) is None


def test_weight_decay_in_loss_and_gradient(rng):
    layers = [_affine(rng, 4, 5), Relu(), _affine(rng, 5, 3)]
    network = Sequential(layers, weight_decay_lambda=0.1)
    x, t = rng.random((6, 4)), rng.integers(0, 3, 6)
    plain = Sequential(layers)
    penalty = 0.05 * (np.sum(network.params["W1"] ** 2) + np.sum(network.params["W2"] ** 2))
    assert network.loss(x, t) == pytest.approx(plain.loss(x, t) + penalty)
    plain_grads = {k: v.copy() for k, v in plain.gradient(x, t).items()}
    decayed = network.gradient(x, t)
    np.testing.assert_allclose(decayed["W1"], plain_grads["W1"] + 0.1 * network.params["W1"], rtol=1e-12)
    np.testing.assert_array_equal(decayed["b2"], plain_grads["b2"])  # biases are not decayed
    for row in gradient_check(network, x, t).values():
        assert row["mean_abs_diff"] < 1e-6


def test_loss_and_gradient_is_one_pass_of_loss_and_gradient(rng):
    network = Sequential([_affine(rng, 4, 5), Relu(), _affine(rng, 5, 3)])
    x, t = rng.random((6, 4)), rng.integers(0, 3, 6)
    loss, grads = network.loss_and_gradient(x, t)
    assert loss == network.loss(x, t)
    expected = {k: v.copy() for k, v in grads.items()}
    for key, value in network.gradient(x, t).items():
        np.testing.assert_array_equal(value, expected[key])


def test_rejects_empty_and_negative_decay(rng):
    with pytest.raises(ValueError, match="at least one layer"):
        Sequential([])
    with pytest.raises(ValueError, match="weight_decay_lambda"):
        Sequential([Relu()], weight_decay_lambda=-1)


def test_accuracy_rejects_mismatched_or_empty(rng):
    network = Sequential([_affine(rng, 4, 3)])
    with pytest.raises(ValueError, match="3 samples but 2 labels"):
        network.accuracy(rng.random((3, 4)), np.array([0, 1]))
    with pytest.raises(ValueError, match="empty"):
        network.accuracy(np.zeros((0, 4)), np.zeros(0, dtype=int))
