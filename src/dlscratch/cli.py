"""The ``dlscratch`` command: train, gradcheck and evaluate from the shell.

Every failure a user can cause (bad options, missing data, an unwritable folder, a
malformed model file) ends with one line on stderr starting "dlscratch:" and exit
status 2; a run that diverges ends with status 1. No tracebacks for either.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from dlscratch import graph_picture
from dlscratch.checkpoint import checkpoint_callback, load_checkpoint, restore_checkpoint
from dlscratch.datasets import load_fashion_mnist, load_mnist
from dlscratch.files import write_atomically
from dlscratch.gradient import gradient_check
from dlscratch.layers import Convolution, Dropout
from dlscratch.nets import DeepConvNet, MultiLayerNetExtend, Sequential, SimpleConvNet, TwoLayerNet
from dlscratch.train import History, NonFiniteLossError, Trainer

LOADERS = {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist}
MODELS = ("two-layer", "mlp", "convnet", "deep-convnet")
CHECKPOINT = "checkpoint.npz"
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")


class UsageError(Exception):
    """A problem with what the user asked for: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option in one line (usage stays behind --help)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not np.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset", choices=sorted(LOADERS), default="mnist", help="data set (default: mnist)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="folder holding the four IDX .gz files (default: $DLSCRATCH_DATA_DIR/<dataset>, the user "
        "cache, and for fashion-mnist /usr/share/datasets/fashion-mnist)",
    )
    parser.add_argument("--no-download", action="store_true", help="never download missing files")


