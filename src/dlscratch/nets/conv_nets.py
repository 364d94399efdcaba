"""The convolutional networks of chapters 7 and 8: SimpleConvNet and DeepConvNet."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np

from dlscratch.layers.activation import Relu
from dlscratch.layers.affine import Affine
from dlscratch.layers.conv import Convolution, conv_output_size
from dlscratch.layers.dropout import Dropout
from dlscratch.layers.normalization import BatchNormalization
from dlscratch.layers.pooling import Pooling
from dlscratch.nets.init import WeightInitStd, as_rng, check_dtype, init_scale, random_weights
from dlscratch.nets.multi_layer import _child_seed
from dlscratch.nets.sequential import Sequential

ConvParam = Mapping[str, int]


def _check_input_dim(name: str, input_dim: Any) -> tuple[int, int, int]:
    dims = tuple(input_dim)
    if len(dims) != 3 or not all(isinstance(d, (int, np.integer)) and d > 0 for d in dims):
        raise ValueError(
            f"{name} expected input_dim (channels, height, width) of positive ints, got {input_dim!r}"
        )
    return int(dims[0]), int(dims[1]), int(dims[2])


def _conv_layer(
    rng: Any, channels: int, param: ConvParam, scale: WeightInitStd, dtype: np.dtype
) -> Convolution:
    missing = {"filter_num", "filter_size", "pad", "stride"} - set(param)
    if missing:
        raise ValueError(f"conv_param is missing {sorted(missing)}")
    size, count = param["filter_size"], param["filter_num"]
    W = random_weights(rng, (count, channels, size, size), init_scale(scale, channels * size * size), dtype)
    return Convolution(W, np.zeros(count, dtype), stride=param["stride"], pad=param["pad"])


def _conv_shape(shape: tuple[int, int, int], param: ConvParam) -> tuple[int, int, int]:
    """(channels, height, width) after a convolution with these settings."""
    size, pad, stride = param["filter_size"], param["pad"], param["stride"]
    return (
        param["filter_num"],
        conv_output_size(shape[1], size, stride, pad),
        conv_output_size(shape[2], size, stride, pad),
    )


def _pool_shape(shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """(channels, height, width) after 2x2 pooling with stride 2."""
    return shape[0], conv_output_size(shape[1], 2, 2), conv_output_size(shape[2], 2, 2)


class SimpleConvNet(Sequential):
    """Conv -> ReLU -> 2x2 max pool -> Affine -> ReLU -> Affine, the net of chapter 7.

    Input (N, C, H, W), output scores (N, output_size). params: W1 b1 (convolution),
    W2 b2, W3 b3 (the affine layers); layers Conv1 Relu1 Pool1 Affine1 Relu2 Affine2.

    Parameters
    ----------
    input_dim : (int, int, int), default (1, 28, 28)
        (C, H, W) of each image.
    conv_param : dict or None, default None
        The convolution's filter_num, filter_size, pad and stride; None is the book's
        {'filter_num': 30, 'filter_size': 5, 'pad': 0, 'stride': 1}.
    hidden_size : int, default 100
        The width of the hidden affine layer.
    output_size : int, default 10
        The number of scores.
    weight_init_std : float or str, default 0.01
        The standard deviation of the initial weights, or a rule's name ('he', 'xavier').
    seed : int, np.random.Generator or None, default None
        The source of the initial weights (and of dropout masks); None uses np.random's
        global state, so ``np.random.seed`` works as in the book.
    dtype : float32 or float64, default float64
        The dtype of every parameter (float64 as the book)."""

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (1, 28, 28),
        conv_param: ConvParam | None = None,
        hidden_size: int = 100,
        output_size: int = 10,
        weight_init_std: WeightInitStd = 0.01,
        *,
        seed: Any = None,
        dtype: Any = np.float64,
    ) -> None:
        conv_param = dict(conv_param or {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1})
        shape = _check_input_dim(type(self).__name__, input_dim)
        rng, dtype = as_rng(seed), check_dtype(dtype)
        self._settings = {
            "input_dim": list(shape),
            "conv_param": conv_param,
            "hidden_size": int(hidden_size),
            "output_size": int(output_size),
            "weight_init_std": weight_init_std,
            "dtype": dtype.name,
        }
        conv = _conv_layer(rng, shape[0], conv_param, weight_init_std, dtype)
        pooled = int(np.prod(_pool_shape(_conv_shape(shape, conv_param))))
        super().__init__(
            OrderedDict(
                Conv1=conv,
                Relu1=Relu(),
                Pool1=Pooling(2, 2, stride=2),
                Affine1=Affine(
                    random_weights(rng, (pooled, hidden_size), init_scale(weight_init_std, pooled), dtype),
                    np.zeros(hidden_size, dtype),
                ),
                Relu2=Relu(),
                Affine2=Affine(
                    random_weights(
                        rng, (hidden_size, output_size), init_scale(weight_init_std, hidden_size), dtype
                    ),
                    np.zeros(output_size, dtype),
                ),
            )
        )

    def config(self) -> dict[str, Any]:
        return dict(self._settings)


DEEP_CONV_DEFAULTS = (
    {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 32, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 32, "filter_size": 3, "pad": 2, "stride": 1},
    {"filter_num": 64, "filter_size": 3, "pad": 1, "stride": 1},
    {"filter_num": 64, "filter_size": 3, "pad": 1, "stride": 1},
)


class DeepConvNet(Sequential):
    """The deep net of chapter 8 (99.4% on MNIST in the book).

    (conv -> ReLU -> conv -> ReLU -> 2x2 max pool) three times, then Affine -> ReLU ->
    Dropout(0.5) -> Affine -> Dropout(0.5). Weights use He initialisation, as in the book.
    Input (N, C, H, W), output (N, output_size).

    Parameters
    ----------
    input_dim : (int, int, int), default (1, 28, 28)
        (C, H, W) of each image.
    conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5, conv_param_6 : dict
        Each convolution's filter_num, filter_size, pad and stride; the book's by default
        (3x3 filters; 16, 16, 32, 32, 64, 64 of them; the fourth padded by 2).
    hidden_size : int, default 50
        The width of the hidden affine layer.
    output_size : int, default 10
        The number of scores.
    use_batchnorm : bool, default False
        Not in the book: a BatchNormalization (per channel) before every ReLU.
    dropout_ratio : float, default 0.5
        Not in the book: the ratio of both dropouts (0 removes them).
    inverted_dropout : bool, default False
        Not in the book: inverted dropouts (see Dropout).
    seed : int, np.random.Generator or None, default None
        The source of the initial weights (and of dropout masks); None uses np.random's
        global state, so ``np.random.seed`` works as in the book.
    dtype : float32 or float64, default float64
        The dtype of every parameter (float64 as the book)."""

    # as the book's: 100 images at a time keep the 16 x 28 x 28 activations near 5 MB a
    # layer (1000 at a time, as dense nets, raised the bench's loop peak by about 180 MiB
    # and ran no faster)
    accuracy_batch_size = 100

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (1, 28, 28),
        conv_param_1: ConvParam = DEEP_CONV_DEFAULTS[0],
        conv_param_2: ConvParam = DEEP_CONV_DEFAULTS[1],
        conv_param_3: ConvParam = DEEP_CONV_DEFAULTS[2],
        conv_param_4: ConvParam = DEEP_CONV_DEFAULTS[3],
        conv_param_5: ConvParam = DEEP_CONV_DEFAULTS[4],
        conv_param_6: ConvParam = DEEP_CONV_DEFAULTS[5],
        hidden_size: int = 50,
        output_size: int = 10,
        *,
        use_batchnorm: bool = False,
        dropout_ratio: float = 0.5,
        inverted_dropout: bool = False,
        seed: Any = None,
        dtype: Any = np.float64,
    ) -> None:
        conv_params = [
            dict(p)
            for p in (conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5, conv_param_6)
        ]
        shape = _check_input_dim(type(self).__name__, input_dim)
        rng, dtype = as_rng(seed), check_dtype(dtype)
        self._settings = {
            "input_dim": list(shape),
            **{f"conv_param_{i}": p for i, p in enumerate(conv_params, start=1)},
            "hidden_size": int(hidden_size),
            "output_size": int(output_size),
            "use_batchnorm": bool(use_batchnorm),
            "dropout_ratio": float(dropout_ratio),
            "inverted_dropout": bool(inverted_dropout),
            "dtype": dtype.name,
        }

        def normalized(name: str, size: int) -> None:
            if use_batchnorm:
                layers[f"BatchNorm{name}"] = BatchNormalization(np.ones(size, dtype), np.zeros(size, dtype))

        def dropout(name: str) -> None:
            if dropout_ratio > 0:
                layers[f"Dropout{name}"] = Dropout(
                    dropout_ratio, inverted=inverted_dropout, seed=_child_seed(rng, seed)
                )

        layers: OrderedDict[str, Any] = OrderedDict()
        for index, param in enumerate(conv_params, start=1):
            layers[f"Conv{index}"] = _conv_layer(rng, shape[0], param, "he", dtype)
            shape = _conv_shape(shape, param)
            normalized(str(index), shape[0])
            layers[f"Relu{index}"] = Relu()
            if index % 2 == 0:
                layers[f"Pool{index // 2}"] = Pooling(2, 2, stride=2)
                shape = _pool_shape(shape)
        flat = int(np.prod(shape))
        layers["Affine1"] = Affine(
            random_weights(rng, (flat, hidden_size), init_scale("he", flat), dtype),
            np.zeros(hidden_size, dtype),
        )
        normalized("7", hidden_size)
        layers["Relu7"] = Relu()
        dropout("1")
        layers["Affine2"] = Affine(
            random_weights(rng, (hidden_size, output_size), init_scale("he", hidden_size), dtype),
            np.zeros(output_size, dtype),
        )
        dropout("2")
        super().__init__(layers)

    def config(self) -> dict[str, Any]:
        return dict(self._settings)
