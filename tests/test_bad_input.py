"""Bad input anywhere in the public API: a ValueError that names the argument and what was expected.

One line per case, so this file doubles as the list of cases covered (the layers' own
test files pin their shape checks in more detail).
"""

from __future__ import annotations

import numpy as np
import pytest

from dlscratch import (
    Affine,
    BatchNormalization,
    Convolution,
    Dropout,
    Pooling,
    Relu,
    SoftmaxWithLoss,
    Trainer,
    TwoLayerNet,
    conv_output_size,
    cross_entropy_error,
    get_optimizer,
    numerical_gradient,
    softmax,
)

X = np.ones((4, 3))
T = np.array([0, 1, 2, 0])


def _net():
    return TwoLayerNet(3, 4, 3, seed=0)


CASES = {
    "affine: wrong feature count": (
        lambda: Affine(np.ones((5, 2)), np.zeros(2)).forward(X),
        "expected 5 input features",
    ),
    "affine: integer input": (
        lambda: Affine(np.ones((3, 2)), np.zeros(2)).forward(np.ones((2, 3), int)),
        "floating-point",
    ),
    "affine: text input": (
        lambda: Affine(np.ones((3, 2)), np.zeros(2)).forward(np.array([["a", "b", "c"]])),
        "floating-point",
    ),
    "affine: b does not match W": (lambda: Affine(np.ones((3, 2)), np.zeros(3)), "b of shape"),
    "relu: integer input": (lambda: Relu().forward(np.array([1, 2])), "floating-point"),
    "loss: label out of range": (lambda: SoftmaxWithLoss().forward(X, np.array([0, 1, 2, 3])), r"\[0, 2\]"),
    "loss: negative label": (lambda: SoftmaxWithLoss().forward(X, np.array([0, -1, 2, 0])), r"\[0, 2\]"),
    "loss: labels of the wrong shape": (lambda: SoftmaxWithLoss().forward(X, np.zeros((4, 2))), "one-hot"),
    "loss: fractional labels": (
        lambda: SoftmaxWithLoss().forward(X, np.array([0.5, 1, 2, 0])),
        "whole numbers",
    ),
    "loss: empty batch": (lambda: SoftmaxWithLoss().forward(np.zeros((0, 3)), np.zeros(0, int)), "N > 0"),
    "cross entropy: empty batch": (lambda: cross_entropy_error(np.zeros((0, 3)), np.zeros(0, int)), "empty"),
    "softmax: text": (lambda: softmax(np.array(["x"])), "array of numbers, got dtype <U1"),
    "net: wrong input width": (lambda: _net().predict(np.ones((2, 4))), "expected 3 input features"),
    "net: labels out of range": (lambda: _net().loss(X, np.array([0, 1, 5, 0])), r"\[0, 2\]"),
    "net: empty batch": (lambda: _net().loss(np.zeros((0, 3)), np.zeros(0, int)), "N > 0"),
    "net: accuracy with too few labels": (lambda: _net().accuracy(X, T[:3]), "4 samples but 3 labels"),
    "net: bad size": (lambda: TwoLayerNet(3, 0, 2), "hidden_size"),
    "net: bad dtype": (lambda: TwoLayerNet(3, 4, 2, dtype=np.int32), "float32 or float64"),
    "net: bad init rule": (lambda: TwoLayerNet(3, 4, 2, weight_init_std="lecun"), "weight_init_std"),
    "conv: 2-D input": (
        lambda: Convolution(np.ones((2, 1, 3, 3)), np.zeros(2)).forward(np.ones((4, 9))),
        "Convolution",
    ),
    "conv: channel mismatch": (
        lambda: Convolution(np.ones((2, 3, 3, 3)), np.zeros(2)).forward(np.ones((1, 1, 5, 5))),
        "Convolution",
    ),
    "conv: a filter larger than the input": (
        lambda: conv_output_size(3, 5, stride=2),
        "larger than input size 3",
    ),
    "pooling: 2-D input": (lambda: Pooling(2, 2).forward(np.ones((4, 9))), "Pooling"),
    "batchnorm: wrong feature count": (
        lambda: BatchNormalization(np.ones(3), np.zeros(3)).forward(np.ones((4, 5))),
        "BatchNormalization",
    ),
    "dropout: ratio 1": (lambda: Dropout(1.0), "dropout_ratio"),
    "optimizer: unknown name": (lambda: get_optimizer("adamw"), "unknown optimizer"),
    "optimizer: negative lr": (lambda: get_optimizer("sgd", lr=-0.1), "lr"),
    "optimizer: unknown setting": (lambda: get_optimizer("sgd", learning_rate=0.1), "learning_rate"),
    "gradient: float32": (lambda: numerical_gradient(lambda x: 0.0, np.ones(2, np.float32)), "float64"),
    "trainer: integer images": (
        lambda: Trainer(_net(), np.ones((4, 3), np.uint8), T, X, T),
        "floating point",
    ),
    "trainer: float labels": (lambda: Trainer(_net(), X, T.astype(float), X, T), "integers"),
    "trainer: negative labels": (lambda: Trainer(_net(), X, -T - 1, X, T), "negative"),
    "trainer: 3-D labels": (lambda: Trainer(_net(), X, np.zeros((4, 3, 1)), X, T), "shape"),
    "trainer: mismatched split": (lambda: Trainer(_net(), X, T[:2], X, T), "4 samples but 2 labels"),
    "trainer: empty split": (lambda: Trainer(_net(), X[:0], T[:0], X, T), "empty"),
    "trainer: bad batch size": (lambda: Trainer(_net(), X, T, X, T, mini_batch_size=0), "mini_batch_size"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_raises_a_clear_value_error(case):
    call, message = CASES[case]
    with pytest.raises((ValueError, TypeError), match=message):
        call()
