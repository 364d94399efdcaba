"""The fast tier against the readable one: every kernel computes what the layers compute.

Each kernel, with each epilogue (nothing, ReLU, 2x2 max pooling, both), is held to
Convolution -> Relu -> Pooling run as layers (the book's im2col code): forward, dW, db,
dx, with odd heights and widths, strides, pads, ties, both dtypes, one chunk or many,
one thread or two. Then the selector and the planner: which kernel runs where, and that
networks really train through them.
"""

from __future__ import annotations

import numpy as np
import pytest

from dlscratch import DeepConvNet, Dropout, SimpleConvNet
from dlscratch.kernels import (
    AffineStep,
    ColumnsKernel,
    ConvGeometry,
    ConvStep,
    Epilogue,
    ShiftedKernel,
    WinogradKernel,
    conv_kernel,
    geometry,
    plan_steps,
    set_num_threads,
    winograd,
)
from dlscratch.layers import Affine, Convolution, Pooling, Relu

KERNELS = {"columns": ColumnsKernel, "shifted": ShiftedKernel, "winograd": WinogradKernel}
EPILOGUES = [(False, False), (True, False), (False, True), (True, True)]

# N, C, FN, H, W, filter (FH, FW), stride, pad
CASES = [
    (3, 2, 4, 7, 9, (3, 3), 1, 1),  # odd height and width
    (2, 3, 5, 8, 6, (3, 3), 1, 2),  # pad 2, as DeepConvNet's fourth layer
    (2, 1, 3, 6, 7, (3, 3), 1, 0),  # a first layer: one channel
    (4, 3, 2, 5, 5, (3, 3), 1, 1),  # odd output: pooling drops a row and a column
    (2, 2, 3, 9, 8, (2, 5), 1, 2),  # a wide filter, pad larger than the height's need
    (2, 2, 3, 6, 7, (1, 1), 1, 0),
    (3, 2, 3, 9, 11, (3, 3), 2, 1),  # stride 2
    (2, 3, 2, 10, 9, (2, 2), 3, 0),  # stride 3: gaps between windows
    (2, 2, 3, 21, 20, (3, 3), 1, 1),  # larger: Winograd keeps each image's positions together
]


def _applies(kernel: str, case) -> bool:
    *_, (FH, FW), stride, _ = case
    if kernel == "columns":
        return True
    return stride == 1 and (kernel == "shifted" or (FH, FW) == (3, 3))


# every kernel with every geometry it takes (Winograd: 3x3 stride 1; shifted: stride 1)
KERNEL_CASES = [(name, case) for name in KERNELS for case in CASES if _applies(name, case)]


def _layers(rng, case, relu, pool, dtype=np.float64, integers=False):
    N, C, FN, H, W, (FH, FW), stride, pad = case
    draw = (lambda shape: rng.integers(-2, 3, shape)) if integers else rng.standard_normal
    conv = Convolution(draw((FN, C, FH, FW)).astype(dtype), draw(FN).astype(dtype), stride=stride, pad=pad)
    layers = [conv] + ([Relu()] if relu else []) + ([Pooling(2, 2, stride=2)] if pool else [])
    return layers, draw((N, C, H, W)).astype(dtype)


def _forward(layers, x):
    for layer in layers:
        x = layer.forward(x)
    return x


def _by_layers(layers, x, dout):
    """out, dW, db, dx of the layers in a row, the book's way."""
    out = _forward(layers, x)
    d = dout
    for layer in reversed(layers):
        d = layer.backward(d)
    conv = layers[0]
    return out, conv.dW.copy(), conv.db.copy(), d


def _by_kernel(name, layers, x, dout, with_dx=True):
    conv, relu, pool = layers[0], len(layers) > 1 and type(layers[1]) is Relu, type(layers[-1]) is Pooling
    kernel = KERNELS[name](ConvGeometry(x.shape, conv.W.shape, conv.stride, conv.pad), Epilogue(relu, pool))
    out = kernel.forward(x, conv.W, conv.b)
    return (out, *kernel.backward(dout, conv.W, with_dx))


@pytest.fixture(params=["one chunk, one thread", "an image per chunk, two threads"])
def splitting(request, monkeypatch):
    """Each test whole, then again cut into one-image chunks spread over two threads."""
    if request.param != "one chunk, one thread":
        monkeypatch.setattr(geometry, "CACHE_BYTES", 1)
        set_num_threads(2)
    else:
        monkeypatch.setattr(geometry, "CACHE_BYTES", 1 << 40)
        set_num_threads(1)
    yield request.param
    set_num_threads(None)


