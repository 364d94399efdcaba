"""Affine: gradients against numerical differences and torch, N-d input, dtypes, errors."""

from __future__ import annotations

from math import prod

import numpy as np
import pytest
from gradcheck_helpers import assert_leaves_arguments_alone, assert_matches_torch, check_layer_numerically

from dlscratch.layers.affine import Affine

SHAPES = [(1, 3), (4, 7), (5, 2, 3, 4)]


def make_affine(rng: np.random.Generator, in_shape: tuple[int, ...], out: int = 5, dtype=np.float64):
    features = prod(in_shape[1:])
    return Affine(rng.standard_normal((features, out)).astype(dtype), rng.standard_normal(out).astype(dtype))


@pytest.mark.parametrize("shape", SHAPES)
def test_backward_matches_numerical_gradient(shape, rng):
    check_layer_numerically(make_affine(rng, shape), rng.standard_normal(shape), rng=rng)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_torch(shape, dtype, rng, torch):
    layer = make_affine(rng, shape, dtype=dtype)
    tolerance = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {}
    assert_matches_torch(
        layer,
        rng.standard_normal(shape).astype(dtype),
        lambda tx, W, b: tx.reshape(len(tx), -1) @ W + b,
        rng=rng,
        **tolerance,
    )


def test_n_d_input_is_flattened_and_dx_reshaped_back(rng):
    layer = make_affine(rng, (2, 3, 4), out=6)
    x = rng.standard_normal((2, 3, 4))
    out = layer.forward(x)
    np.testing.assert_allclose(out, x.reshape(2, 12) @ layer.W + layer.b)
    assert layer.x.shape == (2, 12)  # the book's attribute holds the flattened input
    assert layer.backward(np.ones((2, 6))).shape == (2, 3, 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype, rng):
    layer = make_affine(rng, (3, 4), dtype=dtype)
    out = layer.forward(rng.standard_normal((3, 4)).astype(dtype))
    dx = layer.backward(np.ones((3, 5), dtype=dtype))
    assert {a.dtype for a in (out, dx, layer.dW, layer.db)} == {np.dtype(dtype)}


def test_gradients_written_in_place_into_the_same_arrays(rng):
    layer = make_affine(rng, (3, 4))
    dW, db = layer.grads["W"], layer.grads["b"]
    x, dout = rng.standard_normal((3, 4)), rng.standard_normal((3, 5))
    layer.forward(x)
    layer.backward(dout)
    assert layer.dW is dW and layer.db is db
    np.testing.assert_allclose(dW, x.T @ dout)
    np.testing.assert_allclose(db, dout.sum(axis=0))
    assert layer.W is layer.params["W"] and layer.b is layer.params["b"]


def test_backward_leaves_its_arguments_alone(rng):
    assert_leaves_arguments_alone(make_affine(rng, (3, 4)), rng.standard_normal((3, 4)), rng)


def test_backward_params_computes_the_gradients_without_dx(rng):
    layer, reference = make_affine(rng, (3, 4)), make_affine(np.random.default_rng(1), (3, 4))
    reference.params["W"][...] = layer.W
    x, dout = rng.standard_normal((3, 4)), rng.standard_normal((3, 5))
    layer.forward(x)
    reference.forward(x)
    assert layer.backward_params(dout) is None
    reference.backward(dout)
    np.testing.assert_array_equal(layer.dW, reference.dW)
    np.testing.assert_array_equal(layer.db, reference.db)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_input_of_another_float_dtype_is_computed_in_the_weights_dtype(dtype, rng):
    layer = make_affine(rng, (2, 3, 4))
    x = rng.standard_normal((2, 3, 4)).astype(dtype)
    out = layer.forward(x)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, x.astype(np.float64).reshape(2, 12) @ layer.W + layer.b)
    assert layer.backward(np.ones((2, 5))).dtype == np.float64


def test_the_books_attribute_names_read_and_assign_the_parameters(rng):
    layer = make_affine(rng, (2, 3, 4))
    W = rng.standard_normal((12, 5))
    layer.W = W  # as the book's load_params does
    assert layer.W is W and layer.params["W"] is W and layer.dW.shape == W.shape
    with pytest.raises(ValueError, match=r"Affine.W must keep its shape \(12, 5\), got \(5, 12\)"):
        layer.W = W.T


def test_an_empty_batch_gives_an_empty_output(rng):
    layer = make_affine(rng, (1, 2, 3))
    assert layer.forward(np.zeros((0, 2, 3))).shape == (0, 5)
    assert layer.backward(np.zeros((0, 5))).shape == (0, 2, 3)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((100, 785), r"Affine expected 784 input features, got 785 \(input shape \(100, 785\)\)"),
        ((2, 28, 27), r"Affine expected 784 input features, got 756 \(input shape \(2, 28, 27\)\)"),
        ((), r"Affine expected 784 input features, got 0 \(input shape \(\)\)"),
    ],
)
def test_wrong_feature_count_raises(shape, message):
    layer = Affine(np.zeros((784, 10)), np.zeros(10))
    with pytest.raises(ValueError, match=message):
        layer.forward(np.zeros(shape))


def test_integer_input_raises():
    with pytest.raises(ValueError, match="Affine expected floating-point input, got dtype int64"):
        Affine(np.zeros((2, 3)), np.zeros(3)).forward(np.ones((4, 2), dtype=np.int64))


def test_wrong_dout_shape_raises(rng):
    layer = make_affine(rng, (3, 4))
    layer.forward(rng.standard_normal((3, 4)))
    with pytest.raises(ValueError, match=r"Affine.backward expected dout of shape \(3, 5\), got \(5,\)"):
        layer.backward(np.ones(5))


@pytest.mark.parametrize(
    ("W", "b", "message"),
    [
        (np.zeros((3, 2)), np.zeros(3), r"W of shape \(D, M\) and b of shape \(M,\), got \(3, 2\) and \(3,"),
        (np.zeros(3), np.zeros(3), r"got \(3,\) and \(3,\)"),
        (np.zeros((3, 2), dtype=int), np.zeros(2, dtype=int), "floating-point array for W"),
    ],
)
def test_bad_parameters_raise(W, b, message):
    with pytest.raises(ValueError, match=message):
        Affine(W, b)


def test_repr_names_shapes():
    assert repr(Affine(np.zeros((3, 2)), np.zeros(2))) == "Affine(W=(3, 2), b=(2,))"
