import numpy as np
import pytest

from dlscratch import Affine, Relu, Sequential, Sigmoid, SoftmaxWithLoss, gradient_check


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


def test_first_layer_skips_the_input_gradient_without_changing_the_layer(rng, monkeypatch):
    network = Sequential([_affine(rng, 4, 5), Relu(), _affine(rng, 5, 3)])
    first = network.layers["Affine1"]
    state = dict(vars(first))
    called_for = []
    original = Affine.backward
    monkeypatch.setattr(
        Affine, "backward", lambda layer, dout: called_for.append(layer) or original(layer, dout)
    )
    network.gradient(rng.random((2, 4)), np.array([0, 2]))
    assert called_for == [network.layers["Affine2"]]  # backward_params ran instead: no dx for the data
    monkeypatch.undo()
    assert vars(first).keys() == state.keys()
    # the caller's own backward loop still gets dx from the first layer
    network.predict(rng.random((2, 4)))
    assert first.backward(np.ones((2, 5))).shape == (2, 4)


def test_gradient_returns_new_arrays_and_layers_keep_the_plain_gradient(rng):
    layers = [_affine(rng, 4, 5), Relu(), _affine(rng, 5, 3)]
    network = Sequential(layers, weight_decay_lambda=0.1)
    x1, x2, t = rng.random((6, 4)), rng.random((6, 4)), rng.integers(0, 3, 6)
    first, second = network.gradient(x1, t), network.gradient(x2, t)
    assert not np.array_equal(first["W1"], second["W1"])  # the first is not overwritten
    # the layer's dW is the backpropagated gradient; the decay is added to the returned dict
    np.testing.assert_allclose(second["W1"], layers[0].dW + 0.1 * layers[0].W)
    assert not np.shares_memory(second["b1"], layers[0].db)


def test_last_layer_is_the_books_other_name_for_last_layer(rng):
    network = Sequential([_affine(rng, 4, 3)])
    assert network.last_layer is network.lastLayer
    replacement = SoftmaxWithLoss(exact=False)
    network.last_layer = replacement
    assert network.lastLayer is replacement


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


def test_no_modes_and_no_side_effects_on_the_network(rng):
    """Each call plans its own steps: nothing is left on the network between calls."""
    from dlscratch import SimpleConvNet

    network = SimpleConvNet(
        (1, 8, 8), {"filter_num": 3, "filter_size": 3, "pad": 0, "stride": 1}, 5, 3, seed=0
    )
    x, t = rng.standard_normal((4, 1, 8, 8)), np.array([0, 1, 2, 1])
    attributes = dict(vars(network))
    network.loss_and_gradient(x, t)
    network.accuracy(x, t)
    network.summary(print_fn=None)
    assert vars(network).keys() == attributes.keys()
    assert all(vars(network)[key] is value for key, value in attributes.items())


def test_predict_runs_every_layer_one_by_one(rng, monkeypatch):
    from dlscratch import Convolution, Pooling, SimpleConvNet

    network = SimpleConvNet(
        (1, 8, 8), {"filter_num": 3, "filter_size": 3, "pad": 0, "stride": 1}, 5, 3, seed=0
    )
    ran = []
    for layer_class in (Convolution, Relu, Pooling, Affine):
        forward = layer_class.forward
        monkeypatch.setattr(
            layer_class,
            "forward",
            lambda self, *a, forward=forward, **k: ran.append(self) or forward(self, *a, **k),
        )
    network.predict(rng.standard_normal((2, 1, 8, 8)))
    assert ran == list(network.layers.values())
