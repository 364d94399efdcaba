import numpy as np
import pytest
from conftest import require_or_skip

from dlscratch import DeepConvNet, Dropout, SimpleConvNet, Trainer, gradient_check
from dlscratch.datasets import DatasetNotFoundError, load_fashion_mnist

SMALL_CONV = {"filter_num": 3, "filter_size": 3, "pad": 1, "stride": 1}


def test_simple_conv_net_book_layout():
    network = SimpleConvNet(seed=0)
    assert list(network.layers) == ["Conv1", "Relu1", "Pool1", "Affine1", "Relu2", "Affine2"]
    assert [p.shape for p in network.params.values()] == [
        (30, 1, 5, 5),
        (30,),
        (4320, 100),
        (100,),
        (100, 10),
        (10,),
    ]


def test_simple_conv_net_gradients(rng):
    # weights of 0.3, not the default 0.01: with tiny activations, max pooling's near-ties
    # fall inside the numerical step and the check would measure the kinks, not the code
    network = SimpleConvNet((2, 8, 8), SMALL_CONV, hidden_size=6, output_size=4, weight_init_std=0.3, seed=0)
    x, t = rng.standard_normal((3, 2, 8, 8)), np.array([0, 3, 1])
    for key, row in gradient_check(network, x, t).items():
        assert row["mean_abs_diff"] < 1e-7, key


def test_deep_conv_net_book_layout_and_shapes(rng):
    network = DeepConvNet(seed=0)
    convs = [p.shape for k, p in network.params.items() if k.startswith("W")]
    assert convs == [
        (16, 1, 3, 3),
        (16, 16, 3, 3),
        (32, 16, 3, 3),
        (32, 32, 3, 3),
        (64, 32, 3, 3),
        (64, 64, 3, 3),
        (1024, 50),
        (50, 10),
    ]
    assert network.predict(rng.random((2, 1, 28, 28))).shape == (2, 10)
    assert network.params["W1"].std() == pytest.approx(np.sqrt(2 / 9), rel=0.2)  # He initialisation


@pytest.mark.parametrize("use_batchnorm", [False, True])
def test_deep_conv_net_gradients_on_a_small_input(rng, use_batchnorm):
    tiny = {"filter_num": 2, "filter_size": 3, "pad": 1, "stride": 1}
    network = DeepConvNet(
        (1, 8, 8), *[tiny] * 6, hidden_size=5, output_size=3, use_batchnorm=use_batchnorm, seed=0
    )
    x, t = rng.standard_normal((2, 1, 8, 8)), np.array([0, 2])
    network.predict(x, train_flg=True)
    for layer in network.layers.values():
        if isinstance(layer, Dropout):
            layer.fixed_mask = layer.mask
    for key, row in gradient_check(network, x, t, max_entries=20, h=1e-6).items():
        assert row["mean_abs_diff"] < 1e-7, key


def test_deep_conv_net_extras():
    network = DeepConvNet(use_batchnorm=True, dropout_ratio=0, seed=0)
    assert [name for name in network.layers if name.startswith("BatchNorm")] == [
        f"BatchNorm{i}" for i in range(1, 8)
    ]
    assert not [name for name in network.layers if name.startswith("Dropout")]
    assert network.params["gamma7"].shape == (50,)  # after the hidden Affine


def test_deep_conv_net_evaluates_100_images_at_a_time_as_the_book(rng, monkeypatch):
    network = DeepConvNet(seed=0)
    x, t = rng.standard_normal((250, 1, 28, 28)), rng.integers(0, 10, 250)
    first = network.layers["Conv1"]
    sizes, check_input = [], first.check_input

    def counting_check(x):  # every batch's forward pass starts at the first convolution
        sizes.append(len(x))
        return check_input(x)

    monkeypatch.setattr(first, "check_input", counting_check)
    by_default = network.accuracy(x, t)
    assert sizes == [100, 100, 50]
    assert network.accuracy(x, t, batch_size=250) == by_default
    assert SimpleConvNet.accuracy_batch_size == 1000  # its activations are small: one pass of 1000


def test_input_dim_and_conv_param_are_checked():
    with pytest.raises(ValueError, match="input_dim"):
        SimpleConvNet((28, 28))
    with pytest.raises(ValueError, match="missing"):
        SimpleConvNet(conv_param={"filter_num": 3})
    with pytest.raises(ValueError, match="filter size 2 is larger than input size 1"):
        SimpleConvNet((1, 5, 5))  # 1 x 1 after the 5 x 5 convolution: no 2x2 window fits
    # 23 x 23 after the convolution: 2x2 pooling floors it to 11 x 11, as the book's net does
    assert SimpleConvNet((1, 27, 27), seed=0).predict(np.zeros((2, 1, 27, 27))).shape == (2, 10)


@pytest.mark.slow
def test_simple_conv_net_learns_fashion_mnist_in_part_of_an_epoch():
    """A small version of the README's SimpleConvNet claim: 200 Adam steps on 20000 images."""
    try:
        (x_train, t_train), (x_test, t_test) = load_fashion_mnist(flatten=False, download=False)
    except DatasetNotFoundError:
        require_or_skip("Fashion-MNIST", "DLSCRATCH_REQUIRE_DATA")
    network = SimpleConvNet(seed=0, dtype=np.float32)
    trainer = Trainer(
        network,
        x_train[:20000],
        t_train[:20000],
        x_test[:2000],
        t_test[:2000],
        mini_batch_size=100,
        optimizer="Adam",
        optimizer_param={"lr": 0.001},
        verbose=False,
        iters=200,
        sampling="shuffle",
        seed=0,
    )
    history = trainer.train()
    assert history.test_acc[-1] >= 0.72, history.test_acc  # measured 0.752 on this machine
