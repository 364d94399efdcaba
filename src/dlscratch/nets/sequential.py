"""A network as an ordered stack of layers: the structure every named net is built on."""

from __future__ import annotations

import copy
import os
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import numpy as np

from dlscratch.functions import as_class_indices
from dlscratch.gradient import numerical_gradient as _numerical_gradient
from dlscratch.kernels import plan_steps, running
from dlscratch.layers.loss import SoftmaxWithLoss


class Summary(str):
    """The text of Sequential.summary(): a str whose repr is one short line.

    summary() has already printed the table, so a REPL or notebook that echoes the
    returned value shows that line rather than the table again as one escaped string.
    """

    def __repr__(self) -> str:
        total = next((line for line in self.splitlines() if line.startswith("Total params")), "")
        return f"<summary printed above: {total}>"


class Sequential:
    """Layers applied in order, then a loss layer (SoftmaxWithLoss unless given).

    Input (N, ...) as the first layer takes it; scores (N, classes) from the last. The
    book's attributes are kept: ``layers`` (an OrderedDict), ``lastLayer`` and ``params``,
    which holds the very arrays the layers use, named W1, b1, ... by the number of the
    weighted layer they belong to (a BatchNormalization after the second Affine owns
    gamma2, beta2).

    ``predict`` and ``loss`` run the layers one by one, as the book does, so a backward
    loop written as in the book finds every layer's cache. ``loss_and_gradient`` and
    ``accuracy``, where nobody looks at the layers in between, plan their own steps on
    each call (dlscratch.kernels.plan_steps): every Convolution, with the Relu and 2x2
    max Pooling after it, runs on a fast kernel that computes what the layers compute.

    Parameters
    ----------
    layers : iterable of layers, or mapping of str to layer
        At least one: a list of layer objects (named Affine1, Relu1, Affine2, ... by class
        and count) or a mapping name -> layer.
    last_layer : layer or None, default None
        The loss layer, forward(scores, t) -> loss; None: a new ``loss_layer_class()``
        (SoftmaxWithLoss).
    weight_decay_lambda : float, default 0.0
        L2 strength, >= 0: the loss gains 0.5 * lambda * sum(W**2) over every weight W and
        each dW gains lambda * W.

    Raises
    ------
    ValueError
        For no layers, or a negative weight_decay_lambda.
    """

    # the loss layer's class when none is given (dlscratch.book swaps in the book's)
    loss_layer_class: ClassVar[type[SoftmaxWithLoss]] = SoftmaxWithLoss

    def __init__(
        self,
        layers: Iterable[Any] | Mapping[str, Any],
        last_layer: Any = None,
        *,
        weight_decay_lambda: float = 0.0,
    ) -> None:
        self.layers: OrderedDict[str, Any] = OrderedDict(_named(layers))
        if not self.layers:
            raise ValueError("Sequential needs at least one layer")
        self.lastLayer = self.loss_layer_class() if last_layer is None else last_layer
        self.weight_decay_lambda = float(weight_decay_lambda)
        if self.weight_decay_lambda < 0:
            raise ValueError(f"weight_decay_lambda must be >= 0, got {weight_decay_lambda}")
        self.params: dict[str, np.ndarray] = {}
        self._owners: dict[str, tuple[Any, str]] = {}  # network name -> (layer, layer's name)
        weighted = 0
        for layer in self.layers.values():
            layer_params = getattr(layer, "params", {})
            weighted += "W" in layer_params
            for name, array in layer_params.items():
                self.params[f"{name}{weighted}"] = array
                self._owners[f"{name}{weighted}"] = (layer, name)

    def predict(self, x: np.ndarray, train_flg: bool = False) -> np.ndarray:
        """Scores before the softmax: (N, ...) in, (N, classes) out, the layers one by one."""
        return _run_forward(self.layers.values(), x, train_flg)

    def loss(self, x: np.ndarray, t: np.ndarray, train_flg: bool = False) -> float:
        """The loss layer's value on (x, t), plus the weight-decay term."""
        y = self.predict(x, train_flg)
        return self.lastLayer.forward(y, t) + self._weight_decay_loss()

    def _weight_decay_loss(self) -> float:
        if not self.weight_decay_lambda:
            return 0.0
        squares = sum(float(np.sum(W * W)) for W in self._weights())
        return 0.5 * self.weight_decay_lambda * squares

    def _weights(self) -> list[np.ndarray]:
        return [layer.params["W"] for layer, name in self._owners.values() if name == "W"]

    accuracy_batch_size = 1000  # accuracy()'s samples per forward pass, unless told

    def accuracy(self, x: np.ndarray, t: np.ndarray, batch_size: int | None = None) -> float:
        """Fraction of samples whose highest score is the label; t one-hot or indices.

        Runs in batches (of ``accuracy_batch_size`` unless batch_size is given) so a whole
        data set never sits in memory as activations; every sample counts, the last
        partial batch too.
        """
        if batch_size is None:
            batch_size = self.accuracy_batch_size
        if len(x) == 0:
            raise ValueError("accuracy needs at least one sample, got an empty array")
        if len(t) != len(x):
            raise ValueError(f"accuracy got {len(x)} samples but {len(t)} labels")
        correct = 0
        steps = plan_steps(list(self.layers.values()))
        with running(steps):
            for start in range(0, len(x), batch_size):
                scores = _run_forward(steps, x[start : start + batch_size], train_flg=False)
                labels = as_class_indices(scores, t[start : start + batch_size])
                correct += int(np.sum(scores.argmax(axis=1) == labels))
        return correct / len(x)

    def numerical_gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of loss(x, t) by central differences, keyed like ``params`` (slow)."""

        def loss_of_params(_: np.ndarray) -> float:
            return self.loss(x, t, train_flg=True)

        return {key: _numerical_gradient(loss_of_params, param) for key, param in self.params.items()}

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of loss(x, t) by backpropagation, keyed like ``params``: new arrays.

        Each layer keeps its own, plain backpropagated gradient (``layers['Affine1'].dW``);
        with weight decay the returned dW also holds lambda * W, as in the book.
        """
        grads = self.loss_and_gradient(x, t)[1]
        return {key: np.array(grad, copy=True) for key, grad in grads.items()}

    def loss_and_gradient(self, x: np.ndarray, t: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """One forward and one backward pass: the loss and the gradients (training mode).

        For training loops that use the gradients at once: the arrays are the layers' own
        gradient buffers (or, with weight decay, dW + lambda * W), rewritten by the next call.
        """
        steps = plan_steps(list(self.layers.values()))
        with running(steps):
            scores = _run_forward(steps, x, train_flg=True)
            loss = self.lastLayer.forward(scores, t) + self._weight_decay_loss()
            dout = self.lastLayer.backward(1)
            *later, first = reversed(steps)
            for step in later:
                dout = step.backward(dout)
            # nobody needs the gradient with respect to the data: skip its cost where a step can
            getattr(first, "backward_params", first.backward)(dout)
        grads = {key: layer.grads[name] for key, (layer, name) in self._owners.items()}
        if self.weight_decay_lambda:
            for key, (layer, name) in self._owners.items():
                if name == "W":
                    grads[key] = grads[key] + self.weight_decay_lambda * layer.params["W"]
        return loss, grads

    # the name the book's MultiLayerNet and MultiLayerNetExtend use (its TwoLayerNet and
    # convolutional nets say lastLayer): both name the same layer
    last_layer = property(
        lambda self: self.lastLayer,
        lambda self, layer: setattr(self, "lastLayer", layer),
        doc="The loss layer (the book's name in MultiLayerNet; lastLayer elsewhere).",
    )

    def save_params(self, file_name: str | os.PathLike[str] = "params.pkl") -> None:
        """Save the network to file_name, as the book's save_params, in dlscratch's safe format.

        Whatever the name says, the file is a dlscratch model file (dlscratch.save: arrays
        and a JSON record, no pickle), which load_params and dlscratch.load read back.
        """
        from dlscratch.serialize import save

        save(self, file_name)

    def load_params(self, file_name: str | os.PathLike[str] = "params.pkl") -> None:
        """Load parameters saved by save_params, or the book's pretrained pickles, into this network.

        file_name: a dlscratch model file (its params and buffers are copied in), or a
        pickle of a dict name -> array such as the book's params.pkl and
        deep_convnet_params.pkl, read by a restricted unpickler that rebuilds only arrays
        and plain values and refuses anything else without running it. The arrays are
        copied into this network's own (so optimizers and layers stay connected) and
        converted to its dtype. ValueError when the file's arrays do not fit this network.
        """
        from dlscratch.nets.params_file import read_params
        from dlscratch.serialize import network_arrays

        arrays, targets = read_params(file_name), network_arrays(self)
        # a pickle holds parameters only: buffers (BatchNormalization's statistics) may be absent
        missing = sorted(name for name in targets.keys() - arrays.keys() if name.startswith("params/"))
        unknown = sorted(arrays.keys() - targets.keys())
        problems = [f"missing {', '.join(missing)}"] if missing else []
        problems += [f"{', '.join(unknown)} not in this network"] if unknown else []
        for name in sorted(arrays.keys() & targets.keys()):
            if arrays[name].shape != targets[name].shape:
                problems.append(f"{name} has shape {arrays[name].shape}, the network's {targets[name].shape}")
            elif not np.all(np.isfinite(arrays[name])):
                problems.append(f"{name} holds NaN or infinite values")
        if problems:
            raise ValueError(
                f"{os.fspath(file_name)} does not fit this {type(self).__name__}: {'; '.join(problems)}"
            )
        for name, array in arrays.items():
            targets[name][...] = array

    def summary(
        self, input_shape: tuple[int, ...] | None = None, print_fn: Callable[[str], Any] | None = print
    ) -> Summary:
        """Print the layers as a table, as Keras does, and return the text (a str).

        One row per layer: its name and type, its output shape (None for the batch) and
        its parameter count; then the totals. input_shape: one sample's shape, e.g. (784,)
        or (1, 28, 28); by default the network's own (``input_size`` or ``input_dim`` of its
        config, else the rows of a first Affine's W). The shapes come from a test-mode
        forward pass of one zero sample through a copy of each layer, so no layer's state
        (caches, running statistics, dropout masks) changes. print_fn: where the text goes,
        line by line (None: nowhere).
        """
        shape = tuple(input_shape) if input_shape is not None else self._default_input_shape()
        params = list(self.params.values())
        x = np.zeros((1, *shape), params[0].dtype if params else np.float64)
        rows = []
        for name, layer in self.layers.items():
            x = _run_forward([copy.deepcopy(layer)], x, train_flg=False)
            count = sum(p.size for p in getattr(layer, "params", {}).values())
            rows.append((f"{name} ({type(layer).__name__})", _batch_shape(x.shape[1:]), f"{count:,}"))
        buffers = sum(
            b.size for layer in self.layers.values() for b in getattr(layer, "buffers", {}).values()
        )
        total = sum(p.size for p in params)
        header = ("Layer (type)", "Output Shape", "Param #")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
        width = sum(widths) + 6

        def line(row: tuple[str, str, str]) -> str:
            return f" {row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}"

        lines = [
            f'Model: "{type(self).__name__}"',
            "_" * width,
            line(header),
            "=" * width,
            *map(line, rows),
            "=" * width,
            f"Input shape: {_batch_shape(shape)}",
            f"Loss: {type(self.lastLayer).__name__}",
            f"Total params: {total + buffers:,}",
            f"Trainable params: {total:,}",
            f"Non-trainable params: {buffers:,}"
            + (" (saved with the model, not trained)" if buffers else ""),
            "_" * width,
        ]
        if print_fn is not None:
            for text_line in lines:
                print_fn(text_line)
        return Summary("\n".join(lines))

    def _default_input_shape(self) -> tuple[int, ...]:
        """One sample's shape, from the config or a first Affine; ValueError if neither tells."""
        config = self.config()
        if "input_dim" in config:
            return tuple(config["input_dim"])
        if "input_size" in config:
            return (config["input_size"],)
        first_name, first = next(iter(self.layers.items()))
        weights = getattr(first, "params", {}).get("W")
        if weights is not None and weights.ndim == 2:
            return (weights.shape[0],)
        raise ValueError(f"summary needs input_shape: the first layer, {first_name}, does not fix it")

    def config(self) -> dict[str, Any]:
        """What rebuilds this network's architecture (see dlscratch.serialize)."""
        return {
            "layers": [
                {"name": name, "type": type(layer).__name__, "config": layer.config()}
                for name, layer in self.layers.items()
            ],
            "last_layer": type(self.lastLayer).__name__,
            "last_layer_config": self.lastLayer.config() if hasattr(self.lastLayer, "config") else {},
            "weight_decay_lambda": self.weight_decay_lambda,
        }

    def __repr__(self) -> str:
        inner = ",\n  ".join(f"{name}: {layer!r}" for name, layer in self.layers.items())
        return f"{type(self).__name__}(\n  {inner}\n)"


def _run_forward(steps: Iterable[Any], x: np.ndarray, train_flg: bool) -> np.ndarray:
    """x through the steps (layers, or planned steps) in order; train_flg where a step takes it."""
    for step in steps:
        x = step.forward(x, train_flg) if getattr(step, "uses_train_flag", False) else step.forward(x)
    return x


def _named(layers: Iterable[Any] | Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    """(name, layer) pairs: a mapping's own names, else class name + running count."""
    if isinstance(layers, Mapping):
        yield from layers.items()
        return
    counts: Counter[str] = Counter()
    for layer in layers:
        kind = type(layer).__name__
        counts[kind] += 1
        yield f"{kind}{counts[kind]}", layer


def _batch_shape(sample_shape: tuple[int, ...]) -> str:
    """'(None, 30, 24, 24)': a batch's shape, None for the number of samples (as Keras)."""
    return f"({', '.join(['None', *map(str, sample_shape)])})"
