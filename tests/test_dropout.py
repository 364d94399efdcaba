"""Dropout: mask statistics, the book's and the inverted scaling, fixed-mask gradients, errors."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck_helpers import assert_leaves_arguments_alone, assert_matches_torch, check_layer_numerically

from dlscratch.layers.dropout import Dropout


@pytest.mark.parametrize("inverted", [False, True])
@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.5, 0.9])
def test_mask_keeps_one_minus_ratio_of_units(ratio, inverted):
    layer = Dropout(ratio, inverted=inverted, seed=0)
    x = np.ones((1000, 200))
    out = layer.forward(x)
    kept = layer.mask.mean()
    # 200 000 draws: the standard error of the kept fraction is below 0.0012
    assert abs(kept - (1 - ratio)) < 0.005
    # kept units pass as they are (the book) or scaled by 1 / (1 - ratio); dropped ones are 0
    np.testing.assert_allclose(out[layer.mask], 1 / (1 - ratio) if inverted else 1)
    assert np.all(out[~layer.mask] == 0)
    # the mean training output matches the test-mode output in expectation
    assert abs(out.mean() - layer.forward(x, train_flg=False).mean()) < 0.05


def test_mask_is_a_boolean_array_of_the_input_shape(rng):
    layer = Dropout(0.3, seed=1)
    layer.forward(rng.standard_normal((2, 3, 4)))
    assert layer.mask.dtype == bool and layer.mask.shape == (2, 3, 4)


@pytest.mark.parametrize("shape", [(6, 5), (2, 3, 2, 2)])
def test_the_books_form_masks_in_training_and_scales_at_test_time(shape, rng):
    x = rng.standard_normal(shape)
    layer = Dropout(0.25, seed=2)
    np.testing.assert_array_equal(layer.forward(x, train_flg=True), x * layer.mask)
    dout = rng.standard_normal(shape)
    np.testing.assert_array_equal(layer.backward(dout), dout * layer.mask)
    np.testing.assert_array_equal(layer.forward(x, train_flg=False), x * 0.75)
    np.testing.assert_array_equal(layer.backward(dout), dout * 0.75)


@pytest.mark.parametrize("shape", [(6, 5), (2, 3, 2, 2)])
def test_the_inverted_form_scales_in_training_and_is_the_identity_at_test_time(shape, rng):
    x = rng.standard_normal(shape)
    before = x.copy()
    layer = Dropout(0.25, inverted=True, seed=2)
    np.testing.assert_allclose(layer.forward(x, train_flg=True), x * layer.mask / 0.75, rtol=1e-15)
    out = layer.forward(x, train_flg=False)
    np.testing.assert_array_equal(out, before)  # no rescaling at test time
    dout = rng.standard_normal(shape)
    np.testing.assert_array_equal(layer.backward(dout), dout)
    np.testing.assert_array_equal(x, before)


def test_seed_none_draws_the_books_masks():
    """With np.random's global state, the mask is the book's np.random.rand(*shape) > ratio."""
    np.random.seed(5)
    expected = np.random.rand(7, 9) > 0.3
    np.random.seed(5)
    layer = Dropout(0.3)
    layer.forward(np.ones((7, 9)))
    np.testing.assert_array_equal(layer.mask, expected)


def test_default_is_training_mode_and_a_new_mask_each_forward():
    layer = Dropout(0.5, seed=3)
    x = np.ones((20, 20))
    layer.forward(x)
    first = layer.mask.copy()
    layer.forward(x)
    assert not np.array_equal(first, layer.mask)
    assert Dropout.uses_train_flag


def test_same_seed_same_masks_and_seed_none_follows_np_random_seed():
    x = np.ones((10, 10))
    a, b = Dropout(0.5, seed=7), Dropout(0.5, seed=np.random.default_rng(7))
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    masks = []
    for _ in range(2):
        np.random.seed(0)  # the book's way to repeat a run
        layer = Dropout(0.5)
        layer.forward(x)
        masks.append(layer.mask)
    np.testing.assert_array_equal(*masks)


def fixed_mask_layer(
    rng: np.random.Generator, shape: tuple[int, ...], ratio: float, inverted: bool = False
) -> Dropout:
    layer = Dropout(ratio, inverted=inverted)
    layer.fixed_mask = rng.random(shape) >= ratio
    return layer


@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.6])
@pytest.mark.parametrize("shape", [(1, 3), (4, 7), (5, 2, 3, 4)])
def test_backward_matches_numerical_gradient_with_fixed_mask(shape, ratio, rng):
    layer = fixed_mask_layer(rng, shape, ratio)
    check_layer_numerically(layer, rng.standard_normal(shape), rng=rng, forward_kwargs={"train_flg": True})
    np.testing.assert_array_equal(layer.mask, layer.fixed_mask)


@pytest.mark.parametrize("inverted", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(1, 3), (4, 7), (5, 2, 3, 4)])
def test_matches_torch_with_fixed_mask(shape, dtype, inverted, rng, torch):
    ratio = 0.4
    layer = fixed_mask_layer(rng, shape, ratio, inverted)
    mask = torch.tensor(layer.fixed_mask)
    # float32: torch divides by 0.6, we multiply by float32(1 / 0.6); they differ in the last bit
    tolerance = {"rtol": 1e-6} if dtype == np.float32 else {}
    assert_matches_torch(
        layer,
        rng.standard_normal(shape).astype(dtype),
        (lambda tx: tx * mask / (1 - ratio)) if inverted else (lambda tx: tx * mask),
        rng=rng,
        forward_kwargs={"train_flg": True},
        **tolerance,
    )


@pytest.mark.parametrize("train_flg", [True, False])
def test_float32_stays_float32(train_flg, rng):
    layer = Dropout(0.5, seed=0)
    out = layer.forward(rng.standard_normal((4, 5)).astype(np.float32), train_flg)
    dx = layer.backward(np.ones((4, 5), dtype=np.float32))
    assert out.dtype == np.float32 and dx.dtype == np.float32


@pytest.mark.parametrize("inverted", [False, True])
def test_backward_leaves_dout_alone(inverted, rng):
    layer, x = Dropout(0.5, inverted=inverted, seed=0), rng.standard_normal((4, 5))
    dx, dout = assert_leaves_arguments_alone(layer, x, rng)
    np.testing.assert_array_equal(dx, dout * layer.mask / (0.5 if inverted else 1))


def test_config_and_repr():
    layer = Dropout(0.25)
    assert layer.config() == {"dropout_ratio": 0.25, "inverted": False}
    assert Dropout(inverted=True).config() == {"dropout_ratio": 0.5, "inverted": True}
    assert repr(layer) == "Dropout(dropout_ratio=0.25, inverted=False)"
    assert layer.params == {} and layer.grads == {}


@pytest.mark.parametrize("ratio", [1.0, -0.1, 1.5, float("nan")])
def test_bad_ratio_raises(ratio):
    with pytest.raises(ValueError, match="Dropout expected 0 <= dropout_ratio < 1"):
        Dropout(ratio)


def test_bad_input_mask_and_dout_raise(rng):
    layer = Dropout(0.5, seed=0)
    with pytest.raises(ValueError, match="Dropout expected floating-point input"):
        layer.forward(np.ones((2, 3), dtype=np.int32))
    layer.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"Dropout.backward expected dout of shape \(2, 3\), got \(3, 2\)"):
        layer.backward(np.ones((3, 2)))
    layer.fixed_mask = np.ones((3, 3), dtype=bool)
    with pytest.raises(ValueError, match=r"Dropout expected fixed_mask of the input's shape \(2, 3\)"):
        layer.forward(np.ones((2, 3)))
