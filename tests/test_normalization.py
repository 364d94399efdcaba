"""BatchNormalization: gradients against numerical differences and torch, running stats, errors."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck_helpers import assert_leaves_arguments_alone, assert_matches_torch, check_layer_numerically

from dlscratch.layers.normalization import BatchNormalization

SHAPES = [(4, 3), (7, 1), (3, 2, 2, 3), (2, 3, 1, 1)]
EPS = 1e-5  # not the book's default, so the tests notice an eps that is ignored


def make_layer(rng: np.random.Generator, features: int, dtype=np.float64, **kwargs) -> BatchNormalization:
    gamma = (1 + 0.5 * rng.standard_normal(features)).astype(dtype)
    beta = rng.standard_normal(features).astype(dtype)
    return BatchNormalization(gamma, beta, eps=EPS, **kwargs)


def random_input(rng: np.random.Generator, shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
    # an offset and a scale per feature, so normalising does something visible
    features = (1, shape[1]) + (1,) * (len(shape) - 2)
    offset, scale = rng.standard_normal(features), rng.uniform(0.5, 3, features)
    return (offset + scale * rng.standard_normal(shape)).astype(dtype)


@pytest.mark.parametrize("train_flg", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_matches_numerical_gradient(shape, train_flg, rng):
    layer = make_layer(
        rng, shape[1], running_mean=rng.standard_normal(shape[1]), running_var=rng.uniform(0.5, 2, shape[1])
    )
    check_layer_numerically(layer, random_input(rng, shape), rng=rng, forward_kwargs={"train_flg": train_flg})


def torch_batch_norm(torch, training: bool, running_mean=None, running_var=None):
    def fn(tx, gamma, beta):
        return torch.nn.functional.batch_norm(
            tx, running_mean, running_var, gamma, beta, training=training, eps=EPS
        )

    return fn


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_training_matches_torch(shape, dtype, rng, torch):
    layer = make_layer(rng, shape[1], dtype)
    tolerance = {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {}
    assert_matches_torch(
        layer,
        random_input(rng, shape, dtype),
        torch_batch_norm(torch, True),
        rng=rng,
        forward_kwargs={"train_flg": True},
        **tolerance,
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_test_mode_matches_torch(shape, rng, torch):
    mean, var = rng.standard_normal(shape[1]), rng.uniform(0.5, 2, shape[1])
    layer = make_layer(rng, shape[1], running_mean=mean, running_var=var)
    fn = torch_batch_norm(torch, False, torch.tensor(mean), torch.tensor(var))
    assert_matches_torch(layer, random_input(rng, shape), fn, rng=rng, forward_kwargs={"train_flg": False})


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 2, 5)])
def test_running_stats_and_eval_output_match_torch(shape, rng, torch):
    momentum = 0.8
    layer = make_layer(rng, shape[1], momentum=momentum)
    t_mean, t_var = torch.zeros(shape[1], dtype=torch.float64), torch.ones(shape[1], dtype=torch.float64)
    gamma, beta = torch.tensor(layer.gamma), torch.tensor(layer.beta)
    for _ in range(4):
        x = random_input(rng, shape)
        layer.forward(x, train_flg=True)
        # torch's momentum weighs the new batch, ours the old running value
        torch.nn.functional.batch_norm(
            torch.tensor(x), t_mean, t_var, gamma, beta, training=True, momentum=1 - momentum, eps=EPS
        )
    np.testing.assert_allclose(layer.running_mean, t_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, t_var.numpy(), rtol=1e-12)
    x = random_input(rng, shape)
    expected = torch.nn.functional.batch_norm(
        torch.tensor(x), t_mean, t_var, gamma, beta, training=False, eps=EPS
    )
    np.testing.assert_allclose(layer.forward(x, train_flg=False), expected.numpy(), rtol=1e-12, atol=1e-12)


def test_running_stats_follow_the_book_rule_with_unbiased_variance(rng):
    layer = make_layer(rng, 2, momentum=0.9)
    x1, x2 = random_input(rng, (5, 2)), random_input(rng, (5, 2))
    layer.forward(x1)
    layer.forward(x2)
    mean = 0.9 * (0.9 * 0 + 0.1 * x1.mean(0)) + 0.1 * x2.mean(0)
    var = 0.9 * (0.9 * 1 + 0.1 * x1.var(0, ddof=1)) + 0.1 * x2.var(0, ddof=1)
    np.testing.assert_allclose(layer.running_mean, mean, rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, var, rtol=1e-12)


def test_running_stats_are_updated_in_place_and_not_in_test_mode(rng):
    layer = make_layer(rng, 3)
    mean, var = layer.running_mean, layer.running_var
    np.testing.assert_array_equal(mean, 0)
    np.testing.assert_array_equal(var, 1)
    layer.forward(random_input(rng, (4, 3)))
    assert layer.running_mean is mean and layer.buffers["running_var"] is var
    assert not np.any(mean == 0) and not np.any(var == 1)
    before = mean.copy(), var.copy()
    layer.forward(random_input(rng, (4, 3)), train_flg=False)
    np.testing.assert_array_equal(mean, before[0])
    np.testing.assert_array_equal(var, before[1])


def test_four_d_input_is_normalised_per_channel(rng):
    x = random_input(rng, (5, 3, 4, 2))
    layer = BatchNormalization(np.ones(3), np.zeros(3), eps=EPS)
    out = layer.forward(x)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, rtol=1e-4)
    # the same as treating every pixel of a channel as one more sample of a 2-D batch
    flat = BatchNormalization(np.ones(3), np.zeros(3), eps=EPS)
    as_rows = flat.forward(x.transpose(0, 2, 3, 1).reshape(-1, 3))
    np.testing.assert_allclose(out, as_rows.reshape(5, 4, 2, 3).transpose(0, 3, 1, 2), rtol=1e-12)


def test_untrained_layer_in_test_mode_is_the_identity(rng):
    x = random_input(rng, (3, 4))
    np.testing.assert_allclose(BatchNormalization(np.ones(4), np.zeros(4)).forward(x, False), x, rtol=1e-6)


@pytest.mark.parametrize("train_flg", [True, False])
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 2)])
def test_float32_stays_float32(shape, train_flg, rng):
    layer = make_layer(rng, 3, np.float32)
    out = layer.forward(random_input(rng, shape, np.float32), train_flg)
    dx = layer.backward(rng.standard_normal(shape).astype(np.float32))
    arrays = [out, dx, *layer.params.values(), *layer.grads.values(), *layer.buffers.values()]
    assert all(a.dtype == np.float32 for a in arrays), [a.dtype for a in arrays]


def test_gradients_written_in_place_and_book_aliases(rng):
    layer = make_layer(rng, 3)
    dgamma, dbeta = layer.grads["gamma"], layer.grads["beta"]
    layer.forward(random_input(rng, (4, 3)))
    layer.backward(rng.standard_normal((4, 3)))
    assert layer.dgamma is dgamma and layer.dbeta is dbeta and np.any(dgamma != 0)
    assert layer.gamma is layer.params["gamma"] and layer.beta is layer.params["beta"]
    assert layer.running_mean is layer.buffers["running_mean"]
    assert layer.running_var is layer.buffers["running_var"]


def test_backward_leaves_dout_alone(rng):
    assert_leaves_arguments_alone(make_layer(rng, 3), random_input(rng, (4, 3)), rng)


def test_config_and_defaults():
    layer = BatchNormalization(np.ones(2), np.zeros(2))
    assert layer.config() == {"momentum": 0.9, "eps": 1e-7, "book_statistics": False}
    assert BatchNormalization.uses_train_flag
    assert "BatchNormalization" in repr(layer)


def test_given_running_stats_are_used(rng):
    mean, var = np.array([1.0, -2.0]), np.array([4.0, 0.25])
    layer = BatchNormalization(np.ones(2), np.zeros(2), running_mean=mean, running_var=var, eps=EPS)
    x = rng.standard_normal((3, 2))
    np.testing.assert_allclose(layer.forward(x, train_flg=False), (x - mean) / np.sqrt(var + EPS))


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((4, 2), r"BatchNormalization expected 3 features on axis 1 \(or C \* H \* W pixels\), got 2 "),
        ((4, 4, 2, 2), r"BatchNormalization expected 3 features on axis 1 \(or C \* H \* W pixels\), got 4"),
        ((4,), r"BatchNormalization expected input of shape \(N, D\) or \(N, C, H, W\)"),
        ((4, 3, 2), r"BatchNormalization expected input of shape .* got an array of shape \(4, 3, 2\)"),
        ((0, 3), "BatchNormalization got an empty batch"),
    ],
)
def test_bad_input_raises(shape, match):
    layer = BatchNormalization(np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match=match):
        layer.forward(np.zeros(shape))


def test_batch_of_one_works_in_test_mode_and_four_d_with_pixels():
    layer = BatchNormalization(np.ones(3), np.zeros(3))
    assert layer.forward(np.ones((1, 3)), train_flg=False).shape == (1, 3)
    assert layer.forward(np.ones((1, 3, 2, 1)), train_flg=True).shape == (1, 3, 2, 1)


@pytest.mark.parametrize("book_statistics", [False, True])
def test_one_sample_in_training_gives_beta_as_the_book(book_statistics, rng):
    """The book's chapter 6 gradient check trains on one sample: var is 0, xhat 0, y = beta."""
    beta = rng.standard_normal(3)
    layer = BatchNormalization(np.ones(3), beta.copy(), book_statistics=book_statistics)
    x = rng.standard_normal((1, 3))
    np.testing.assert_array_equal(layer.forward(x, train_flg=True), beta[None, :])
    np.testing.assert_allclose(layer.running_mean, 0.1 * x[0])
    # one value per feature has no unbiased variance: its zero variance is folded in
    np.testing.assert_allclose(layer.running_var, 0.9 * (0 if book_statistics else 1) + 0.0)
    dx = layer.backward(rng.standard_normal((1, 3)))
    np.testing.assert_allclose(dx, 0, atol=1e-12)


