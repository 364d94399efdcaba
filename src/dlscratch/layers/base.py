"""What every layer shares: parameter storage, the train/test switch, input checks."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np


class Layer:
    """Base of the layers with parameters or modes; forward/backward are the subclass's.

    params:  name -> array the optimizer updates in place (e.g. {"W": ..., "b": ...}).
    grads:   the same names -> gradients, rewritten in place by every backward.
    buffers: name -> array saved with the model but not trained (BatchNorm's running mean).
    uses_train_flag: True when forward takes ``train_flg`` (Dropout, BatchNormalization),
        so networks know to pass it, as the book's MultiLayerNetExtend does.
    """

    uses_train_flag: ClassVar[bool] = False

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}

    def _set_params(self, **arrays: np.ndarray) -> None:
        """Store parameters and zero gradients of the same shape and dtype."""
        for name, value in arrays.items():
            value = np.asarray(value)
            if not np.issubdtype(value.dtype, np.floating):
                raise ValueError(
                    f"{type(self).__name__} expected a floating-point array for {name}, "
                    f"got dtype {value.dtype}"
                )
            self.params[name] = value
            self.grads[name] = np.zeros_like(value)

    def config(self) -> dict[str, Any]:
        """Constructor arguments other than arrays, JSON-ready, to rebuild this layer."""
        return {}

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={v.shape}" for k, v in self.params.items())
        settings = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({', '.join(s for s in (shapes, settings) if s)})"


def param_alias(name: str) -> property:
    """The book's attribute for a parameter (Affine.W, Convolution.b, ...), read and write.

    Assigning a new array, as the book's load_params does (``layer.W = params['W1']``),
    replaces the parameter; it must keep its shape and be floating point.
    """

    def get(layer: Layer) -> np.ndarray:
        return layer.params[name]

    def set_(layer: Layer, value: np.ndarray) -> None:
        value = np.asarray(value)
        old = layer.params[name]
        if value.shape != old.shape:
            raise ValueError(
                f"{type(layer).__name__}.{name} must keep its shape {old.shape}, got {value.shape}"
            )
        layer._set_params(**{name: value})

    return property(get, set_, doc=f"The parameter params[{name!r}] (the book's attribute name).")


def check_ndim(layer: object, x: np.ndarray, allowed: tuple[int, ...], what: str) -> None:
    """Raise ValueError naming the layer when x has none of the allowed numbers of axes."""
    if x.ndim not in allowed:
        raise ValueError(f"{type(layer).__name__} expected {what}, got an array of shape {x.shape}")


def check_float(layer: object, x: np.ndarray) -> np.ndarray:
    """x as an array; ValueError naming the layer if it is not floating point."""
    x = np.asarray(x)
    if x.dtype.kind != "f":  # np.issubdtype(x.dtype, np.floating) without its cost on every call
        raise ValueError(
            f"{type(layer).__name__} expected floating-point input, got dtype {x.dtype} "
            f"(convert with x.astype(np.float32))"
        )
    return x


def in_param_dtype(layer: Layer, x: np.ndarray) -> np.ndarray:
    """x checked to be floating point, as the dtype of the layer's parameters.

    A layer computes in its parameters' dtype, as the book's layers do: float16 or float32
    images given to a float64 network become float64 once, at the first layer with
    parameters, instead of dragging the whole network into a slower or coarser dtype.
    """
    x = check_float(layer, x)
    dtype = next(iter(layer.params.values())).dtype
    return x if x.dtype == dtype else x.astype(dtype)


def check_same_shape(layer: object, dout: np.ndarray, shape: tuple[int, ...]) -> None:
    """Raise ValueError when backward's dout does not match forward's output shape."""
    if np.shape(dout) != shape:
        raise ValueError(
            f"{type(layer).__name__}.backward expected dout of shape {shape}, got {np.shape(dout)}"
        )