@pytest.fixture(params=["images first", "images last"])
def layout(request, monkeypatch):
    """Winograd's work arrays with each image's positions together, or each position's images."""
    monkeypatch.setattr(winograd, "IMAGES_LAST_BELOW", 0 if request.param == "images first" else 10**9)
    return request.param


@pytest.mark.parametrize("integers", [False, True], ids=["random", "with-ties"])
@pytest.mark.parametrize(("relu", "pool"), EPILOGUES, ids=["conv", "relu", "pool", "relu+pool"])
@pytest.mark.parametrize(("name", "case"), KERNEL_CASES)
def test_every_kernel_computes_what_the_layers_compute(
    name, case, relu, pool, integers, splitting, layout, rng
):
    layers, x = _layers(rng, case, relu, pool, integers=integers)
    shape = _forward(layers, x).shape
    dout = (rng.integers(-2, 3, shape) if integers else rng.standard_normal(shape)).astype(x.dtype)
    expected = _by_layers(layers, x, dout)
    x_before, dout_before = x.copy(), dout.copy()
    got = _by_kernel(name, layers, x, dout)
    for what, ours, books in zip(("out", "dW", "db", "dx"), got, expected, strict=True):
        assert ours.shape == books.shape and ours.dtype == books.dtype, what
        np.testing.assert_allclose(ours, books, rtol=1e-10, atol=1e-10, err_msg=what)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(dout, dout_before)