def test_book_statistics_start_at_zero_and_follow_the_biased_variance(rng):
    x = rng.standard_normal((5, 3))
    layer = BatchNormalization(np.ones(3), np.zeros(3), book_statistics=True)
    assert np.all(layer.running_var == 0)
    layer.forward(x)
    np.testing.assert_allclose(layer.running_var, 0.1 * x.var(axis=0))
    torch_like = BatchNormalization(np.ones(3), np.zeros(3))
    torch_like.forward(x)
    np.testing.assert_allclose(torch_like.running_var, 0.9 + 0.1 * x.var(axis=0, ddof=1))


def test_four_d_input_with_one_gamma_per_pixel_is_normalised_per_pixel_as_the_book(rng):
    x = rng.standard_normal((6, 2, 3, 3))
    gamma, beta = rng.standard_normal(18), rng.standard_normal(18)
    per_pixel = BatchNormalization(gamma, beta, eps=EPS)
    flat = BatchNormalization(gamma, beta, eps=EPS)
    out = per_pixel.forward(x)
    np.testing.assert_allclose(out, flat.forward(x.reshape(6, 18)).reshape(x.shape))
    dout = rng.standard_normal(x.shape)
    np.testing.assert_allclose(per_pixel.backward(dout), flat.backward(dout.reshape(6, 18)).reshape(x.shape))
    np.testing.assert_allclose(per_pixel.dgamma, flat.dgamma)
    check_layer_numerically(BatchNormalization(gamma, beta, eps=EPS), x, rng=rng)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_input_is_converted_to_the_parameters_dtype(dtype, rng):
    layer = BatchNormalization(np.ones(3), np.zeros(3))
    assert layer.forward(rng.standard_normal((4, 3)).astype(dtype)).dtype == np.float64


