"""The network of chapter 5: Affine -> Relu -> Affine -> SoftmaxWithLoss."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlscratch.layers.activation import Relu
from dlscratch.layers.affine import Affine
from dlscratch.nets.init import WeightInitStd, as_rng, check_dtype, init_scale, random_weights
from dlscratch.nets.sequential import Sequential


class TwoLayerNet(Sequential):
    """The book's two-layer network: input_size -> hidden_size (ReLU) -> output_size.

    Input (N, input_size), scores (N, output_size). Weights are weight_init_std * N(0, 1),
    biases zero, as in the book. ``params`` keys: W1 b1 W2 b2; ``layers``: Affine1,
    Relu1, Affine2; ``lastLayer``.

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        The widths of the input, the hidden layer and the output.
    weight_init_std : float or str, default 0.01
        The standard deviation of the initial weights, or a rule's name: 'he'/'relu'
        (sqrt(2 / n)) or 'xavier'/'sigmoid' (sqrt(1 / n)), n the layer's inputs.
    seed : int, np.random.Generator or None, default None
        The source of the initial weights (and of dropout masks); None uses np.random's
        global state, so ``np.random.seed`` works as in the book.
    dtype : float32 or float64, default float64
        The dtype of every parameter (float64 as the book)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        weight_init_std: WeightInitStd = 0.01,
        *,
        seed: Any = None,
        dtype: Any = np.float64,
    ) -> None:
        sizes = {"input_size": input_size, "hidden_size": hidden_size, "output_size": output_size}
        for name, size in sizes.items():
            if not isinstance(size, (int, np.integer)) or size < 1:
                raise ValueError(f"TwoLayerNet expected {name} to be a positive int, got {size!r}")
        rng, dtype = as_rng(seed), check_dtype(dtype)
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, output_size
        self.weight_init_std = weight_init_std
        self.dtype = dtype
        super().__init__(
            [
                Affine(
                    random_weights(
                        rng, (input_size, hidden_size), init_scale(weight_init_std, input_size), dtype
                    ),
                    np.zeros(hidden_size, dtype),
                ),
                Relu(),
                Affine(
                    random_weights(
                        rng, (hidden_size, output_size), init_scale(weight_init_std, hidden_size), dtype
                    ),
                    np.zeros(output_size, dtype),
                ),
            ]
        )

    def config(self) -> dict[str, Any]:
        return {
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "output_size": self.output_size,
            "weight_init_std": self.weight_init_std,
            "dtype": self.dtype.name,
        }
