"""The ``dlscratch`` command: train, gradcheck and evaluate from the shell.

Every failure a user can cause (bad options, missing or malformed data, an unwritable or
busy run folder, a malformed model file or checkpoint, a network or batch bigger than the
machine's memory) ends with one line on stderr starting "dlscratch:" and exit status 2; a
run that diverges ends with status 1. No tracebacks for either. Anything else is a bug in
dlscratch: its traceback is shown, with a line asking for a report, and the status is 70.

A run folder is written by one process at a time (a lock; a second process is refused),
and the temporary files a killed run left there are removed by the next one.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from dlscratch import graph_picture
from dlscratch.checkpoint import checkpoint_callback, load_checkpoint, restore_checkpoint
from dlscratch.datasets import load_fashion_mnist, load_mnist
from dlscratch.files import FolderInUseError, lock_folder, remove_stale_temporaries, write_atomically
from dlscratch.footprint import available_memory, batch_bytes, format_bytes
from dlscratch.gradient import gradient_check
from dlscratch.layers import Affine, Convolution, Dropout
from dlscratch.nets import DeepConvNet, MultiLayerNetExtend, Sequential, SimpleConvNet, TwoLayerNet
from dlscratch.nets.init import weight_budget
from dlscratch.train import History, NonFiniteLossError, ResumeWarning, Trainer

LOADERS = {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist}
MODELS = ("two-layer", "mlp", "convnet", "deep-convnet")
CHECKPOINT = "checkpoint.npz"
RUN_FILES = ("model.npz", "metrics.csv", "history.json", "curves.png", CHECKPOINT)
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
# copies of the weights training keeps: weights, gradients, two optimizer slots, the step's backup
WEIGHT_COPIES = 5
BUG_STATUS = 70  # EX_SOFTWARE: an internal error


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


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not np.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


@contextmanager
def _as_usage_error(prefix: str = "") -> Iterator[None]:
    """Report the ValueError a library call raises about what the user gave (options, data,
    files) as a UsageError; a ValueError anywhere else stays what it is, a bug."""
    try:
        yield
    except ValueError as error:
        raise UsageError(f"{prefix}{error}") from None


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
        "--weight-decay",
        type=_non_negative_float,
        default=0.0,
        help="L2 strength lambda, mlp only (default: 0)",
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
    with _as_usage_error():
        (x_train, t_train), (x_test, t_test) = load(
            normalize=dtype is not None,
            flatten=not images,
            data_dir=args.data_dir,
            download=not args.no_download,
        )
    if dtype is not None:
        x_train, x_test = x_train.astype(dtype, copy=False), x_test.astype(dtype, copy=False)
    return x_train, t_train, x_test, t_test


def _build_network(args: argparse.Namespace, dtype: np.dtype) -> Sequential:
    """The network --model names, for 28x28 single-channel images and 10 classes.

    Its weights may take at most 1/WEIGHT_COPIES of the memory available: a bigger network
    is refused before its weights are allocated.
    """
    available = available_memory()
    budget = (
        nullcontext()
        if available is None
        else weight_budget(
            available // WEIGHT_COPIES,
            what=f"1/{WEIGHT_COPIES} of the {format_bytes(available)} of memory available (training keeps "
            f"{WEIGHT_COPIES} copies: weights, gradients, optimizer state, a backup)",
        )
    )
    with budget, _as_usage_error():
        return _construct_network(args, dtype)


def _construct_network(args: argparse.Namespace, dtype: np.dtype) -> Sequential:
    """The network of the --model options, refusing options that model does not take."""
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
    """True when the network's first weighted layer is a convolution (input (N, C, H, W))."""
    first = next(
        (layer for layer in network.layers.values() if isinstance(layer, (Affine, Convolution))), None
    )
    return isinstance(first, Convolution)


def _float_dtype(network: Any) -> np.dtype:
    """The dtype of the network's parameters (float64 for a network without any)."""
    return np.result_type(*network.params.values()) if network.params else np.dtype(np.float64)


def _check_memory(
    network: Any, sample_shape: tuple[int, ...], batch_size: int, dtype: Any, what: str
) -> None:
    """UsageError when a batch of batch_size samples would need more memory than is
    available, or when the network's layers cannot take such samples."""
    with _as_usage_error("the model does not fit the data: "):
        need = batch_bytes(network, sample_shape, batch_size, dtype)
    available = available_memory()
    if available is not None and need > available:
        raise UsageError(
            f"{what} of {batch_size} samples needs about {format_bytes(need)} of memory for its activations, "
            f"more than the {format_bytes(available)} available"
        )


