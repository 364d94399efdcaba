"""network.summary(): every layer's output shape and parameter count, and nothing disturbed."""

from __future__ import annotations

import numpy as np
import pytest

from dlscratch import (
    Affine,
    BatchNormalization,
    Convolution,
    DeepConvNet,
    Dropout,
    MultiLayerNet,
    MultiLayerNetExtend,
    Relu,
    Sequential,
    SimpleConvNet,
    TwoLayerNet,
)


def _rows(summary: str) -> dict[str, tuple[str, str, int]]:
    """Layer name -> (type, output shape, parameter count), read back from the table."""
    lines = summary.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("Layer")))
    rows = {}
    for line in lines[header + 2 :]:
        if line.startswith("Loss:"):
            break
        name, kind, rest = line.split(maxsplit=2)
        shape, count = rest.rsplit(maxsplit=1)
        rows[name] = (kind, shape.strip(), int(count.replace(",", "")))
    return rows


def _total(summary: str) -> int:
    line = next(line for line in summary.splitlines() if line.startswith("Total params:"))
    return int(line.split(":")[1].replace(",", ""))


def test_two_layer_net_summary_lists_each_layer():
    network = TwoLayerNet(784, 50, 10, seed=0)
    summary = network.summary()
    assert summary.splitlines()[0] == "TwoLayerNet: input (N, 784)"
    assert _rows(summary) == {
        "Affine1": ("Affine", "(N, 50)", 784 * 50 + 50),
        "Relu1": ("Relu", "(N, 50)", 0),
        "Affine2": ("Affine", "(N, 10)", 50 * 10 + 10),
    }
    assert "Loss: SoftmaxWithLoss" in summary
    assert _total(summary) == 39760


@pytest.mark.parametrize(
    "network",
    [
        TwoLayerNet(20, 7, 3, seed=0),
        MultiLayerNet(20, [6, 5], 3, seed=0),
        MultiLayerNetExtend(20, [6, 5], 3, use_batchnorm=True, use_dropout=True, seed=0),
        SimpleConvNet((1, 12, 12), {"filter_num": 4, "filter_size": 3, "pad": 0, "stride": 1}, 8, 3, seed=0),
        DeepConvNet((1, 12, 12), hidden_size=8, output_size=3, seed=0),
    ],
    ids=lambda network: type(network).__name__,
)
def test_every_network_summarises_with_its_own_input_shape(network):
    summary = network.summary()
    rows = _rows(summary)
    assert list(rows) == list(network.layers)
    kinds = [type(layer).__name__ for layer in network.layers.values()]
    assert [kind for kind, _, _ in rows.values()] == kinds
    assert _total(summary) == sum(p.size for p in network.params.values())
    assert sum(count for _, _, count in rows.values()) == _total(summary)
    # the last shape is the scores', as predict gives them
    assert list(rows.values())[-1][1] == "(N, 3)"


def test_convolution_shapes_follow_the_layers():
    network = SimpleConvNet(seed=0)
    rows = _rows(network.summary())
    assert rows["Conv1"][1] == "(N, 30, 24, 24)"
    assert rows["Pool1"][1] == "(N, 30, 12, 12)"
    assert rows["Affine1"][1:] == ("(N, 100)", 30 * 12 * 12 * 100 + 100)


def test_batch_norm_buffers_are_counted_apart_from_params():
    network = MultiLayerNetExtend(10, [4], 2, use_batchnorm=True, seed=0)
    summary = network.summary()
    assert _rows(summary)["BatchNorm1"] == ("BatchNormalization", "(N, 4)", 8)
    assert "Buffers (saved with the model, not trained): 8" in summary


def test_a_plain_sequential_takes_its_input_shape_from_the_first_affine_or_the_argument(rng):
    dense = Sequential([Affine(rng.standard_normal((6, 4)), np.zeros(4)), Relu()])
    assert _rows(dense.summary())["Relu1"][1] == "(N, 4)"
    conv = Sequential([Convolution(rng.standard_normal((2, 1, 3, 3)), np.zeros(2)), Relu()])
    with pytest.raises(ValueError, match="summary needs input_shape"):
        conv.summary()
    assert _rows(conv.summary((1, 5, 5)))["Relu1"][1] == "(N, 2, 3, 3)"


def test_a_wrong_input_shape_is_reported_by_the_layer_that_refuses_it():
    with pytest.raises(ValueError, match="Affine"):
        TwoLayerNet(784, 50, 10, seed=0).summary((785,))


def test_summary_between_forward_and_backward_changes_nothing(rng):
    """No running statistic, dropout mask or cached input is touched."""
    network = MultiLayerNetExtend(8, [5, 5], 3, use_batchnorm=True, use_dropout=True, seed=0)
    x, t = rng.standard_normal((6, 8)), rng.integers(0, 3, 6)
    twin = MultiLayerNetExtend(8, [5, 5], 3, use_batchnorm=True, use_dropout=True, seed=0)

    loss = network.loss(x, t, train_flg=True)
    assert twin.loss(x, t, train_flg=True) == loss
    layers = network.layers.items()
    running = {name: bn.running_mean.copy() for name, bn in layers if isinstance(bn, BatchNormalization)}
    masks = {name: layer.mask for name, layer in layers if isinstance(layer, Dropout)}

    network.summary()

    for name, layer in network.layers.items():
        if isinstance(layer, BatchNormalization):
            np.testing.assert_array_equal(layer.running_mean, running[name])
        if isinstance(layer, Dropout):
            assert layer.mask is masks[name]
    # backward after the summary gives what backward gives without one
    for net in (network, twin):
        dout = net.lastLayer.backward(1)
        for layer in reversed(net.layers.values()):
            dout = layer.backward(dout)
    for name, layer in network.layers.items():
        for key, grad in layer.grads.items():
            np.testing.assert_array_equal(grad, twin.layers[name].grads[key])


def test_summary_keeps_the_float32_of_a_float32_network():
    network = TwoLayerNet(4, 3, 2, seed=0, dtype=np.float32)
    assert "Total params: 23" in network.summary()
