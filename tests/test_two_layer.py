from collections import OrderedDict

import numpy as np
import pytest

from dlscratch import Affine, Relu, SoftmaxWithLoss, TwoLayerNet


def test_book_surface():
    network = TwoLayerNet(input_size=784, hidden_size=50, output_size=10)
    assert list(network.params) == ["W1", "b1", "W2", "b2"]
    assert network.params["W1"].shape == (784, 50) and network.params["b2"].shape == (10,)
    assert network.params["W1"].dtype == np.float64
    assert isinstance(network.layers, OrderedDict)
    assert list(network.layers) == ["Affine1", "Relu1", "Affine2"]
    assert isinstance(network.layers["Affine1"], Affine) and isinstance(network.layers["Relu1"], Relu)
    assert isinstance(network.lastLayer, SoftmaxWithLoss)
    assert 0.005 < network.params["W1"].std() < 0.015  # weight_init_std = 0.01
    assert not network.params["b1"].any()


def test_global_seed_works_as_in_the_book():
    np.random.seed(3)
    first = TwoLayerNet(5, 4, 3).params["W1"].copy()
    np.random.seed(3)
    assert np.array_equal(TwoLayerNet(5, 4, 3).params["W1"], first)


def test_seed_keyword_is_reproducible_and_independent_of_global_state():
    a = TwoLayerNet(5, 4, 3, seed=7)
    np.random.seed(99)
    b = TwoLayerNet(5, 4, 3, seed=7)
    for key in a.params:
        assert np.array_equal(a.params[key], b.params[key])


def test_params_are_the_layers_arrays_and_the_seed_update_trains(rng):
    network = TwoLayerNet(12, 10, 3, weight_init_std=0.5, seed=0)
    assert network.layers["Affine1"].W is network.params["W1"]
    assert network.layers["Affine2"].b is network.params["b2"]
    x, t = rng.random((30, 12)), rng.integers(0, 3, 30)
    before = network.loss(x, t)
    for _ in range(50):
        grad = network.gradient(x, t)
        for key in ("W1", "b1", "W2", "b2"):
            network.params[key] -= 0.5 * grad[key]  # the seed's update line
    assert network.loss(x, t) < before * 0.7
    assert network.layers["Affine1"].W is network.params["W1"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_flows_through(dtype, rng):
    network = TwoLayerNet(6, 5, 3, seed=0, dtype=dtype)
    x = rng.random((4, 6)).astype(dtype)
    assert network.predict(x).dtype == dtype
    grads = network.gradient(x, np.array([0, 1, 2, 0]))
    assert all(g.dtype == dtype for g in grads.values())


def test_accuracy_counts_every_sample_with_one_hot_or_indices(rng):
    network = TwoLayerNet(4, 3, 2, seed=0)
    x = rng.random((7, 4))
    predicted = network.predict(x).argmax(axis=1)
    t = predicted.copy()
    t[:2] = 1 - t[:2]  # two wrong
    assert network.accuracy(x, t) == pytest.approx(5 / 7)
    assert network.accuracy(x, np.eye(2)[t]) == pytest.approx(5 / 7)
    assert network.accuracy(x, t, batch_size=3) == pytest.approx(5 / 7)  # last partial batch counts


def test_weight_init_rules():
    he = TwoLayerNet(800, 100, 10, weight_init_std="he", seed=0)
    assert he.params["W1"].std() == pytest.approx(np.sqrt(2 / 800), rel=0.05)
    assert he.params["W2"].std() == pytest.approx(np.sqrt(2 / 100), rel=0.1)
    with pytest.raises(ValueError, match="weight_init_std"):
        TwoLayerNet(4, 3, 2, weight_init_std="bogus")


@pytest.mark.parametrize("sizes", [(0, 3, 2), (4, -1, 2), (4, 3, 2.5)])
def test_rejects_bad_sizes(sizes):
    with pytest.raises(ValueError, match="positive int"):
        TwoLayerNet(*sizes)


def test_wrong_input_width_names_the_layer(rng):
    network = TwoLayerNet(784, 5, 3, seed=0)
    with pytest.raises(
        ValueError, match=r"Affine expected 784 input features, got 785 \(input shape \(2, 785\)\)"
    ):
        network.predict(rng.random((2, 785)))