@contextmanager
def _holding(out: Path) -> Iterator[None]:
    """Hold the run folder for this process (a lock) and clear what a killed run left in it."""
    try:
        with lock_folder(out):
            remove_stale_temporaries(out, RUN_FILES)
            yield
    except FolderInUseError as error:
        raise UsageError(f"{error}: wait for it to finish, or choose another folder") from None


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
    """The network, the data and the Trainer that the train options describe, once the
    batch is known to fit in memory."""
    dtype = np.dtype(args.dtype)
    network = _build_network(args, dtype)
    # uint8 pixels, scaled batch by batch: a quarter of the memory and faster batches
    x_train, t_train, x_test, t_test = _load_data(args, None, _takes_images(network))
    lr = args.lr if args.lr is not None else (0.1 if args.optimizer == "sgd" else None)
    iters = args.iters if args.iters is not None or args.epochs is not None else 10000
    with _as_usage_error():
        trainer = Trainer(
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
    evaluated = min(getattr(network, "accuracy_batch_size", 1000), len(x_test))
    _check_memory(network, x_train.shape[1:], max(args.batch_size, evaluated), dtype, "a batch")
    return trainer


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The options as JSON-ready values (paths as strings)."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


def _refuse_options_with_resume(args: argparse.Namespace) -> None:
    changed = sorted(
        k
        for k, v in vars(args).items()
        if k not in ("resume", "quiet", "command") and v != TRAIN_DEFAULTS.get(k)
    )
    if changed:
        options = ", ".join("--" + k.replace("_", "-") for k in changed)
        raise UsageError(f"--resume continues a run with its own settings; drop {options}")


def _resumed_args(args: argparse.Namespace) -> argparse.Namespace:
    """The options of the run being resumed, read from its checkpoint and checked as the
    command line checks them. The data are never downloaded on a resume: the run had them."""
    path = args.resume / CHECKPOINT
    with _as_usage_error():
        extra = load_checkpoint(path)["extra"]
    settings = extra.get("settings") if isinstance(extra, dict) else None
    if not isinstance(settings, dict):
        raise UsageError(f"{path} holds no settings of a 'dlscratch train' run (extra.settings)")
    restored = _parse_settings(settings, path)
    restored.out, restored.resume, restored.quiet = args.resume, args.resume, args.quiet
    restored.no_download = True
    return restored


def _parse_settings(settings: dict[str, Any], path: Path) -> argparse.Namespace:
    """settings (vars() of a train command's options, as JSON) parsed again as the options
    they were: every value goes through the same checks as on the command line."""
    argv = ["train"]
    for key, value in settings.items():
        if key in ("command", "out", "resume", "quiet"):
            continue
        if key not in TRAIN_DEFAULTS:
            raise UsageError(f"{path} holds an unknown setting {key!r}")
        option = "--" + key.replace("_", "-")
        if TRAIN_DEFAULTS[key] is False:  # a flag
            if not isinstance(value, bool):
                raise UsageError(f"{path}: the setting {key!r} must be true or false, got {value!r}")
            argv += [option] if value else []
        elif isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            argv += [option, ",".join(map(str, value))]
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            argv += [option, str(value)]
        elif value is not None:
            raise UsageError(f"{path}: the setting {key!r} cannot be {value!r}")
    if settings.get("command") != "train":
        raise UsageError(
            f"{path} holds settings of no 'dlscratch train' run (command {settings.get('command')!r})"
        )
    try:
        return build_parser().parse_args(argv)
    except UsageError as error:
        raise UsageError(f"{path} holds settings the command line refuses: {error}") from None


def _restore(path: Path, trainer: Trainer) -> None:
    """restore_checkpoint, its refusals as UsageErrors and its warnings as 'dlscratch: warning:' lines."""
    with warnings.catch_warnings(record=True) as caught, _as_usage_error():
        warnings.simplefilter("always", ResumeWarning)
        restore_checkpoint(path, trainer)
    for warning in caught:
        if issubclass(warning.category, ResumeWarning):
            print(f"dlscratch: warning: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)


def cmd_train(args: argparse.Namespace) -> int:
    resuming = args.resume is not None
    if resuming:
        _refuse_options_with_resume(args)
        if not (args.resume / CHECKPOINT).is_file():
            raise UsageError(
                f"no checkpoint to resume at {args.resume / CHECKPOINT} "
                "(train with --checkpoint-every N first)"
            )
        out = args.resume
    else:
        out = _prepare_out(args.out)
    with _holding(out):
        if resuming:
            args = _resumed_args(args)
        args.out = out
        trainer = _make_trainer(args)
        if resuming:
            _restore(out / CHECKPOINT, trainer)
        if args.checkpoint_every:
            trainer.callbacks.append(
                checkpoint_callback(out / CHECKPOINT, args.checkpoint_every, {"settings": _settings(args)})
            )
        try:
            # an overflow is reported once, by the trainer's guard, not as NumPy warnings
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
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

    with _as_usage_error():
        network = load(args.model_file)
    dtype = _float_dtype(network)
    _, _, x_test, t_test = _load_data(args, dtype, _takes_images(network))
    batch = min(getattr(network, "accuracy_batch_size", 1000), len(x_test))
    _check_memory(network, x_test.shape[1:], batch, dtype, "evaluating a batch")
    # the model file is the user's: a layer refusing the data is a problem of the file
    with _as_usage_error("the model cannot run on this data: "):
        accuracy = network.accuracy(x_test, t_test)
    print(f"test accuracy: {accuracy:.4f} ({len(x_test)} samples of {args.dataset})")
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    with _as_usage_error():
        return graph_picture.run(args)


TRAIN_DEFAULTS = vars(build_parser().parse_args(["train"]))

COMMANDS = {
    "train": cmd_train,
    "gradcheck": cmd_gradcheck,
    "evaluate": cmd_evaluate,
    "graph": cmd_graph,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except (UsageError, OSError) as error:
        # OSError: missing data, unwritable paths, files that cannot be opened
        _say(str(error))
        return 2
    except MemoryError:
        _say("out of memory: this machine cannot hold what was asked for (try smaller sizes or batches)")
        return 2
    except KeyboardInterrupt:
        print("dlscratch: interrupted", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        _say("internal error: this is a bug in dlscratch; please report it with the traceback above")
        return BUG_STATUS


def _say(message: str) -> None:
    print(f"dlscratch: {' '.join(message.split())}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
