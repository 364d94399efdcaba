"""The fully connected networks of chapter 6: MultiLayerNet and MultiLayerNetExtend."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from itertools import pairwise
from typing import Any, ClassVar

import numpy as np

from dlscratch.layers.activation import Relu, Sigmoid
from dlscratch.layers.affine import Affine
from dlscratch.layers.dropout import Dropout
from dlscratch.layers.normalization import BatchNormalization
from dlscratch.nets.init import WeightInitStd, as_rng, check_dtype, init_scale, random_weights
from dlscratch.nets.sequential import Sequential

ACTIVATIONS = {"relu": Relu, "sigmoid": Sigmoid}


def _check_sizes(name: str, input_size: int, hidden_size_list: Sequence[int], output_size: int) -> list[int]:
    sizes = [input_size, *hidden_size_list, output_size]
    if not all(isinstance(s, (int, np.integer)) and s > 0 for s in sizes):
        raise ValueError(
            f"{name} expected positive int sizes, got {input_size}, {list(hidden_size_list)}, {output_size}"
        )
    return [int(s) for s in sizes]


class MultiLayerNetExtend(Sequential):
    """Affine -> [BatchNorm] -> activation -> [Dropout], once per hidden size, then Affine.

    The book's network of chapter 6, with its signature. Input (N, input_size), scores
    (N, output_size). Layers are named as in the book (Affine1, BatchNorm1,
    Activation_function1, Dropout1, ...), params W1 b1 gamma1 beta1 ...

    Parameters
    ----------
    input_size : int
        The width of the input.
    hidden_size_list : sequence of int
        The width of each hidden layer.
    output_size : int
        The number of scores.
    activation : {'relu', 'sigmoid'}, default 'relu'
        The activation after each hidden layer.
    weight_init_std : float or str, default 'relu'
        The standard deviation of the initial weights, or 'relu'/'he' (sqrt(2 / n)) or
        'sigmoid'/'xavier' (sqrt(1 / n)), n the layer's inputs.
    weight_decay_lambda : float, default 0
        L2 strength: the loss gains 0.5 * lambda * sum(W ** 2) over the weights.
    use_dropout : bool, default False
        A Dropout after each activation.
    dropout_ration : float, default 0.5
        The dropout ratio, under the book's spelling; ``dropout_ratio`` overrides it.
    use_batchnorm : bool, default False
        A BatchNormalization before each activation.
    dropout_ratio : float or None, default None
        The dropout ratio, correctly spelt.
    inverted_dropout : bool, default False
        Dropout's inverted form instead of the book's (see Dropout).
    seed : int, np.random.Generator or None, default None
        The source of the initial weights (and of dropout masks); None uses np.random's
        global state, so ``np.random.seed`` works as in the book.
    dtype : float32 or float64, default float64
        The dtype of every parameter (float64 as the book)."""

    # the layer classes it builds its batch norm and loss from (dlscratch.book swaps in the book's)
    batch_norm_class: ClassVar[type[BatchNormalization]] = BatchNormalization

    def __init__(
        self,
        input_size: int,
        hidden_size_list: Sequence[int],
        output_size: int,
        activation: str = "relu",
        weight_init_std: WeightInitStd = "relu",
        weight_decay_lambda: float = 0,
        use_dropout: bool = False,
        dropout_ration: float = 0.5,
        use_batchnorm: bool = False,
        *,
        dropout_ratio: float | None = None,
        inverted_dropout: bool = False,
        seed: Any = None,
        dtype: Any = np.float64,
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        sizes = _check_sizes(type(self).__name__, input_size, hidden_size_list, output_size)
        rng, dtype = as_rng(seed), check_dtype(dtype)
        ratio = dropout_ration if dropout_ratio is None else dropout_ratio
        self._settings = {
            "input_size": sizes[0],
            "hidden_size_list": sizes[1:-1],
            "output_size": sizes[-1],
            "activation": activation,
            "weight_init_std": weight_init_std,
            "weight_decay_lambda": float(weight_decay_lambda),
            "use_dropout": bool(use_dropout),
            "dropout_ratio": float(ratio),
            "inverted_dropout": bool(inverted_dropout),
            "use_batchnorm": bool(use_batchnorm),
            "dtype": dtype.name,
        }
        layers: OrderedDict[str, Any] = OrderedDict()
        for index, (fan_in, fan_out) in enumerate(pairwise(sizes), start=1):
            scale = init_scale(weight_init_std, fan_in)
            layers[f"Affine{index}"] = Affine(
                random_weights(rng, (fan_in, fan_out), scale, dtype), np.zeros(fan_out, dtype)
            )
            if index == len(sizes) - 1:
                break
            if use_batchnorm:
                layers[f"BatchNorm{index}"] = self.batch_norm_class(
                    np.ones(fan_out, dtype), np.zeros(fan_out, dtype)
                )
            layers[f"Activation_function{index}"] = ACTIVATIONS[activation]()
            if use_dropout:
                layers[f"Dropout{index}"] = Dropout(
                    ratio, inverted=inverted_dropout, seed=_child_seed(rng, seed)
                )
        super().__init__(layers, weight_decay_lambda=weight_decay_lambda)
        self.hidden_layer_num = len(sizes) - 2

    def config(self) -> dict[str, Any]:
        return dict(self._settings)


class MultiLayerNet(MultiLayerNetExtend):
    """The plain fully connected net of chapter 6: (Affine -> activation) per hidden size, then Affine.

    Parameters
    ----------
    input_size, hidden_size_list, output_size, activation, weight_init_std, weight_decay_lambda
        As for MultiLayerNetExtend.
    seed : int, np.random.Generator or None, default None
        The source of the initial weights (and of dropout masks); None uses np.random's
        global state, so ``np.random.seed`` works as in the book.
    dtype : float32 or float64, default float64
        The dtype of every parameter (float64 as the book)."""

    def __init__(
        self,
        input_size: int,
        hidden_size_list: Sequence[int],
        output_size: int,
        activation: str = "relu",
        weight_init_std: WeightInitStd = "relu",
        weight_decay_lambda: float = 0,
        *,
        seed: Any = None,
        dtype: Any = np.float64,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size_list,
            output_size,
            activation,
            weight_init_std,
            weight_decay_lambda,
            seed=seed,
            dtype=dtype,
        )

    def config(self) -> dict[str, Any]:
        settings = super().config()
        for extension in ("use_dropout", "dropout_ratio", "inverted_dropout", "use_batchnorm"):
            del settings[extension]
        return settings


def _child_seed(rng: Any, seed: Any) -> Any:
    """A seed for a layer's own generator: drawn from the net's when the net is seeded,
    so one seed fixes the whole run; None (the global state) otherwise."""
    return None if seed is None else int(rng.integers(2**63))