@pytest.mark.parametrize("name", KERNELS)
def test_without_dx_the_parameter_gradients_are_the_same(name, rng):
    case = (3, 2, 4, 7, 8, (3, 3), 1, 1)
    layers, x = _layers(rng, case, True, True)
    dout = rng.standard_normal(_forward(layers, x).shape)
    with_dx = _by_kernel(name, layers, x, dout, with_dx=True)
    without = _by_kernel(name, layers, x, dout, with_dx=False)
    assert without[3] is None
    np.testing.assert_array_equal(without[1], with_dx[1])
    np.testing.assert_array_equal(without[2], with_dx[2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", KERNELS)
def test_kernels_compute_in_the_dtype_they_are_given(name, dtype, rng):
    case = (4, 16, 16, 9, 7, (3, 3), 1, 1)  # enough channels for every kernel
    layers, x = _layers(rng, case, True, True, dtype=dtype)
    dout = rng.standard_normal((4, 16, 4, 3)).astype(dtype)
    expected = _by_layers(layers, x, dout)
    got = _by_kernel(name, layers, x, dout)
    tolerance = 2e-4 if dtype == np.float32 else 1e-10
    for what, ours, books in zip(("out", "dW", "db", "dx"), got, expected, strict=True):
        assert ours.dtype == dtype, what
        np.testing.assert_allclose(ours, books, rtol=tolerance, atol=tolerance, err_msg=what)


def test_the_same_shapes_in_another_dtype_get_their_own_work_arrays(rng):
    """float32 after float64 of the same shapes: no work array of the wrong dtype is reused."""
    case = (2, 16, 16, 6, 6, (3, 3), 1, 1)
    for name in KERNELS:
        for dtype in (np.float64, np.float32, np.float64):
            layers, x = _layers(rng, case, True, False, dtype=dtype)
            dout = rng.standard_normal((2, 16, 6, 6)).astype(dtype)
            for ours, books in zip(
                _by_kernel(name, layers, x, dout), _by_layers(layers, x, dout), strict=True
            ):
                assert ours.dtype == dtype
                np.testing.assert_allclose(ours, books, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("name", KERNELS)
def test_results_are_the_same_bits_on_one_thread_and_on_two(name, layout, rng, monkeypatch):
    monkeypatch.setattr(geometry, "CACHE_BYTES", 1 << 16)  # several chunks
    case = (12, 16, 16, 10, 9, (3, 3), 1, 1)
    layers, x = _layers(rng, case, True, True, dtype=np.float32)
    dout = rng.standard_normal((12, 16, 5, 4)).astype(np.float32)
    results = []
    try:
        for threads in (1, 2):
            set_num_threads(threads)
            results.append(_by_kernel(name, layers, x, dout))
    finally:
        set_num_threads(None)
    for one, two in zip(*results, strict=True):
        np.testing.assert_array_equal(one, two)


def test_the_winograd_transforms_are_the_papers_matrices(rng):
    """B^T d as four operations, the transposed step B d over a shift, and A^T . A as AA."""
    d = rng.standard_normal((4, 7))
    out = np.empty_like(d)
    winograd._b_transposed(np, *d, out)
    np.testing.assert_allclose(out, winograd.B_T @ d)
    shift, back = 2, winograd.B_T.T @ d  # pixels 0 and 2 in `first`, 1 and 3 in `second`, 2 apart
    first, second = np.empty(7 + shift), np.empty(7 + shift)
    winograd._b_back(np, d, first, second, shift, "test b_back")
    expected_first, expected_second = np.zeros(7 + shift), np.zeros(7 + shift)
    expected_first[:7] += back[0]
    expected_first[shift:] += back[2]
    expected_second[:7] += back[1]
    expected_second[shift:] += back[3]
    np.testing.assert_allclose(first, expected_first)
    np.testing.assert_allclose(second, expected_second)
    np.testing.assert_array_equal(winograd.AA, np.kron(winograd.A_T, winograd.A_T))


def test_kernel_arguments_are_checked():
    with pytest.raises(ValueError, match="Winograd kernel needs 3x3 filters and stride 1"):
        WinogradKernel(ConvGeometry((1, 1, 8, 8), (1, 1, 5, 5), 1, 0), Epilogue(False, False))
    with pytest.raises(ValueError, match="shifted kernel needs stride 1"):
        ShiftedKernel(ConvGeometry((1, 1, 8, 8), (1, 1, 3, 3), 2, 0), Epilogue(False, False))


# --- the selector and the planner ------------------------------------------------------


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "expected"),
    [
        ((100, 1, 28, 28), (16, 1, 3, 3), 1, ColumnsKernel),  # DeepConvNet's first layer
        ((100, 16, 28, 28), (16, 16, 3, 3), 1, WinogradKernel),  # ... and the other five
        ((100, 32, 14, 14), (32, 32, 3, 3), 1, WinogradKernel),
        ((100, 1, 28, 28), (30, 1, 5, 5), 1, ColumnsKernel),  # SimpleConvNet's
        ((100, 16, 28, 28), (16, 16, 5, 5), 1, ShiftedKernel),
        ((100, 8, 28, 28), (16, 8, 3, 3), 1, ShiftedKernel),
        ((100, 16, 28, 28), (16, 16, 3, 3), 2, ColumnsKernel),
    ],
)
def test_the_selector_picks_a_kernel_by_geometry(x_shape, w_shape, stride, expected):
    kernel = conv_kernel(ConvGeometry(x_shape, w_shape, stride, 1), Epilogue(True, False))
    assert type(kernel) is expected


def _kinds(steps):
    return [repr(step) if isinstance(step, ConvStep) else type(step).__name__ for step in steps]


def test_the_planner_groups_each_convolution_with_its_relu_and_pooling():
    simple = SimpleConvNet(seed=0)
    assert _kinds(plan_steps(list(simple.layers.values()))) == [
        "ConvStep(Convolution -> Relu -> Pooling)",
        "AffineStep",  # 4320 x 100 weights: its products cut in pieces
        "Relu",
        "Affine",  # 100 x 10: faster as the layer
    ]
    deep = DeepConvNet(seed=0)
    assert _kinds(plan_steps(list(deep.layers.values())))[:6] == [
        "ConvStep(Convolution -> Relu)",
        "ConvStep(Convolution -> Relu -> Pooling)",
        "ConvStep(Convolution -> Relu)",
        "ConvStep(Convolution -> Relu -> Pooling)",
        "ConvStep(Convolution -> Relu)",
        "ConvStep(Convolution -> Relu -> Pooling)",
    ]
    batchnorm = DeepConvNet(seed=0, use_batchnorm=True)
    assert _kinds(plan_steps(list(batchnorm.layers.values())))[:4] == [
        "ConvStep(Convolution)",
        "BatchNormalization",
        "Relu",
        "ConvStep(Convolution)",
    ]


def test_the_planner_leaves_other_poolings_and_subclasses_to_the_layers(rng):
    class MyConvolution(Convolution):
        pass

    W, b = rng.standard_normal((2, 1, 3, 3)), np.zeros(2)
    layers = [Convolution(W, b), Relu(), Pooling(3, 3, stride=2), MyConvolution(W[:, :1], b), Pooling(2, 2)]
    assert _kinds(plan_steps(layers)) == [
        "ConvStep(Convolution -> Relu)",
        "Pooling",
        "MyConvolution",
        "Pooling",
    ]


def test_networks_train_and_evaluate_on_the_kernels_not_on_the_layers(rng, monkeypatch):
    """The fast path does not fall back silently: the layers' own forward never runs."""
    small = {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1}
    simple = SimpleConvNet(
        (1, 10, 10), {"filter_num": 4, "filter_size": 5, "pad": 0, "stride": 1}, 6, 3, seed=0
    )
    deep = DeepConvNet((1, 8, 8), *[small] * 6, hidden_size=5, output_size=3, seed=0)
    for layer_class in (Convolution, Pooling):

        def refuse(self, *args, **kwargs):
            raise AssertionError(f"{type(self).__name__}.forward ran instead of a kernel")

        monkeypatch.setattr(layer_class, "forward", refuse)
    used = []
    select = conv_kernel

    def recording(geometry, epilogue, xp=np):
        kernel = select(geometry, epilogue, xp)
        used.append(type(kernel).__name__)
        return kernel

    monkeypatch.setattr("dlscratch.kernels.steps.conv_kernel", recording)
    for network in (simple, deep):
        x, t = rng.standard_normal((3, *network.config()["input_dim"])), np.array([0, 2, 1])
        network.loss_and_gradient(x, t)
        network.accuracy(x, t)
    assert used == ["ColumnsKernel"] * 2 + (["ColumnsKernel"] + ["WinogradKernel"] * 5) * 2


def test_networks_train_through_the_kernels_as_through_the_layers(rng):
    small = {"filter_num": 3, "filter_size": 3, "pad": 1, "stride": 1}
    simple = SimpleConvNet((2, 8, 7), small, hidden_size=6, output_size=4, weight_init_std=0.3, seed=0)
    wide = {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1}
    deep = DeepConvNet((1, 9, 9), *[wide] * 6, hidden_size=5, output_size=4, seed=0)
    strided = SimpleConvNet((1, 9, 9), {**small, "stride": 2}, 5, 4, weight_init_std=0.3, seed=0)
    for network in (simple, deep, strided):
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
        fast_loss, grads = network.loss_and_gradient(x, t)
        assert fast_loss == pytest.approx(loss, rel=1e-12)
        for key, grad in grads.items():
            np.testing.assert_allclose(grad, by_layers[key], rtol=1e-9, atol=1e-11, err_msg=key)
        scores = network.predict(x)
        assert network.accuracy(x, t) == np.mean(scores.argmax(axis=1) == t)


def test_a_step_whose_output_is_too_small_to_pool_runs_the_layers_and_they_explain(rng):
    conv = Convolution(rng.standard_normal((2, 1, 3, 3)), np.zeros(2))
    step = ConvStep(conv, Relu(), Pooling(2, 2))
    with pytest.raises(ValueError, match="Pooling cannot slide a 2x2 window"):
        step.forward(rng.standard_normal((1, 1, 3, 5)))
    out = step.forward(rng.standard_normal((2, 1, 4, 5)))  # 2x3 output: one window across
    assert out.shape == (2, 2, 1, 1) and step.kernel is not None


def test_a_step_checks_dout_and_skips_dx_where_asked(rng):
    conv = Convolution(rng.standard_normal((2, 1, 3, 3)), np.zeros(2))
    step = ConvStep(conv, Relu())
    x = rng.standard_normal((2, 1, 5, 5))
    step.forward(x, train_flg=False)
    with pytest.raises(ValueError, match="needs a forward pass with train_flg=True first"):
        step.backward(np.ones((2, 2, 3, 3)))
    out = step.forward(x)
    with pytest.raises(ValueError, match=r"Relu.backward expected dout of shape \(2, 2, 3, 3\)"):
        step.backward(np.ones((2, 2, 3, 4)))
    assert step.backward_params(np.ones_like(out)) is None
    assert np.any(conv.dW != 0)


def test_a_dense_network_plans_no_step_of_its_own(rng):
    layers = [Affine(rng.standard_normal((4, 3)), np.zeros(3)), Relu()]
    assert plan_steps(layers) == layers


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(7, 12), (9, 3, 2, 2), (1, 12)])
def test_an_affine_step_computes_what_the_layer_computes(shape, threads, rng):
    layer = Affine(rng.standard_normal((12, 5)), rng.standard_normal(5))
    x, dout = rng.standard_normal(shape), rng.standard_normal((shape[0], 5))
    expected = layer.forward(x), layer.backward(dout), layer.dW.copy(), layer.db.copy()
    step = AffineStep(layer)
    try:
        set_num_threads(threads)
        out = step.forward(x)
        dx = step.backward(dout)
    finally:
        set_num_threads(None)
    for ours, books in zip((out, dx, layer.dW, layer.db), expected, strict=True):
        assert ours.shape == books.shape
        np.testing.assert_allclose(ours, books, rtol=1e-12, atol=1e-12)
    assert step.backward_params(dout) is None


def test_an_affine_step_refuses_what_the_layer_refuses(rng):
    step = AffineStep(Affine(rng.standard_normal((12, 5)), np.zeros(5)))
    with pytest.raises(ValueError, match=r"Affine expected 12 input features, got 11"):
        step.forward(np.zeros((2, 11)))
    step.forward(np.zeros((2, 12)))
    with pytest.raises(ValueError, match=r"Affine.backward expected dout of shape \(2, 5\)"):
        step.backward(np.zeros((2, 4)))