def _hidden_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated sizes like 256,128, got {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes, got {text!r}")
    return sizes


def _dropout_ratio(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a ratio in [0, 1), got {text}")
    return value


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        choices=MODELS,
        default="two-layer",
        help="network: two-layer (TwoLayerNet), mlp (MultiLayerNetExtend), convnet (SimpleConvNet), "
        "deep-convnet (DeepConvNet) (default: two-layer)",
    )
    parser.add_argument(
        "--hidden-size", type=_positive_int, default=50, help="hidden units of two-layer (default: 50)"
    )
    parser.add_argument(
        "--hidden-sizes",
        type=_hidden_sizes,
        default=[100, 100],
        help="hidden layers of mlp, e.g. 256,128 (default: 100,100)",
    )
    parser.add_argument(
        "--weight-decay", type=float, default=0.0, help="L2 strength lambda, mlp only (default: 0)"
    )
    parser.add_argument(
        "--dropout",
        type=_dropout_ratio,
        help="dropout ratio: after each hidden layer of mlp (default: none), or both dropouts of "
        "deep-convnet (default: 0.5, the book's)",
    )
    parser.add_argument(
        "--batchnorm",
        action="store_true",
        help="batch normalization before each activation, mlp and deep-convnet",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for weights and batches (default: 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dlscratch", description="Deep learning from scratch on NumPy.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser(
        "train",
        help="train a network and write metrics, curves and the model to a run folder",
        description="Train a network; by default the book's chapter 5 run: TwoLayerNet 784-50-10 on MNIST, "
        "batch 100, SGD lr 0.1, 10000 iterations, train and test accuracy once per epoch.",
    )
    _add_data_options(train)
    _add_model_options(train)
    length = train.add_mutually_exclusive_group()
    length.add_argument("--iters", type=_positive_int, help="iterations to run (default: 10000)")
    length.add_argument("--epochs", type=_positive_float, help="epochs to run instead of --iters")
    train.add_argument("--batch-size", type=_positive_int, default=100, help="mini-batch size (default: 100)")
    train.add_argument(
        "--lr",
        type=_positive_float,
        help="learning rate (default: 0.1 for sgd as in the book, else the optimizer's own)",
    )
    train.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd", help="update rule (default: sgd)")
    train.add_argument(
        "--sampling",
        choices=("replacement", "shuffle"),
        default="replacement",
        help="batches drawn with replacement as in the book, or shuffled epochs (default: replacement)",
    )
    train.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default="float32",
        help="arithmetic precision (default: float32, twice as fast; float64 is the book's)",
    )
    train.add_argument("--out", type=Path, help="run folder to write (default: runs/<date-time>)")
    train.add_argument(
        "--eval-samples",
        type=_positive_int,
        metavar="N",
        help="evaluate each epoch on the first N samples of each split (the book's "
        "evaluate_sample_num_per_epoch; default: all); the final test accuracy always uses all",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch lines")
    train.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        metavar="N",
        help=f"save the whole training state to <out>/{CHECKPOINT} every N iterations (atomic)",
    )
    train.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue the run whose folder this is, from its checkpoint, with its own settings",
    )

    check = commands.add_parser(
        "gradcheck",
        help="compare backpropagation with numerical gradients (the book's table)",
        description="Gradient check of a float64 network on a few training samples: per parameter, the mean "
        "absolute difference (the book's table) and the largest relative error. Exit status 1 when a mean "
        "difference exceeds --tolerance.",
    )
    _add_data_options(check)
    _add_model_options(check)
    check.add_argument("--samples", type=_positive_int, default=3, help="training samples used (default: 3)")
    check.add_argument(
        "--entries",
        type=_positive_int,
        help="check only this many random entries of each parameter (default: all for two-layer and mlp, "
        "30 for the convolutional nets, whose every entry costs two forward passes)",
    )
    check.add_argument(
        "--tolerance", type=_positive_float, default=1e-6, help="bound on mean |diff| (default: 1e-6)"
    )

    evaluate = commands.add_parser(
        "evaluate",
        help="accuracy of a saved model on a data set's test split",
        description="Load a model file "
        "written by 'dlscratch train' (or dlscratch.save) and print its accuracy on the test split.",
    )
    evaluate.add_argument("model_file", type=Path, metavar="MODEL.npz", help="the model file")
    _add_data_options(evaluate)

    graph = commands.add_parser(
        "graph",
        help="draw the computational graph of chapter 5 (SVG or PNG)",
        description="Draw the book's apple (or apple and orange) example as a computational graph: "
        "forward values above the edges, backward values below.",
    )
    graph_picture.add_arguments(graph)
    return parser


def _load_data(args: argparse.Namespace, dtype: np.dtype | None, images: bool) -> tuple[np.ndarray, ...]:
    """x_train, t_train, x_test, t_test; x as (N, 1, 28, 28) images or (N, 784) rows.

    dtype: x in [0, 1] as that dtype; None keeps the uint8 pixels (for Trainer's input_scale).
    """
    load = LOADERS[args.dataset]
    (x_train, t_train), (x_test, t_test) = load(
        normalize=dtype is not None, flatten=not images, data_dir=args.data_dir, download=not args.no_download
    )
    if dtype is not None:
        x_train, x_test = x_train.astype(dtype, copy=False), x_test.astype(dtype, copy=False)
    return x_train, t_train, x_test, t_test


def _build_network(args: argparse.Namespace, dtype: np.dtype) -> Sequential:
    """The network --model names, for 28x28 single-channel images and 10 classes."""
    unsupported = {
        "--weight-decay": args.weight_decay and args.model != "mlp",
        "--dropout": args.dropout is not None and args.model not in ("mlp", "deep-convnet"),
        "--batchnorm": args.batchnorm and args.model not in ("mlp", "deep-convnet"),
    }
    used = [option for option, refused in unsupported.items() if refused]
    if used:
        raise UsageError(f"--model {args.model} does not take {', '.join(used)}")
    options = {"seed": args.seed, "dtype": dtype}
    if args.model == "two-layer":
        return TwoLayerNet(784, args.hidden_size, 10, **options)
    if args.model == "mlp":
        if args.weight_decay < 0:
            raise UsageError(f"--weight-decay must be >= 0, got {args.weight_decay}")
        return MultiLayerNetExtend(
            784,
            args.hidden_sizes,
            10,
            weight_init_std="he",
            weight_decay_lambda=args.weight_decay,
            use_dropout=bool(args.dropout),
            dropout_ratio=args.dropout or 0.0,
            use_batchnorm=args.batchnorm,
            **options,
        )
    if args.model == "convnet":
        return SimpleConvNet((1, 28, 28), **options)
    dropout = 0.5 if args.dropout is None else args.dropout
    return DeepConvNet((1, 28, 28), use_batchnorm=args.batchnorm, dropout_ratio=dropout, **options)


def _takes_images(network: Any) -> bool:
    """True when the network's first layer is a convolution (input (N, C, H, W))."""
    return isinstance(next(iter(network.layers.values())), Convolution)


def _prepare_out(out: Path | None) -> Path:
    """Create the run folder and prove it is writable before any work is done."""
    out = out or Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise UsageError(f"cannot write to {out}: {error.strerror or error}") from None
    return out


def _metrics_csv(history: History) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["epoch", "iteration", "train_loss", "train_acc", "test_acc"])
    for epoch, iteration, train_acc, test_acc in zip(
        history.epochs, history.iterations, history.train_acc, history.test_acc, strict=True
    ):
        # the loss of the iteration just before the evaluation (none before training)
        loss = history.train_loss[iteration - 1] if iteration else ""
        writer.writerow([epoch, iteration, loss, train_acc, test_acc])
    return buffer.getvalue()


def _write_run(
    out: Path, args: argparse.Namespace, network: Any, history: History, final_test_acc: float
) -> None:
    from dlscratch.plot import plot_history, save_figure
    from dlscratch.serialize import save

    save(network, out / "model.npz")
    write_atomically(out / "metrics.csv", lambda f: f.write(_metrics_csv(history).encode()))
    record = {"settings": _settings(args), "final_test_acc": final_test_acc, "history": history.to_dict()}
    write_atomically(out / "history.json", lambda f: f.write(json.dumps(record, indent=1).encode()))
    save_figure(plot_history(history), out / "curves.png")


