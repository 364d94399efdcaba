"""The dlscratch command's networks: built from the model options, or opened from a saved
model (a model file, a run folder, one of the book's pickles); and the commands that use a
saved model: gradcheck, evaluate, predict, convert.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from dlscratch import footprint
from dlscratch._cli_common import (
    INPUT_SCALE,
    LOADERS,
    UsageError,
    as_usage_error,
    check_memory,
    float_dtype,
    load_data,
    option_name,
    takes_images,
)
from dlscratch._runs import CHECKPOINT, MODEL
from dlscratch.datasets import DATASETS
from dlscratch.files import open_regular_file
from dlscratch.gradient import gradient_check
from dlscratch.layers import Dropout
from dlscratch.nets import DeepConvNet, MultiLayerNetExtend, Sequential, SimpleConvNet, TwoLayerNet
from dlscratch.nets.init import weight_budget

MODELS = ("two-layer", "mlp", "convnet", "deep-convnet")
# each model option and the models it applies to (any other refuses it)
MODEL_OPTIONS = {
    "hidden_size": ("two-layer", "convnet", "deep-convnet"),
    "hidden_sizes": ("mlp",),
    "weight_decay": ("mlp",),
    "dropout": ("mlp", "deep-convnet"),
    "inverted_dropout": ("mlp", "deep-convnet"),
    "batchnorm": ("mlp", "deep-convnet"),
}
HIDDEN_SIZE = {"two-layer": 50, "convnet": 100, "deep-convnet": 50}  # --hidden-size's defaults
# copies of the weights training keeps: weights, gradients, two optimizer slots, the step's backup
WEIGHT_COPIES = 5


def check_model_options(args: argparse.Namespace) -> None:
    """UsageError for a model option the chosen model does not take, or one that needs another."""
    given = [key for key in MODEL_OPTIONS if getattr(args, key, None) not in (None, False)]
    refused = [key for key in given if args.model not in MODEL_OPTIONS[key]]
    if refused:
        details = "; ".join(f"{option_name(key)} is for {', '.join(MODEL_OPTIONS[key])}" for key in refused)
        raise UsageError(
            f"--model {args.model} does not take {', '.join(map(option_name, refused))} ({details})"
        )
    if args.model == "mlp" and args.inverted_dropout and args.dropout is None:
        raise UsageError("--inverted-dropout needs --dropout with --model mlp")


def model_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The model options that apply to args.model, defaults filled in."""
    settings: dict[str, Any] = {"model": args.model}
    if args.model == "mlp":
        settings["hidden_sizes"] = args.hidden_sizes or [100, 100]
        settings["weight_decay"] = args.weight_decay or 0.0
        if args.dropout is not None:
            settings["dropout"] = args.dropout
    else:
        settings["hidden_size"] = args.hidden_size or HIDDEN_SIZE[args.model]
    if args.model == "deep-convnet":
        settings["dropout"] = 0.5 if args.dropout is None else args.dropout
    if args.model in ("mlp", "deep-convnet"):
        settings["batchnorm"] = args.batchnorm
        if settings.get("dropout"):
            settings["inverted_dropout"] = args.inverted_dropout
    return settings


def build_network(args: argparse.Namespace, dtype: np.dtype) -> Sequential:
    """The network the model options describe, for 28x28 single-channel images and 10 classes.

    Its weights may take at most 1/WEIGHT_COPIES of the memory available: a bigger network
    is refused before its weights are allocated.
    """
    check_model_options(args)
    available = footprint.available_memory()
    budget = (
        nullcontext()
        if available is None
        else weight_budget(
            available // WEIGHT_COPIES,
            what=f"1/{WEIGHT_COPIES} of the {footprint.format_bytes(available)} of memory available "
            f"(training keeps {WEIGHT_COPIES} copies: weights, gradients, optimizer state, a backup)",
        )
    )
    with budget, as_usage_error():
        return _construct_network(model_settings(args), args.seed, dtype)


def _construct_network(settings: dict[str, Any], seed: int, dtype: np.dtype) -> Sequential:
    options = {"seed": seed, "dtype": dtype}
    model = settings["model"]
    if model == "two-layer":
        return TwoLayerNet(784, settings["hidden_size"], 10, **options)
    if model == "mlp":
        return MultiLayerNetExtend(
            784,
            settings["hidden_sizes"],
            10,
            weight_init_std="he",
            weight_decay_lambda=settings["weight_decay"],
            use_dropout=bool(settings.get("dropout")),
            dropout_ratio=settings.get("dropout", 0.0),
            inverted_dropout=settings.get("inverted_dropout", False),
            use_batchnorm=settings["batchnorm"],
            **options,
        )
    if model == "convnet":
        return SimpleConvNet((1, 28, 28), hidden_size=settings["hidden_size"], **options)
    return DeepConvNet(
        (1, 28, 28),
        hidden_size=settings["hidden_size"],
        use_batchnorm=settings["batchnorm"],
        dropout_ratio=settings["dropout"],
        inverted_dropout=settings.get("inverted_dropout", False),
        **options,
    )


