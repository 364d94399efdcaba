"""One-call checks of a layer: backward against numerical gradients and against torch.

check_layer_numerically(layer, x) and assert_matches_torch(layer, x, torch_fn) both
compare the input gradient and every parameter gradient; the torch one also compares
the forward output, shapes and dtypes. Both print "ours vs theirs" for a mismatch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dlscratch.gradient import numerical_gradient


def _forward(layer: Any, x: np.ndarray, forward_kwargs: dict[str, Any]) -> np.ndarray:
    return layer.forward(x, **forward_kwargs)


def _assert_close(name: str, ours: np.ndarray, theirs: np.ndarray, rtol: float, atol: float) -> None:
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{name}: shape ours {ours.shape} vs theirs {theirs.shape}"
    if not np.allclose(ours, theirs, rtol=rtol, atol=atol):
        worst = np.unravel_index(np.argmax(np.abs(ours - theirs)), ours.shape)
        raise AssertionError(
            f"{name}: ours {ours[worst]!r} vs theirs {theirs[worst]!r} at {worst} "
            f"(max abs diff {np.max(np.abs(ours - theirs)):.3g})"
        )


def check_layer_numerically(
    layer: Any,
    x: np.ndarray,
    *,
    rng: np.random.Generator | None = None,
    forward_kwargs: dict[str, Any] | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-7,
) -> None:
    """Backward of a float64 layer against central differences of sum(forward(x) * dout).

    A random dout (not ones) makes every output element matter differently, so a backward
    that mixes up positions cannot pass.
    """
    rng = rng or np.random.default_rng(0)
    kwargs = forward_kwargs or {}
    x = np.array(x, dtype=np.float64)
    out = _forward(layer, x, kwargs)
    dout = rng.standard_normal(out.shape)
    dout_before = dout.copy()
    dx = layer.backward(dout)
    assert np.array_equal(dout, dout_before), f"{type(layer).__name__}.backward modified dout"
    analytic = {"x": np.array(dx, copy=True)}
    analytic.update({k: np.array(g, copy=True) for k, g in layer.grads.items()})

    def objective(_: np.ndarray) -> float:
        return float(np.sum(_forward(layer, x, kwargs) * dout))

    numeric = {"x": numerical_gradient(objective, x)}
    numeric.update({k: numerical_gradient(objective, p) for k, p in layer.params.items()})
    for name in numeric:
        _assert_close(f"{type(layer).__name__} d{name}", analytic[name], numeric[name], rtol, atol)


def assert_matches_torch(
    layer: Any,
    x: np.ndarray,
    torch_fn: Callable[..., Any],
    *,
    rng: np.random.Generator | None = None,
    forward_kwargs: dict[str, Any] | None = None,
    rtol: float = 1e-7,
    atol: float = 1e-9,
) -> None:
    """Forward, input gradient, parameter gradients, shape and dtype against torch.autograd.

    torch_fn(tx, *tparams) computes the same function in torch, parameters passed in the
    order of layer.params.
    """
    import torch

    rng = rng or np.random.default_rng(0)
    kwargs = forward_kwargs or {}
    tx = torch.tensor(x, requires_grad=True)
    tparams = [torch.tensor(p, requires_grad=True) for p in layer.params.values()]
    tout = torch_fn(tx, *tparams)

    out = _forward(layer, x, kwargs)
    assert out.dtype == x.dtype, f"{type(layer).__name__} output dtype {out.dtype}, input {x.dtype}"
    _assert_close(f"{type(layer).__name__} forward", out, tout.detach().numpy(), rtol, atol)

    dout = rng.standard_normal(out.shape).astype(x.dtype)
    dx = layer.backward(dout.copy())
    tout.backward(torch.tensor(dout))
    assert dx.dtype == x.dtype, f"{type(layer).__name__} dx dtype {dx.dtype}, input {x.dtype}"
    _assert_close(f"{type(layer).__name__} dx", dx, tx.grad.numpy(), rtol, atol)
    for (name, grad), tparam in zip(layer.grads.items(), tparams, strict=True):
        _assert_close(f"{type(layer).__name__} d{name}", grad, tparam.grad.numpy(), rtol, atol)


def assert_leaves_arguments_alone(
    layer: Any, x: np.ndarray, rng: np.random.Generator, forward_kwargs: dict[str, Any] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Run forward(x) and backward(dout) with a random dout and check neither changed x or
    dout (the book's Relu zeroed dout in place) and that dx is a new array. Returns (dx, dout)."""
    x_before = x.copy()
    out = layer.forward(x, **(forward_kwargs or {}))
    dout = rng.standard_normal(out.shape).astype(out.dtype)
    dout_before = dout.copy()
    dx = layer.backward(dout)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(dout, dout_before)
    assert dx is not dout
    return dx, dout
