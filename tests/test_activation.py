"""Relu, LeakyRelu, Sigmoid, Tanh: gradients against numerical differences and torch, dtypes."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from gradcheck_helpers import assert_leaves_arguments_alone, assert_matches_torch, check_layer_numerically

from dlscratch.layers.activation import LeakyRelu, Relu, Sigmoid, Tanh

SHAPES = [(1, 3), (4, 7), (5, 2, 3, 4)]
LAYERS = {
    "Relu": (Relu, lambda torch: torch.relu),
    "LeakyRelu": (lambda: LeakyRelu(0.1), lambda torch: lambda tx: torch.nn.functional.leaky_relu(tx, 0.1)),
    "Sigmoid": (Sigmoid, lambda torch: torch.sigmoid),
    "Tanh": (Tanh, lambda torch: torch.tanh),
}


def away_from_kinks(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Normal samples with none within 0.01 of 0, where relu's central difference straddles the kink."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.01, 0.5, x)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", LAYERS)
def test_backward_matches_numerical_gradient(name, shape, rng):
    check_layer_numerically(LAYERS[name][0](), away_from_kinks(rng, shape), rng=rng)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", LAYERS)
def test_matches_torch(name, shape, dtype, rng, torch):
    make_layer, torch_fn = LAYERS[name]
    tolerance = {"rtol": 1e-6, "atol": 1e-7} if dtype == np.float32 else {}
    assert_matches_torch(
        make_layer(), away_from_kinks(rng, shape).astype(dtype), torch_fn(torch), rng=rng, **tolerance
    )


@pytest.mark.parametrize("name", LAYERS)
def test_float32_in_float32_out(name, rng):
    layer = LAYERS[name][0]()
    out = layer.forward(rng.standard_normal((3, 4)).astype(np.float32))
    dx = layer.backward(np.ones((3, 4), dtype=np.float32))
    assert out.dtype == np.float32 and dx.dtype == np.float32


@pytest.mark.parametrize("name", LAYERS)
def test_forward_and_backward_leave_their_arguments_alone(name, rng):
    assert_leaves_arguments_alone(LAYERS[name][0](), rng.standard_normal((4, 5)), rng)


@pytest.mark.parametrize("name", LAYERS)
def test_integer_input_raises(name):
    with pytest.raises(ValueError, match=f"{name} expected floating-point input, got dtype int64"):
        LAYERS[name][0]().forward(np.array([[1, -2]], dtype=np.int64))


def test_relu_values_and_gradient_zero_at_zero():
    layer = Relu()
    x = np.array([[-1.0, 0.0, 2.0], [0.0, -0.0, 3.5]])
    np.testing.assert_array_equal(layer.forward(x), [[0, 0, 2], [0, 0, 3.5]])
    np.testing.assert_array_equal(layer.backward(np.full((2, 3), 7.0)), [[0, 0, 7], [0, 0, 7]])
    np.testing.assert_array_equal(layer.mask, x <= 0)  # the book's attribute


def test_leaky_relu_values_and_config():
    layer = LeakyRelu(alpha=0.2)
    np.testing.assert_allclose(layer.forward(np.array([[-2.0, 0.0, 3.0]])), [[-0.4, 0, 3]])
    np.testing.assert_allclose(layer.backward(np.ones((1, 3))), [[0.2, 0.2, 1]])
    assert layer.config() == {"alpha": 0.2}
    assert LeakyRelu().config() == {"alpha": 0.01}


def test_sigmoid_and_tanh_keep_their_output_for_backward():
    sigmoid, tanh = Sigmoid(), Tanh()
    x = np.array([[-1.0, 0.0, 1.0]])
    np.testing.assert_allclose(sigmoid.forward(x), 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(sigmoid.backward(np.ones((1, 3))), sigmoid.out * (1 - sigmoid.out))
    np.testing.assert_allclose(tanh.forward(x), np.tanh(x))
    np.testing.assert_allclose(tanh.backward(np.ones((1, 3))), 1 - np.tanh(x) ** 2)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_has_no_overflow_for_large_inputs(dtype):
    layer = Sigmoid()
    x = np.array([[-1000.0, -100.0, 0.0, 100.0, 1000.0]], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        out = layer.forward(x)
        dx = layer.backward(np.ones_like(x))
    assert out.dtype == dtype
    np.testing.assert_allclose(out, [[0, 0, 0.5, 1, 1]], atol=1e-30)
    np.testing.assert_allclose(dx, [[0, 0, 0.25, 0, 0]], atol=1e-30)


@pytest.mark.parametrize("name", LAYERS)
def test_backward_with_a_wrong_dout_shape_raises(name, rng):
    layer = LAYERS[name][0]()
    layer.forward(rng.standard_normal((2, 3)))
    # (3,) would broadcast against (2, 3) and give a wrong gradient without a word
    for shape in [(3,), (3, 2)]:
        message = rf"{name}.backward expected dout of shape \(2, 3\), got {re.escape(str(shape))}"
        with pytest.raises(ValueError, match=message):
            layer.backward(np.ones(shape))
