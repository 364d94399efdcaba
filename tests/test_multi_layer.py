import numpy as np
import pytest

from dlscratch import (
    BatchNormalization,
    Dropout,
    MultiLayerNet,
    MultiLayerNetExtend,
    Relu,
    Sigmoid,
    gradient_check,
)


def test_book_names_and_shapes():
    network = MultiLayerNet(input_size=784, hidden_size_list=[100, 50], output_size=10, seed=0)
    assert list(network.layers) == [
        "Affine1",
        "Activation_function1",
        "Affine2",
        "Activation_function2",
        "Affine3",
    ]
    assert list(network.params) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert network.params["W2"].shape == (100, 50)
    assert network.hidden_layer_num == 2
    assert isinstance(network.layers["Activation_function1"], Relu)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("relu", np.sqrt(2 / 400)),
        ("he", np.sqrt(2 / 400)),
        ("sigmoid", np.sqrt(1 / 400)),
        ("xavier", np.sqrt(1 / 400)),
        (0.05, 0.05),
    ],
)
def test_weight_init_rules(rule, expected):
    network = MultiLayerNet(400, [300], 10, weight_init_std=rule, seed=0)
    assert network.params["W1"].std() == pytest.approx(expected, rel=0.03)


def test_sigmoid_activation_and_bad_activation():
    assert isinstance(MultiLayerNet(4, [3], 2, activation="sigmoid").layers["Activation_function1"], Sigmoid)
    with pytest.raises(ValueError, match="activation"):
        MultiLayerNet(4, [3], 2, activation="swish")


def test_extend_layers_and_the_book_spelling_of_dropout_ratio():
    network = MultiLayerNetExtend(6, [5], 3, use_dropout=True, dropout_ration=0.3, use_batchnorm=True, seed=0)
    assert list(network.layers) == ["Affine1", "BatchNorm1", "Activation_function1", "Dropout1", "Affine2"]
    assert list(network.params) == ["W1", "b1", "gamma1", "beta1", "W2", "b2"]
    assert isinstance(network.layers["BatchNorm1"], BatchNormalization)
    assert network.layers["Dropout1"].dropout_ratio == 0.3
    assert (
        MultiLayerNetExtend(6, [5], 3, use_dropout=True, dropout_ratio=0.2).layers["Dropout1"].dropout_ratio
        == 0.2
    )


def test_extend_gradients_with_batchnorm_dropout_and_weight_decay(rng):
    network = MultiLayerNetExtend(
        6,
        [5, 4],
        3,
        use_dropout=True,
        use_batchnorm=True,
        weight_decay_lambda=0.1,
        weight_init_std=0.5,
        seed=1,
    )
    x, t = rng.standard_normal((8, 6)), rng.integers(0, 3, 8)
    network.predict(x, train_flg=True)
    for layer in network.layers.values():
        if isinstance(layer, Dropout):
            layer.fixed_mask = layer.mask  # one fixed function for the numerical gradient
    for key, row in gradient_check(network, x, t).items():
        assert row["mean_abs_diff"] < 1e-7, key


def test_test_mode_is_deterministic_and_train_mode_is_not(rng):
    network = MultiLayerNetExtend(6, [20], 3, use_dropout=True, dropout_ratio=0.5, seed=0)
    x = rng.standard_normal((4, 6))
    np.testing.assert_array_equal(network.predict(x), network.predict(x))
    assert not np.array_equal(network.predict(x, train_flg=True), network.predict(x, train_flg=True))


def test_one_seed_fixes_everything(rng):
    x = rng.standard_normal((4, 6))
    a, b = (MultiLayerNetExtend(6, [8], 3, use_dropout=True, seed=3) for _ in range(2))
    np.testing.assert_array_equal(a.predict(x, train_flg=True), b.predict(x, train_flg=True))


def test_rejects_bad_sizes():
    with pytest.raises(ValueError, match="positive int sizes"):
        MultiLayerNet(4, [3, 0], 2)
