"""The fast paths behind the benchmark compute what the plain code computes.

No timing here (speed lives in bench/): each test pins that a shortcut taken for speed
gives the same numbers, dtypes and argument safety as the straightforward version. The
convolution kernels have their own file, test_kernels.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from dlscratch import Relu, SoftmaxWithLoss, TwoLayerNet
from dlscratch.train import Trainer


@pytest.fixture
def pixels(rng):
    """uint8 'images' whose label is the brightest of the first three pixels."""
    x = rng.integers(0, 256, size=(150, 12), dtype=np.uint8)
    t = x[:, :3].argmax(axis=1)
    return x[:120], t[:120], x[120:], t[120:]


def _trainer(data, dtype=np.float32, **options):
    network = TwoLayerNet(12, 8, 3, weight_init_std=0.3, seed=0, dtype=dtype)
    settings = {
        "iters": 12,
        "mini_batch_size": 10,
        "optimizer_param": {"lr": 0.5},
        "verbose": False,
        "seed": 0,
    }
    return Trainer(network, *data, **{**settings, **options})


def test_input_scale_trains_like_normalized_floats(pixels):
    x, t, xt, tt = pixels
    scaled = _trainer(pixels, input_scale=1 / 255)
    plain = _trainer((x.astype(np.float32) / np.float32(255), t, xt.astype(np.float32) / np.float32(255), tt))
    a, b = scaled.train(), plain.train()
    # x * (1/255) and x / 255 differ by at most one rounding, so the runs agree closely
    np.testing.assert_allclose(a.train_loss, b.train_loss, rtol=1e-5)
    assert a.train_acc == b.train_acc and a.test_acc == b.test_acc
    assert scaled.x_train.dtype == np.uint8  # the data set itself stays uint8


def test_input_scale_batches_take_the_network_dtype(pixels):
    for dtype in (np.float32, np.float64):
        trainer = _trainer(pixels, dtype=dtype, input_scale=1 / 255)
        batch = trainer._as_input(trainer.x_train[:10])
        assert batch.dtype == dtype and batch.min() >= 0 and batch.max() <= 1


def test_input_scale_accuracy_counts_every_sample_of_a_partial_chunk(pixels, monkeypatch):
    import dlscratch.train as train_module

    monkeypatch.setattr(train_module, "EVAL_CHUNK", 7)  # 30 test samples: chunks of 7, last of 2
    xt, tt = pixels[2:]
    trainer = _trainer(pixels, input_scale=1 / 255)
    expected = trainer.network.accuracy(xt.astype(np.float32) / 255, tt)
    assert trainer.accuracy(xt, tt) == pytest.approx(expected, abs=1e-12)


def test_input_scale_is_checked_and_integers_still_need_it(pixels):
    with pytest.raises(ValueError, match="input_scale"):
        _trainer(pixels, input_scale=0)
    with pytest.raises(ValueError, match=r"floating point.*input_scale=1/255"):
        _trainer(pixels)


def test_the_sampler_draws_what_choice_draws():
    # the Trainer draws batches with Generator.integers, which must equal choice(n, size)
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    for _ in range(5):
        np.testing.assert_array_equal(a.integers(0, 60000, 100), b.choice(60000, 100))


def test_relu_special_values_and_signed_zero():
    layer = Relu()
    x = np.array([[-np.inf, -1.0, -0.0, 0.0, 2.0, np.inf, np.nan]], dtype=np.float32)
    out = layer.forward(x)
    np.testing.assert_array_equal(out, [[0, 0, 0, 0, 2, np.inf, np.nan]])
    assert out.dtype == np.float32
    dx = layer.backward(np.full(x.shape, 3.0, dtype=np.float32))
    # zero exactly where the book's mask x <= 0 holds (NaN <= 0 is False: it passes, as in the book)
    np.testing.assert_array_equal(dx, [[0, 0, 0, 0, 3, 3, 3]])


def test_softmax_with_loss_keeps_y_and_the_callers_arrays(rng):
    layer = SoftmaxWithLoss()
    x = rng.standard_normal((6, 4)).astype(np.float32)
    t = np.array([0, 1, 2, 3, 0, 1])
    x_before = x.copy()
    layer.forward(x, t)
    y_before = layer.y.copy()
    dx = layer.backward(2.0)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(layer.y, y_before)
    expected = (y_before - np.eye(4, dtype=np.float32)[t]) * 2 / 6
    np.testing.assert_allclose(dx, expected, rtol=1e-6, atol=1e-7)
    assert dx.dtype == np.float32
