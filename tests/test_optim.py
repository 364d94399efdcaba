"""Optimizers: each step against its formula and torch.optim, in-place updates, state, lookup."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from dlscratch.nets.two_layer import TwoLayerNet
from dlscratch.optim import SGD, AdaGrad, Adam, Momentum, Nesterov, Optimizer, RMSprop, get_optimizer

LR = 0.1
SHAPES = {"W": (3, 4), "b": (4,)}
OPTIMIZERS = [SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam]


def random_params(rng: np.random.Generator, dtype=np.float64) -> dict[str, np.ndarray]:
    return {k: rng.standard_normal(shape).astype(dtype) for k, shape in SHAPES.items()}


def run(optimizer: Optimizer, params: dict[str, np.ndarray], grad_steps: list[dict[str, np.ndarray]]) -> None:
    for grads in grad_steps:
        optimizer.update(params, grads)


# (a) two steps of each optimizer written out by hand, for one array p and gradients g1, g2


def sgd_by_hand(p, g1, g2):
    p = p - LR * g1
    return p - LR * g2


def momentum_by_hand(p, g1, g2, m=0.9):
    v = -LR * g1  # v starts at 0
    p = p + v
    v = m * v - LR * g2
    return p + v


def nesterov_by_hand(p, g1, g2, m=0.9):
    p = p - (1 + m) * LR * g1  # v is still 0
    v = -LR * g1
    return p + m * m * v - (1 + m) * LR * g2


def adagrad_by_hand(p, g1, g2, eps=1e-7):
    h = g1 * g1
    p = p - LR * g1 / (np.sqrt(h) + eps)
    h = h + g2 * g2
    return p - LR * g2 / (np.sqrt(h) + eps)


def rmsprop_by_hand(p, g1, g2, d=0.99, eps=1e-7):
    h = (1 - d) * g1 * g1
    p = p - LR * g1 / (np.sqrt(h) + eps)
    h = d * h + (1 - d) * g2 * g2
    return p - LR * g2 / (np.sqrt(h) + eps)


def adam_by_hand(p, g1, g2, b1=0.9, b2=0.999, eps=1e-8):
    m, v = (1 - b1) * g1, (1 - b2) * g1 * g1
    p = p - LR * (m / (1 - b1)) / (np.sqrt(v / (1 - b2)) + eps)
    m, v = b1 * m + (1 - b1) * g2, b2 * v + (1 - b2) * g2 * g2
    return p - LR * (m / (1 - b1**2)) / (np.sqrt(v / (1 - b2**2)) + eps)


BY_HAND = [sgd_by_hand, momentum_by_hand, nesterov_by_hand, adagrad_by_hand, rmsprop_by_hand, adam_by_hand]


@pytest.mark.parametrize(("cls", "by_hand"), zip(OPTIMIZERS, BY_HAND, strict=True))
def test_two_steps_follow_the_formula(cls, by_hand, rng):
    params = random_params(rng)
    start = {k: p.copy() for k, p in params.items()}
    grads = [random_params(rng), random_params(rng)]
    optimizer = cls(lr=LR)
    optimizer.update(params, grads[0])
    assert optimizer.step_count == 1
    optimizer.update(params, grads[1])
    assert optimizer.step_count == 2
    for key in params:
        expected = by_hand(start[key], grads[0][key], grads[1][key])
        np.testing.assert_allclose(
            params[key], expected, rtol=1e-12, atol=1e-15, err_msg=f"{cls.__name__} {key}"
        )


# (b) several steps against torch.optim, fed the same gradients

TORCH_TWINS: list[tuple[type[Optimizer], Callable]] = [
    (SGD, lambda torch, ps: torch.optim.SGD(ps, lr=LR)),
    (Momentum, lambda torch, ps: torch.optim.SGD(ps, lr=LR, momentum=0.9)),
    (Nesterov, lambda torch, ps: torch.optim.SGD(ps, lr=LR, momentum=0.9, nesterov=True)),
    (
        AdaGrad,
        lambda torch, ps: torch.optim.Adagrad(ps, lr=LR, eps=1e-7, initial_accumulator_value=0, lr_decay=0),
    ),
    (RMSprop, lambda torch, ps: torch.optim.RMSprop(ps, lr=LR, alpha=0.99, eps=1e-7)),
    (Adam, lambda torch, ps: torch.optim.Adam(ps, lr=LR, eps=1e-8)),
]


@pytest.mark.parametrize(("cls", "make_torch"), TORCH_TWINS, ids=[c.__name__ for c, _ in TORCH_TWINS])
def test_five_steps_match_torch(cls, make_torch, rng, torch):
    params = random_params(rng)
    tparams = {k: torch.tensor(p.copy(), requires_grad=True) for k, p in params.items()}
    toptimizer = make_torch(torch, list(tparams.values()))
    grad_steps = [random_params(rng) for _ in range(5)]
    run(cls(lr=LR), params, grad_steps)
    for grads in grad_steps:
        for key, tparam in tparams.items():
            tparam.grad = torch.tensor(grads[key])
        toptimizer.step()
    for key, tparam in tparams.items():
        np.testing.assert_allclose(
            params[key],
            tparam.detach().numpy(),
            rtol=1e-12,
            atol=1e-14,
            err_msg=f"{cls.__name__} {key}: ours vs torch",
        )


# (c) updates happen in place, so layers stay connected to the network's params


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls", OPTIMIZERS)
def test_training_a_network_updates_its_arrays_in_place(cls, dtype, rng):
    net = TwoLayerNet(4, 5, 3, weight_init_std=0.5, seed=0, dtype=dtype)
    x, t = rng.standard_normal((8, 4)).astype(dtype), rng.integers(0, 3, 8)
    arrays = dict(net.params)
    start = {k: p.copy() for k, p in arrays.items()}
    optimizer = cls(lr=0.05)
    losses = []
    for _ in range(5):
        loss, grads = net.loss_and_gradient(x, t)
        losses.append(loss)
        optimizer.update(net.params, grads)
    assert net.layers["Affine1"].W is net.params["W1"] is arrays["W1"]
    assert net.layers["Affine2"].b is net.params["b2"] is arrays["b2"]
    for key, param in net.params.items():
        assert param.dtype == dtype, f"{cls.__name__} made {key} {param.dtype}"
        assert not np.array_equal(param, start[key]), f"{cls.__name__} did not move {key}"
    for slot in optimizer.slots.values():
        assert all(a.dtype == dtype for a in slot.values())
    assert losses[-1] < losses[0]


def test_float32_params_stay_float32_with_float64_gradients(rng):
    for cls in OPTIMIZERS:
        params = random_params(rng, np.float32)
        run(cls(), params, [random_params(rng) for _ in range(2)])
        assert all(p.dtype == np.float32 for p in params.values()), cls.__name__


def test_update_without_a_gradient_raises(rng):
    with pytest.raises(ValueError, match=r"SGD.update got no gradient for \['b'\]"):
        SGD().update(random_params(rng), {"W": np.zeros(SHAPES["W"])})


# (d) state_dict / load_state_dict resume training exactly


@pytest.mark.parametrize("cls", OPTIMIZERS)
def test_state_dict_round_trip_is_bit_identical(cls, rng):
    params = random_params(rng)
    grad_steps = [random_params(rng) for _ in range(5)]
    optimizer = cls(lr=0.03)
    run(optimizer, params, grad_steps[:3])
    state, saved = optimizer.state_dict(), {k: p.copy() for k, p in params.items()}
    run(optimizer, params, grad_steps[3:])

    resumed = cls()  # default hyperparameters: the state brings lr back
    resumed.load_state_dict(state)
    assert resumed.hyperparameters() == optimizer.hyperparameters()
    assert resumed.step_count == 3
    run(resumed, saved, grad_steps[3:])
    for key in params:
        np.testing.assert_array_equal(saved[key], params[key], err_msg=f"{cls.__name__} {key}")


def test_state_dict_holds_copies(rng):
    params = random_params(rng)
    optimizer = Momentum()
    optimizer.update(params, random_params(rng))
    state = optimizer.state_dict()
    frozen = state["slots"]["v"]["W"].copy()
    optimizer.update(params, random_params(rng))
    np.testing.assert_array_equal(state["slots"]["v"]["W"], frozen)
    restored = Momentum()
    restored.load_state_dict(state)
    state["slots"]["v"]["W"][...] = 0  # the loaded optimizer does not share the dict's arrays
    np.testing.assert_array_equal(restored.slots["v"]["W"], frozen)


def test_load_state_dict_refuses_another_type_or_unknown_slots():
    with pytest.raises(ValueError, match="cannot load 'SGD' state into Adam"):
        Adam().load_state_dict(SGD().state_dict())
    state = AdaGrad().state_dict()
    state["slots"]["v"] = {}
    with pytest.raises(ValueError, match=r"AdaGrad has no state named \['v'\]"):
        AdaGrad().load_state_dict(state)


# (e) lookup by name and argument checks


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("SGD", SGD),
        ("sgd", SGD),
        ("Momentum", Momentum),
        ("NESTEROV", Nesterov),
        ("AdaGrad", AdaGrad),
        ("adagrad", AdaGrad),
        ("RMSprop", RMSprop),
        ("rmsprpo", RMSprop),
        ("Adam", Adam),
        ("adam", Adam),
    ],
)
def test_get_optimizer_by_name(name, cls):
    optimizer = get_optimizer(name, lr=0.5)
    assert type(optimizer) is cls and optimizer.lr == 0.5


def test_get_optimizer_passes_hyperparameters_and_instances_through():
    assert get_optimizer("momentum", lr=0.2, momentum=0.5).hyperparameters() == {"lr": 0.2, "momentum": 0.5}
    adam = Adam()
    assert get_optimizer(adam) is adam
    assert get_optimizer("adam").hyperparameters() == {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


def test_get_optimizer_errors():
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamw'; choose one of AdaGrad, Adam, .*SGD"):
        get_optimizer("adamw")
    with pytest.raises(ValueError, match=r"SGD: .*momentum"):
        get_optimizer("sgd", momentum=0.9)


@pytest.mark.parametrize("lr", [0, -0.1, float("nan"), float("inf")])
@pytest.mark.parametrize("cls", OPTIMIZERS)
def test_bad_learning_rate_raises(cls, lr):
    with pytest.raises(ValueError, match=f"{cls.__name__} expected a learning rate lr > 0"):
        cls(lr=lr)
    with pytest.raises(ValueError, match="learning rate"):
        get_optimizer(cls.__name__, lr=lr)


def test_repr_shows_hyperparameters():
    assert repr(RMSprop(lr=0.5)) == "RMSprop(lr=0.5, decay_rate=0.99, eps=1e-07)"


@pytest.mark.parametrize("name", ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"])
def test_plain_number_parameters_are_updated_in_the_dict(name):
    """The book's optimizer_compare_naive moves a point {'x': -7.0, 'y': 2.0} on x^2/20 + y^2."""
    point, as_arrays = {"x": -7.0, "y": 2.0}, {"x": np.array([-7.0]), "y": np.array([2.0])}
    by_dict, by_arrays = get_optimizer(name, lr=0.1), get_optimizer(name, lr=0.1)
    for _ in range(5):
        by_dict.update(point, {"x": point["x"] / 10.0, "y": 2.0 * point["y"]})
        by_arrays.update(as_arrays, {"x": as_arrays["x"] / 10.0, "y": 2.0 * as_arrays["y"]})
    assert isinstance(point["x"], float) and point != {"x": -7.0, "y": 2.0}
    assert point == {"x": as_arrays["x"][0], "y": as_arrays["y"][0]}


