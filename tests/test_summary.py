"""network.summary(): a Keras-like table of every layer's output shape and parameter count,
printed and returned, with no layer's state disturbed."""

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
    first, last = (i for i, line in enumerate(lines) if line.startswith("="))
    rows = {}
    for line in lines[first + 1 : last]:
        name, kind, rest = line.split(maxsplit=2)
        shape, count = rest.rsplit(maxsplit=1)
        rows[name] = (kind.strip("()"), shape.strip(), int(count.replace(",", "")))
    return rows


def _count(summary: str, what: str = "Trainable params") -> int:
    line = next(line for line in summary.splitlines() if line.startswith(what + ":"))
    return int(line.split(":")[1].split()[0].replace(",", ""))


def test_two_layer_net_summary_lists_each_layer(capsys):
    network = TwoLayerNet(784, 50, 10, seed=0)
    summary = network.summary()
    assert capsys.readouterr().out == summary + "\n"  # printed, as Keras prints, and returned
    lines = summary.splitlines()
    assert lines[0] == 'Model: "TwoLayerNet"'
    assert lines[2].split() == ["Layer", "(type)", "Output", "Shape", "Param", "#"]
    assert _rows(summary) == {
        "Affine1": ("Affine", "(None, 50)", 784 * 50 + 50),
        "Relu1": ("Relu", "(None, 50)", 0),
        "Affine2": ("Affine", "(None, 10)", 50 * 10 + 10),
    }
    assert "Input shape: (None, 784)" in lines and "Loss: SoftmaxWithLoss" in lines
    assert _count(summary, "Total params") == _count(summary) == 39760
    assert _count(summary, "Non-trainable params") == 0
    assert len({len(line) for line in lines if set(line) <= {"_", "="}}) == 1  # rules of one width


def test_print_fn_sends_the_lines_elsewhere(capsys):
    lines = []
    text = TwoLayerNet(4, 3, 2, seed=0).summary(print_fn=lines.append)
    assert "\n".join(lines) == text and capsys.readouterr().out == ""
    assert TwoLayerNet(4, 3, 2, seed=0).summary(print_fn=None) == text


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
    summary = network.summary(print_fn=None)
    rows = _rows(summary)
    assert list(rows) == list(network.layers)
    kinds = [type(layer).__name__ for layer in network.layers.values()]
    assert [kind for kind, _, _ in rows.values()] == kinds
    assert _count(summary) == sum(p.size for p in network.params.values())
    assert sum(count for _, _, count in rows.values()) == _count(summary)
    # the last shape is the scores', as predict gives them
    assert list(rows.values())[-1][1] == "(None, 3)"


def test_convolution_shapes_follow_the_layers():
    network = SimpleConvNet(seed=0)
    rows = _rows(network.summary(print_fn=None))
    assert rows["Conv1"][1] == "(None, 30, 24, 24)"
    assert rows["Pool1"][1] == "(None, 30, 12, 12)"
    assert rows["Affine1"][1:] == ("(None, 100)", 30 * 12 * 12 * 100 + 100)


def test_batch_norm_buffers_are_counted_apart_from_params():
    network = MultiLayerNetExtend(10, [4], 2, use_batchnorm=True, seed=0)
    summary = network.summary(print_fn=None)
    assert _rows(summary)["BatchNorm1"] == ("BatchNormalization", "(None, 4)", 8)
    # the running mean and variance: Keras's non-trainable parameters
    assert "Non-trainable params: 8 (saved with the model, not trained)" in summary
    assert _count(summary, "Total params") == _count(summary) + 8


def test_a_plain_sequential_takes_its_input_shape_from_the_first_affine_or_the_argument(rng):
    dense = Sequential([Affine(rng.standard_normal((6, 4)), np.zeros(4)), Relu()])
    assert _rows(dense.summary(print_fn=None))["Relu1"][1] == "(None, 4)"
    conv = Sequential([Convolution(rng.standard_normal((2, 1, 3, 3)), np.zeros(2)), Relu()])
    with pytest.raises(ValueError, match="summary needs input_shape"):
        conv.summary()
    assert _rows(conv.summary((1, 5, 5), print_fn=None))["Relu1"][1] == "(None, 2, 3, 3)"


def test_a_wrong_input_shape_is_reported_by_the_layer_that_refuses_it():
    with pytest.raises(ValueError, match="Affine"):
        TwoLayerNet(784, 50, 10, seed=0).summary((785,), print_fn=None)


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

    network.summary(print_fn=None)

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


@pytest.mark.parametrize("stride", [1, 2])
def test_summary_between_a_books_loss_and_its_backward_loop_changes_no_gradient(stride, rng):
    """The book's loop: loss(), then backward layer by layer; a summary() in between is harmless.

    (A stride-2 Convolution once reused its column buffer in place, so the summary's
    forward pass of one zero sample overwrote the columns of a one-sample batch, and the
    backward loop computed dW from zeros.)
    """
    conv = {"filter_num": 3, "filter_size": 3, "pad": 1, "stride": stride}
    networks = [SimpleConvNet((1, 9, 9), conv, 5, 3, weight_init_std=0.3, seed=0) for _ in range(2)]
    x, t = rng.standard_normal((1, 1, 9, 9)), np.array([2])
    for network in networks:
        network.loss(x, t)
    networks[0].summary(print_fn=None)
    for network in networks:
        dout = network.lastLayer.backward(1)
        for layer in reversed(network.layers.values()):
            dout = layer.backward(dout)
    first, second = (network.layers["Conv1"].dW for network in networks)
    assert np.any(first != 0)
    np.testing.assert_array_equal(first, second)


def test_summary_keeps_the_float32_of_a_float32_network():
    network = TwoLayerNet(4, 3, 2, seed=0, dtype=np.float32)
    assert "Trainable params: 23" in network.summary(print_fn=None)


def test_the_returned_text_echoes_as_one_line_not_the_table_again(capsys):
    # a REPL or notebook echoes what summary() returns after it printed the table
    summary = TwoLayerNet(4, 3, 2, seed=0).summary(print_fn=None)
    assert isinstance(summary, str)
    assert repr(summary) == "<summary printed above: Total params: 23>"
    assert str(summary).startswith('Model: "TwoLayerNet"')