def open_model(args: argparse.Namespace) -> tuple[Sequential, dict[str, Any], Path]:
    """(network, its metadata, the file read) for args.model_file: a model file, a run
    folder (its model.npz), or a book pickle read into the network --model names."""
    from dlscratch.serialize import load, load_metadata

    path = args.model_file
    if path.is_dir():
        if not (path / MODEL).is_file():
            unfinished = (path / CHECKPOINT).is_file()
            raise UsageError(
                f"{path} has no {MODEL}: "
                + (
                    f"the run did not finish (continue it: dlscratch train --resume {shlex.quote(str(path))})"
                    if unfinished
                    else "it is not a run folder of 'dlscratch train'"
                )
            )
        path = path / MODEL
    if is_model_file(path):
        given = [key for key in ("model", *MODEL_OPTIONS) if getattr(args, key, None) not in (None, False)]
        if given:
            raise UsageError(
                f"{path} is a dlscratch model file, which records its own network: drop "
                f"{', '.join(map(option_name, given))} (they describe the network of a book pickle)"
            )
        with as_usage_error():
            return load(path), load_metadata(path), path
    if args.model is None:
        raise UsageError(
            f"{path} is not a dlscratch model file; if it is one of the book's pickles, say which "
            "network it holds with --model (e.g. --model convnet for ch07's params.pkl, "
            "--model deep-convnet for ch08's deep_convnet_params.pkl)"
        )
    network = build_network(args, np.dtype(np.float64))  # the book's pickles hold float64
    with as_usage_error():
        network.load_params(path)
    return network, {}, path


def is_model_file(path: Path) -> bool:
    """True for a zip archive (a dlscratch model file, or something posing as one), False
    for anything else (a pickle, perhaps)."""
    with as_usage_error(), open_regular_file(path) as file:
        return file.read(4) == b"PK\x03\x04"


def model_dataset(args: argparse.Namespace, metadata: dict[str, Any]) -> str:
    """--dataset, else the data set the model file records (mnist for a book pickle)."""
    data = metadata.get("data")
    recorded = data.get("dataset") if isinstance(data, dict) else None
    if not isinstance(recorded, str) or recorded not in LOADERS:
        recorded = None  # none, or an edited or future file's: --dataset, else mnist
    if args.dataset is not None:
        if recorded is not None and recorded != args.dataset:
            print(
                f"dlscratch: warning: the model learnt {recorded}; using {args.dataset} as asked",
                file=sys.stderr,
            )
        return args.dataset
    return recorded or "mnist"


# ---------------------------------------------------------------- gradcheck


def cmd_gradcheck(args: argparse.Namespace) -> int:
    from dlscratch.serialize import with_dtype

    if args.model_file is not None:
        network, metadata, _ = open_model(args)
        network = with_dtype(network, np.float64)
        fresh = False
    else:
        args.model = args.model or "two-layer"
        network, metadata, fresh = build_network(args, np.dtype(np.float64)), {}, True
    images = takes_images(network)
    x_train, t_train, _, _ = load_data(args, model_dataset(args, metadata), np.dtype(np.float64), images)
    x, t = x_train[: args.samples], t_train[: args.samples]
    if images and fresh:
        _move_biases_off_kinks(network, args.seed)
    with as_usage_error("the model cannot run on this data: "):
        network.predict(x, train_flg=True)
    for layer in network.layers.values():
        if isinstance(layer, Dropout):
            # the same units dropped in every evaluation, so the loss is one fixed function
            layer.fixed_mask = layer.mask
    entries = args.entries if args.entries is not None else (30 if images else None)
    step = 1e-6 if images else 1e-4  # see gradient_check: max pooling's ties
    report = gradient_check(network, x, t, max_entries=entries, seed=args.seed, h=step)
    width = max(len(key) for key in report)
    print(f"{'param':<{width}}  {'mean |diff|':>12}  {'max rel err':>12}")
    for key, row in report.items():
        print(f"{key:<{width}}  {row['mean_abs_diff']:12.3e}  {row['max_rel_error']:12.3e}")
    worst = max(row["mean_abs_diff"] for row in report.values())
    verdict = "ok" if worst < args.tolerance else "FAILED"
    print(f"{verdict}: largest mean |diff| {worst:.3e} (bound {args.tolerance:g})")
    return 0 if worst < args.tolerance else 1


