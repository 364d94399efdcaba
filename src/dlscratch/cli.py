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
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from dlscratch.datasets import load_fashion_mnist, load_mnist
from dlscratch.gradient import gradient_check
from dlscratch.nets import TwoLayerNet
from dlscratch.train import History, NonFiniteLossError, Trainer

LOADERS = {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist}
MODELS = ("two-layer",)
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
    parser.add_argument("--dataset", choices=sorted(LOADERS), default="mnist", help="data set (default: mnist)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="folder holding the four IDX .gz files (default: $DLSCRATCH_DATA_DIR/<dataset>, the user "
        "cache, and for fashion-mnist /usr/share/datasets/fashion-mnist)",
    )
    parser.add_argument("--no-download", action="store_true", help="never download missing files")


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=MODELS, default="two-layer", help="network (default: two-layer)")
    parser.add_argument("--hidden-size", type=_positive_int, default=50, help="hidden units of two-layer (default: 50)")
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
    train.add_argument("--lr", type=_positive_float, default=0.1, help="learning rate (default: 0.1)")
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
    train.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch lines")

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
    check.add_argument("--tolerance", type=_positive_float, default=1e-6, help="bound on mean |diff| (default: 1e-6)")
    return parser


def _load_data(args: argparse.Namespace, dtype: np.dtype) -> tuple[np.ndarray, ...]:
    (x_train, t_train), (x_test, t_test) = _read_dataset(args)
    return x_train.astype(dtype, copy=False), t_train, x_test.astype(dtype, copy=False), t_test


def _read_dataset(args: argparse.Namespace) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    load = LOADERS[args.dataset]
    return load(normalize=True, data_dir=args.data_dir, download=not args.no_download)


def _build_network(args: argparse.Namespace, input_size: int, dtype: np.dtype) -> TwoLayerNet:
    return TwoLayerNet(input_size, args.hidden_size, 10, seed=args.seed, dtype=dtype)


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


def write_text_atomic(path: Path, text: str) -> None:
    """Write text to a temporary file beside path, then rename: readers never see half a file."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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


def _write_run(out: Path, args: argparse.Namespace, network: Any, history: History) -> None:
    from dlscratch.plot import plot_history, save_figure
    from dlscratch.serialize import save

    save(network, out / "model.npz")
    write_text_atomic(out / "metrics.csv", _metrics_csv(history))
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    record = {"settings": settings, "history": history.to_dict()}
    write_text_atomic(out / "history.json", json.dumps(record, indent=1))
    save_figure(plot_history(history), out / "curves.png")


def cmd_train(args: argparse.Namespace) -> int:
    out = _prepare_out(args.out)
    dtype = np.dtype(args.dtype)
    x_train, t_train, x_test, t_test = _load_data(args, dtype)
    network = _build_network(args, x_train[0].size, dtype)
    iters = args.iters if args.iters is not None or args.epochs is not None else 10000
    trainer = Trainer(
        network,
        x_train,
        t_train,
        x_test,
        t_test,
        epochs=args.epochs or 1,
        mini_batch_size=args.batch_size,
        optimizer=args.optimizer,
        optimizer_param={"lr": args.lr},
        verbose=not args.quiet,
        iters=iters,
        sampling=args.sampling,
        seed=args.seed,
    )
    try:
        history = trainer.train()
    except NonFiniteLossError as error:
        print(f"dlscratch: {error}", file=sys.stderr)
        return 1
    _write_run(out, args, network, history)
    if not args.quiet:
        print(f"{history.seconds:.1f} s; model, metrics.csv, history.json and curves.png in {out}")
    return 0


def cmd_gradcheck(args: argparse.Namespace) -> int:
    (x_train, t_train), _ = _read_dataset(args)
    x, t = x_train[: args.samples].astype(np.float64), t_train[: args.samples]
    network = _build_network(args, x[0].size, np.dtype(np.float64))
    report = gradient_check(network, x, t)
    width = max(len(key) for key in report)
    print(f"{'param':<{width}}  {'mean |diff|':>12}  {'max rel err':>12}")
    for key, row in report.items():
        print(f"{key:<{width}}  {row['mean_abs_diff']:12.3e}  {row['max_rel_error']:12.3e}")
    worst = max(row["mean_abs_diff"] for row in report.values())
    verdict = "ok" if worst < args.tolerance else "FAILED"
    print(f"{verdict}: largest mean |diff| {worst:.3e} (bound {args.tolerance:g})")
    return 0 if worst < args.tolerance else 1


COMMANDS = {"train": cmd_train, "gradcheck": cmd_gradcheck}


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
