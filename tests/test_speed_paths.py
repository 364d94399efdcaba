"""The fast paths behind the benchmark compute what the plain code computes.

No timing here (speed lives in bench/): each test pins that a shortcut taken for speed
gives the same numbers, dtypes and argument safety as the straightforward version.
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


# --- Convolution -> Relu -> Pooling fused (dlscratch.layers.fused) ---------------------

FUSED_CASES = [
    # C, FN, filter, stride, pad, H, W
    (1, 3, 5, 1, 0, 12, 12),  # SimpleConvNet's shape, small
    (2, 4, 3, 1, 1, 8, 6),  # DeepConvNet's 3x3 pad 1
    (3, 2, 3, 2, 1, 7, 7),  # stride 2: 4x4 output
    (2, 3, 2, 2, 0, 8, 8),
    (1, 2, 3, 1, 2, 6, 6),  # DeepConvNet's pad 2
]


def _three_layers(rng, C, FN, k, stride, pad, dtype=np.float64, integers=False):
    from dlscratch import Convolution, Pooling

    draw = (lambda shape: rng.integers(-2, 3, shape).astype(dtype)) if integers else rng.standard_normal
    conv = Convolution(draw((FN, C, k, k)).astype(dtype), draw((FN,)).astype(dtype), stride=stride, pad=pad)
    return conv, Relu(), Pooling(2, 2, stride=2), draw


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("integers", [False, True], ids=["random", "with-ties"])
@pytest.mark.parametrize("with_dx", [True, False])
@pytest.mark.parametrize("case", FUSED_CASES)
def test_fused_conv_relu_pool_matches_the_three_layers(case, with_dx, integers, threads, rng, monkeypatch):
    import dlscratch.layers.fused as fused_module
    from dlscratch.layers.fused import ConvReluPool

    # threads=3: the batch of 4 images cut into parts of 1, 1 and 2, each in its own thread
    monkeypatch.setattr(fused_module, "split_count", lambda: threads)
    monkeypatch.setattr(fused_module, "_MIN_PART", 1)
    C, FN, k, stride, pad, H, W = case
    conv, relu, pool, draw = _three_layers(rng, C, FN, k, stride, pad, integers=integers)
    x = draw((4, C, H, W)).astype(np.float64)
    expected_out = pool.forward(relu.forward(conv.forward(x)))
    dout = draw(expected_out.shape).astype(np.float64)
    expected_dx = conv.backward(relu.backward(pool.backward(dout)))
    expected = {name: g.copy() for name, g in conv.grads.items()}

    fused = ConvReluPool(conv, relu, pool)
    x_before, dout_before = x.copy(), dout.copy()
    out = fused.forward(x)
    np.testing.assert_allclose(out, expected_out, rtol=1e-12, atol=1e-12)
    dx = fused.backward(dout) if with_dx else fused.backward_params(dout)
    for name, grad in expected.items():
        np.testing.assert_allclose(conv.grads[name], grad, rtol=1e-10, atol=1e-12, err_msg=name)
    if with_dx:
        np.testing.assert_allclose(dx, expected_dx, rtol=1e-10, atol=1e-12)
    else:
        assert dx is None
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(dout, dout_before)
    np.testing.assert_array_equal(fused.forward(x, train=False), out)  # the evaluation path


def test_fused_step_with_an_odd_output_computes_what_the_layers_do(rng):
    from dlscratch.layers.fused import ConvReluPool

    conv, relu, pool, _ = _three_layers(rng, 1, 2, 3, 1, 0)
    x = rng.standard_normal((2, 1, 7, 7))  # 5x5 output: pooling floors it to 2x2
    expected = pool.forward(relu.forward(conv.forward(x)))
    dout = rng.standard_normal(expected.shape)
    expected_dx = conv.backward(relu.backward(pool.backward(dout)))
    fused = ConvReluPool(conv, relu, pool)
    np.testing.assert_allclose(fused.forward(x), expected)
    np.testing.assert_allclose(fused.backward(dout), expected_dx)


def test_fused_step_keeps_float32():
    from dlscratch.layers.fused import ConvReluPool

    rng = np.random.default_rng(0)
    conv, relu, pool, _ = _three_layers(rng, 1, 3, 5, 1, 0, dtype=np.float32)
    fused = ConvReluPool(conv, relu, pool)
    out = fused.forward(rng.standard_normal((2, 1, 12, 12)).astype(np.float32))
    dx = fused.backward(np.ones_like(out))
    assert out.dtype == dx.dtype == conv.grads["W"].dtype == np.float32


def test_networks_train_through_the_fused_step_as_through_the_layers(rng):
    from dlscratch import DeepConvNet, Dropout, SimpleConvNet

    small = {"filter_num": 3, "filter_size": 3, "pad": 1, "stride": 1}
    simple = SimpleConvNet((2, 8, 8), small, hidden_size=6, output_size=4, weight_init_std=0.3, seed=0)
    deep = DeepConvNet((1, 8, 8), *[small] * 6, hidden_size=5, output_size=4, seed=0)
    for network in (simple, deep):
        x, t = rng.standard_normal((5, *network.config()["input_dim"])), np.array([0, 3, 1, 2, 0])
        for layer in network.layers.values():
            if isinstance(layer, Dropout):  # one fixed mask, so both passes compute one function
                size = 5 if layer is network.layers["Dropout1"] else 4
                layer.fixed_mask = rng.random((5, size)) > 0.5
        # the book's way: loss() runs the layers one by one, then a backward loop over them
        loss = network.loss(x, t, train_flg=True)
        dout = network.lastLayer.backward(1)
        for layer in reversed(network.layers.values()):
            dout = layer.backward(dout)
        by_layers = {key: layer.grads[name].copy() for key, (layer, name) in network._owners.items()}
        fused_loss, grads = network.loss_and_gradient(x, t)
        assert fused_loss == pytest.approx(loss, rel=1e-12)
        for key, grad in grads.items():
            np.testing.assert_allclose(grad, by_layers[key], rtol=1e-10, atol=1e-12, err_msg=key)
        scores = network.predict(x)
        assert network.accuracy(x, t) == np.mean(scores.argmax(axis=1) == t)


def test_adam_split_across_threads_gives_the_same_numbers(rng, monkeypatch):
    import dlscratch.optim as optim_module
    from dlscratch import Adam

    shapes = {"W": (400, 500), "b": (500,)}  # W large enough to be cut in pieces
    params = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    steps = [{k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()} for _ in range(3)]
    results = []
    for threads in (1, 3):
        monkeypatch.setattr(optim_module, "split_count", lambda threads=threads: threads)
        mine = {k: p.copy() for k, p in params.items()}
        optimizer = Adam(lr=0.01)
        for grads in steps:
            optimizer.update(mine, grads)
        results.append(mine)
    for key in shapes:
        np.testing.assert_array_equal(results[0][key], results[1][key])  # element by element: identical