def test_integer_input_and_bad_dout_raise():
    layer = BatchNormalization(np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match="BatchNormalization expected floating-point input"):
        layer.forward(np.ones((2, 3), dtype=np.int64))
    layer.forward(np.arange(6.0).reshape(2, 3))
    with pytest.raises(ValueError, match=r"BatchNormalization.backward expected dout of shape \(2, 3\)"):
        layer.backward(np.ones((3, 2)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gamma": np.ones(3), "beta": np.zeros(2)}, "gamma and beta of the same shape"),
        ({"gamma": np.ones((3, 1)), "beta": np.zeros((3, 1))}, "gamma and beta of the same shape"),
        ({"gamma": np.ones(3, dtype=int), "beta": np.zeros(3, dtype=int)}, "floating-point array for gamma"),
        ({"momentum": 1.5}, "momentum"),
        ({"eps": 0.0}, "eps > 0"),
        ({"running_mean": np.zeros(2)}, r"running_mean of shape \(3,\), got \(2,\)"),
        ({"running_var": np.ones(4)}, r"running_var of shape \(3,\), got \(4,\)"),
    ],
)
def test_bad_construction_raises(kwargs, match):
    arguments = {"gamma": np.ones(3), "beta": np.zeros(3), **kwargs}
    with pytest.raises(ValueError, match=match):
        BatchNormalization(**arguments)