def _move_biases_off_kinks(network: Any, seed: int) -> None:
    """Give every bias a random value of size 0.01 to 0.1.

    On an image's blank background a convolution's output is exactly its bias, zero at
    initialisation, where ReLU has no derivative: the numerical and the backpropagated
    gradient then legitimately disagree. Nonzero biases move those units off the kink.
    """
    rng = np.random.default_rng(seed)
    for key, param in network.params.items():
        if key.startswith("b"):
            param += rng.choice([-1, 1], param.shape) * rng.uniform(0.01, 0.1, param.shape)


# ---------------------------------------------------------------- evaluate, predict, convert


def cmd_evaluate(args: argparse.Namespace) -> int:
    from dlscratch.metrics import confusion_matrix, per_class_accuracy, predict_classes
    from dlscratch.plot import plot_confusion_matrix, save_figure

    network, metadata, path = open_model(args)
    dataset = model_dataset(args, metadata)
    dtype = float_dtype(network)
    _, _, x_test, t_test = load_data(args, dataset, dtype, takes_images(network))
    batch = min(getattr(network, "accuracy_batch_size", 1000), len(x_test))
    check_memory(network, x_test.shape[1:], batch, dtype, "evaluating a batch")
    classes = DATASETS[dataset].classes
    # the model file is the user's: a layer refusing the data is a problem of the file
    with as_usage_error("the model cannot run on this data: "):
        _check_scores(network, x_test[:1], dataset)
        predicted = predict_classes(network, x_test)
    matrix = confusion_matrix(t_test, predicted, len(classes))
    accuracy = np.trace(matrix) / len(x_test)
    print(f"test accuracy: {accuracy:.4f} ({len(x_test)} samples of {dataset})")
    width = max(map(len, classes))
    for name, share, count, total in zip(
        classes, per_class_accuracy(matrix), np.diag(matrix), matrix.sum(axis=1), strict=True
    ):
        print(f"  {name:<{width}}  {share:.4f}  ({count} of {total})")
    picture = args.confusion or path.parent / "confusion.png"
    title = f"{path.name} on {dataset}: accuracy {accuracy:.4f}"
    save_figure(plot_confusion_matrix(matrix, class_names=classes, title=title), picture)
    print(f"confusion matrix: {picture}")
    return 0


def _check_scores(network: Any, x: np.ndarray, dataset: str) -> None:
    """UsageError unless the network gives one score per class of dataset."""
    scores = network.predict(x, train_flg=False)
    classes = len(DATASETS[dataset].classes)
    if scores.ndim != 2 or scores.shape[1] != classes:
        raise UsageError(
            f"the model gives scores of shape {scores.shape[1:]} per sample, "
            f"but {dataset} has {classes} classes"
        )


def cmd_predict(args: argparse.Namespace) -> int:
    from dlscratch.images import STYLES, prepare_image, read_image
    from dlscratch.metrics import predict_probabilities

    network, metadata, _ = open_model(args)
    dataset = model_dataset(args, metadata)
    classes, style = DATASETS[dataset].classes, dataset if dataset in STYLES else "mnist"
    shape = (1, 1, 28, 28) if takes_images(network) else (1, 784)
    for image_path in args.images:
        with as_usage_error():
            grey = read_image(image_path)
        with as_usage_error(f"{image_path}: "):
            image = prepare_image(grey, style)
        x = image.reshape(shape).astype(float_dtype(network))
        with as_usage_error("the model cannot run on 28x28 images: "):
            _check_scores(network, x, dataset)
            probabilities = predict_probabilities(network, x)[0]
        ranked = np.argsort(probabilities)[::-1][: args.top]
        best, *others = ranked
        line = f"{image_path}: {classes[best]} (class {best}), probability {probabilities[best]:.3f}"
        if others:
            line += "; then " + ", ".join(f"{classes[i]} {probabilities[i]:.3f}" for i in others)
        print(line)
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from dlscratch.serialize import save

    if args.out.exists():
        raise UsageError(f"{args.out} exists: choose another --out (or remove it first)")
    if is_model_file(args.pickle_file):
        raise UsageError(f"{args.pickle_file} is already a dlscratch model file")
    args.model_file = args.pickle_file
    network, _, path = open_model(args)
    metadata = {
        "data": {
            "dataset": args.dataset,
            "input_shape": [1, 28, 28] if takes_images(network) else [784],
            "input_scale": INPUT_SCALE,
            "prepared": "pixels / 255 (0 to 1), as the book's load_mnist(normalize=True)",
            "classes": list(DATASETS[args.dataset].classes),
        },
        "settings": {**model_settings(args), "converted_from": str(path)},
    }
    save(network, args.out, metadata=metadata)
    print(
        f"{path} ({type(network).__name__}, {sum(p.size for p in network.params.values()):,} parameters) "
        f"saved as {args.out}"
    )
    return 0