@pytest.mark.parametrize("cls", OPTIMIZERS)
@pytest.mark.parametrize("threads", [1, 2])
def test_a_large_parameter_updated_in_pieces_gets_the_whole_arrays_bits(cls, threads, rng, monkeypatch):
    # update() cuts a parameter of 2 * UPDATE_PIECE elements or more into pieces, spread over
    # the threads; a strided parameter is updated whole. All three must give the same bits.
    import dlscratch.optim
    from dlscratch.kernels.parallel import set_num_threads

    monkeypatch.setattr(dlscratch.optim, "UPDATE_PIECE", 7)  # 45 elements: 7 pieces of 6 or 7
    big = {"W": rng.standard_normal((5, 9)).astype(np.float32)}
    grad_steps = [{"W": rng.standard_normal((5, 9)).astype(np.float32)} for _ in range(3)]
    strided = {"W": np.asfortranarray(big["W"])}  # not C-contiguous: one whole call
    whole, start = {"W": big["W"].copy()}, big["W"].copy()
    set_num_threads(threads)
    try:
        run(cls(lr=LR), big, grad_steps)
        run(cls(lr=LR), strided, grad_steps)
        monkeypatch.setattr(dlscratch.optim, "UPDATE_PIECE", 1000)
        run(cls(lr=LR), whole, grad_steps)
    finally:
        set_num_threads(None)
    assert big["W"].tobytes() == whole["W"].tobytes()
    assert np.ascontiguousarray(strided["W"]).tobytes() == whole["W"].tobytes()
    assert not np.array_equal(whole["W"], start)