def _make_trainer(args: argparse.Namespace) -> Trainer:
    """The network, the data and the Trainer that the train options describe."""
    dtype = np.dtype(args.dtype)
    network = _build_network(args, dtype)
    # uint8 pixels, scaled batch by batch: a quarter of the memory and faster batches
    x_train, t_train, x_test, t_test = _load_data(args, None, _takes_images(network))
    lr = args.lr if args.lr is not None else (0.1 if args.optimizer == "sgd" else None)
    iters = args.iters if args.iters is not None or args.epochs is not None else 10000
    return Trainer(
        network,
        x_train,
        t_train,
        x_test,
        t_test,
        epochs=args.epochs or 1,
        mini_batch_size=args.batch_size,
        optimizer=args.optimizer,
        optimizer_param={} if lr is None else {"lr": lr},
        verbose=not args.quiet,
        iters=iters,
        sampling=args.sampling,
        seed=args.seed,
        evaluate_sample_num_per_epoch=args.eval_samples,
        input_scale=1 / 255,
    )


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The options as JSON-ready values (paths as strings)."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


def _resumed_args(args: argparse.Namespace, parser_defaults: dict[str, Any]) -> argparse.Namespace:
    """The options of the run being resumed, read from its checkpoint."""
    changed = sorted(
        k
        for k, v in vars(args).items()
        if k not in ("resume", "quiet", "command") and v != parser_defaults.get(k)
    )
    if changed:
        options = ", ".join("--" + k.replace("_", "-") for k in changed)
        raise UsageError(f"--resume continues a run with its own settings; drop {options}")
    path = args.resume / CHECKPOINT
    if not path.is_file():
        raise UsageError(f"no checkpoint to resume at {path} (train with --checkpoint-every N first)")
    settings = load_checkpoint(path)["extra"]["settings"]
    restored = argparse.Namespace(**settings)
    restored.data_dir = None if settings["data_dir"] is None else Path(settings["data_dir"])
    restored.out, restored.resume, restored.quiet = args.resume, args.resume, args.quiet
    return restored


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume is not None:
        args = _resumed_args(args, TRAIN_DEFAULTS)
    out = _prepare_out(args.out)
    args.out = out
    trainer = _make_trainer(args)
    if args.resume is not None:
        restore_checkpoint(out / CHECKPOINT, trainer)
        # a run killed while writing leaves its unfinished temporary file behind
        for stale in out.glob(f".{CHECKPOINT}.*.tmp"):
            stale.unlink(missing_ok=True)
    if args.checkpoint_every:
        trainer.callbacks.append(
            checkpoint_callback(out / CHECKPOINT, args.checkpoint_every, {"settings": _settings(args)})
        )
    try:
        history = trainer.train()
    except NonFiniteLossError as error:
        kept = " The last checkpoint is kept." if (out / CHECKPOINT).exists() else ""
        print(f"dlscratch: {error}{kept}", file=sys.stderr)
        return 1
    _write_run(out, args, trainer.network, history, trainer.final_test_acc)
    if not args.quiet:
        print(f"{history.seconds:.1f} s; model, metrics.csv, history.json and curves.png in {out}")
    return 0


def cmd_gradcheck(args: argparse.Namespace) -> int:
    network = _build_network(args, np.dtype(np.float64))
    x_train, t_train, _, _ = _load_data(args, np.dtype(np.float64), _takes_images(network))
    x, t = x_train[: args.samples], t_train[: args.samples]
    if _takes_images(network):
        _move_biases_off_kinks(network, args.seed)
    network.predict(x, train_flg=True)
    for layer in network.layers.values():
        if isinstance(layer, Dropout):
            # the same units dropped in every evaluation, so the loss is one fixed function
            layer.fixed_mask = layer.mask
    convolutional = _takes_images(network)
    entries = args.entries if args.entries is not None else (30 if convolutional else None)
    step = 1e-6 if convolutional else 1e-4  # see gradient_check: max pooling's ties
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


def cmd_evaluate(args: argparse.Namespace) -> int:
    from dlscratch.serialize import load

    network = load(args.model_file)
    dtype = network.params[next(iter(network.params))].dtype
    _, _, x_test, t_test = _load_data(args, dtype, _takes_images(network))
    accuracy = network.accuracy(x_test, t_test)
    print(f"test accuracy: {accuracy:.4f} ({len(x_test)} samples of {args.dataset})")
    return 0


TRAIN_DEFAULTS = vars(build_parser().parse_args(["train"]))

COMMANDS = {
    "train": cmd_train,
    "gradcheck": cmd_gradcheck,
    "evaluate": cmd_evaluate,
    "graph": graph_picture.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except (UsageError, ValueError, OSError) as error:
        # ValueError: malformed data or model files; OSError: missing data, unwritable paths
        message = " ".join(str(error).split())
        print(f"dlscratch: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dlscratch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
