"""The ``dlscratch`` command: train, evaluate, predict, convert, gradcheck and graph.

Every failure a user can cause (bad options, missing or malformed data, an unwritable or
busy run folder, a malformed model file or checkpoint, a network or batch bigger than the
machine's memory) ends with a message on stderr starting "dlscratch:" and exit status 2:
one line, or for missing data a short line and the ways out after it. A run that diverges
ends with status 1. No tracebacks for either. Anything else is a bug in dlscratch: its
traceback is shown, with a line asking for a report, and the status is 70.

The commands live in dlscratch._cli_train (train, resume) and dlscratch._cli_models
(gradcheck, evaluate, predict, convert); the parser and main are here.

``dlscratch train`` writes a run folder (see dlscratch._runs): a checkpoint at the end of
every epoch unless --no-checkpoint; on Ctrl-C or SIGTERM it stops after the step in
progress, saves the checkpoint, metrics, history and curves, and prints the command that
resumes. ``--resume DIR`` continues a run with its own settings; with --epochs or --iters
(the new total) it trains a finished run further.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import math
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from dlscratch import __version__, graph_picture
from dlscratch._cli_common import LOADERS, UsageError, as_usage_error, say
from dlscratch._cli_models import MODELS, cmd_convert, cmd_evaluate, cmd_gradcheck, cmd_predict
from dlscratch._cli_train import AUGMENTATIONS, SCHEDULES, cmd_train
from dlscratch._runs import CHECKPOINT

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
BUG_STATUS = 70  # EX_SOFTWARE: an internal error


# ---------------------------------------------------------------- the parser


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option in one line (usage stays behind --help) and
    suggests the closest option or choice for a mistyped one."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            # the command's parser knows its options, and its --help is the one to read
            parser = getattr(self, "commands", {}).get(getattr(namespace, "command", None), self)
            parser.error(parser._unrecognized(extras))
        return namespace

    def _unrecognized(self, extras: list[str]) -> str:
        options = [o for action in self._actions for o in action.option_strings if o.startswith("--")]
        message = f"unrecognized arguments: {' '.join(extras)}"
        for extra in extras:
            close = difflib.get_close_matches(extra.split("=")[0], options, n=1, cutoff=0.6)
            if extra.startswith("-") and close:
                return f"{message} (did you mean {close[0]}?)"
        return message

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices:
            choices = ", ".join(map(repr, action.choices))
            message = f"invalid choice: {value!r} (choose from {choices})"
            close = difflib.get_close_matches(str(value), [str(c) for c in action.choices], n=1, cutoff=0.6)
            raise argparse.ArgumentError(action, message + (f"; did you mean {close[0]!r}?" if close else ""))


def _number(text: str, kind: type, expected: str, accept: Any) -> Any:
    """text as kind, if accept(value); else an ArgumentTypeError that argparse reports as
    "argument --OPTION: expected ..., got 'TEXT'"."""
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or (kind is float and not math.isfinite(value)) or not accept(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    return _number(text, int, "a positive integer", lambda v: v >= 1)


def _non_negative_int(text: str) -> int:
    return _number(text, int, "an integer >= 0", lambda v: v >= 0)


def _positive_float(text: str) -> float:
    return _number(text, float, "a positive number", lambda v: v > 0)


def _non_negative_float(text: str) -> float:
    return _number(text, float, "a number >= 0", lambda v: v >= 0)


def _fraction(text: str) -> float:
    return _number(text, float, "a fraction between 0 and 1 (exclusive)", lambda v: 0 < v < 1)


def _dropout_ratio(text: str) -> float:
    return _number(text, float, "a ratio in [0, 1)", lambda v: 0 <= v < 1)


def _gamma(text: str) -> float:
    return _number(text, float, "a factor in (0, 1]", lambda v: 0 < v <= 1)


def _divergence_factor(text: str) -> float:
    return _number(text, float, "a number > 1, or 0 to turn the check off", lambda v: v == 0 or v > 1)


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


def _augmentations(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",")]
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"expected some of {', '.join(AUGMENTATIONS)}, comma-separated and each once, got {text!r}"
        )
    return names


def _add_data_options(parser: argparse.ArgumentParser, default: str | None, from_model: bool = False) -> None:
    what = "the model's own (mnist for a book pickle)" if from_model else default
    parser.add_argument(
        "--dataset", choices=sorted(LOADERS), default=default, help=f"data set (default: {what})"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="folder holding the four IDX .gz files (default: $DLSCRATCH_DATA_DIR/<dataset>, the user "
        "cache, and for fashion-mnist /usr/share/datasets/fashion-mnist)",
    )
    parser.add_argument("--no-download", action="store_true", help="never download missing files")


def _add_model_options(parser: argparse.ArgumentParser, default: str | None) -> None:
    for_files = default is None
    parser.add_argument(
        "--model",
        choices=MODELS,
        default=default,
        help="network: two-layer (TwoLayerNet), mlp (MultiLayerNetExtend), convnet (SimpleConvNet), "
        "deep-convnet (DeepConvNet)"
        + (
            " held by a book pickle (a dlscratch model file names its own)"
            if for_files
            else f" (default: {default})"
        ),
    )
    parser.add_argument(
        "--hidden-size",
        type=_positive_int,
        help="units of the hidden affine layer: two-layer (default 50), convnet (100), deep-convnet (50)",
    )
    parser.add_argument(
        "--hidden-sizes", type=_hidden_sizes, help="hidden layers of mlp, e.g. 256,128 (default: 100,100)"
    )
    parser.add_argument(
        "--weight-decay", type=_non_negative_float, help="L2 strength lambda, mlp only (default: 0)"
    )
    parser.add_argument(
        "--dropout",
        type=_dropout_ratio,
        help="dropout ratio: after each hidden layer of mlp (default: none), or both dropouts of "
        "deep-convnet (default: 0.5, the book's)",
    )
    parser.add_argument(
        "--inverted-dropout",
        action="store_true",
        help="inverted dropout (scaled while training, as torch and Keras) instead of the book's "
        "(scaled at test time); mlp with --dropout, deep-convnet",
    )
    parser.add_argument(
        "--batchnorm",
        action="store_true",
        help="batch normalization before each activation, mlp and deep-convnet",
    )
    parser.add_argument(
        "--seed",
        type=_non_negative_int,
        default=0,
        help="seed for weights, batches, validation split and augmentation (default: 0)",
    )


def _add_train_options(train: argparse.ArgumentParser) -> None:
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
        "--lr-schedule",
        choices=SCHEDULES,
        default="constant",
        help="learning rate by epoch: constant; step (times --lr-gamma every --lr-step-epochs); cosine "
        "(a half cosine down to 0 over --lr-decay-epochs) (default: constant)",
    )
    train.add_argument(
        "--lr-decay-epochs",
        type=_positive_float,
        help="cosine: epochs to decay over (default: the whole run)",
    )
    train.add_argument("--lr-step-epochs", type=_positive_float, help="step: epochs between steps (required)")
    train.add_argument("--lr-gamma", type=_gamma, help="step: factor at each step (default: 0.1)")
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
    train.add_argument(
        "--augment",
        type=_augmentations,
        help="augment each training batch: shift (each image moved up to 2 pixels each way), flip "
        "(mirrored left to right half the time; not for digits), e.g. shift,flip",
    )
    train.add_argument(
        "--val-split",
        type=_fraction,
        metavar="FRACTION",
        help="hold out this fraction of the training set (of each class) for validation; each epoch "
        "then scores train and validation accuracy, and the test set only at the end",
    )
    train.add_argument(
        "--test-each-epoch", action="store_true", help="with --val-split: score the test set every epoch too"
    )
    train.add_argument(
        "--early-stopping",
        type=_positive_int,
        metavar="PATIENCE",
        help="with --val-split: stop after PATIENCE epochs without a better validation accuracy, "
        "and keep the best epoch's weights",
    )
    train.add_argument(
        "--divergence-factor",
        type=_divergence_factor,
        default=4.0,
        metavar="F",
        help="stop when the mean loss of the last 20 iterations exceeds F times the first loss "
        "(default: 4; 0 turns the check off)",
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
    saving = train.add_mutually_exclusive_group()
    saving.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        metavar="N",
        help=f"save the whole training state to <out>/{CHECKPOINT} every N iterations too (it is saved "
        "at the end of every epoch anyway)",
    )
    saving.add_argument("--no-checkpoint", action="store_true", help=f"write no {CHECKPOINT}")
    train.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue the run whose folder this is, from its checkpoint, with its own settings; "
        "with --epochs or --iters (the new total), train it further",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dlscratch", description="Deep learning from scratch on NumPy.")
    parser.add_argument("--version", action="version", version=f"dlscratch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser(
        "train",
        help="train a network and write metrics, curves, a checkpoint and the model to a run folder",
        description="Train a network; by default the book's chapter 5 run: TwoLayerNet 784-50-10 on MNIST, "
        "batch 100, SGD lr 0.1, 10000 iterations, train and test accuracy once per epoch. Ctrl-C stops "
        "after the step in progress and saves what is needed to resume.",
    )
    _add_data_options(train, "mnist")
    _add_model_options(train, "two-layer")
    _add_train_options(train)

    check = commands.add_parser(
        "gradcheck",
        help="compare backpropagation with numerical gradients (the book's table)",
        description="Gradient check of a float64 network on a few training samples: per parameter, the mean "
        "absolute difference (the book's table) and the largest relative error. Exit status 1 when a mean "
        "difference exceeds --tolerance. The network is a fresh one (--model ...) or a saved model's, "
        "converted to float64.",
    )
    check.add_argument(
        "model_file", type=Path, nargs="?", metavar="MODEL", help="a model file, run folder or book pickle"
    )
    _add_data_options(check, None, from_model=True)
    _add_model_options(check, None)
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
        help="accuracy of a saved model on a data set's test split, per class, and its confusion matrix",
        description="Score a model on the test split of the data set it learnt (or --dataset): accuracy, "
        "accuracy per class, and a confusion-matrix picture. MODEL is a model file written by "
        "'dlscratch train' (or dlscratch.save), a run folder, or one of the book's pretrained pickles "
        "with --model saying which network it holds.",
    )
    _add_model_file(evaluate)
    _add_data_options(evaluate, None, from_model=True)
    _add_model_options(evaluate, None)
    evaluate.add_argument(
        "--confusion",
        type=Path,
        metavar="FILE.png",
        help="confusion-matrix picture (default: confusion.png beside the model)",
    )

    predict = commands.add_parser(
        "predict",
        help="the class a saved model sees in pictures of your own, with its probability",
        description="Classify pictures (PNG, or any format Pillow reads): each is made to look like the "
        "model's data set (light ink on black, trimmed, fitted into 20 pixels centred by mass for digits, "
        "28 pixels for garments) and the most probable classes are printed.",
    )
    _add_model_file(predict)
    predict.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="pictures to classify")
    predict.add_argument(
        "--dataset",
        choices=sorted(LOADERS),
        help="how to prepare the pictures (default: the model's data set)",
    )
    _add_model_options(predict, None)
    predict.add_argument(
        "--top", type=_positive_int, default=1, help="classes to print per picture (default: 1)"
    )

    convert = commands.add_parser(
        "convert",
        help="turn one of the book's pretrained pickles into a dlscratch model file",
        description="Read a pickle of the book's save_params (params.pkl, deep_convnet_params.pkl) with "
        "the safe reader, into the network --model names, and save it as a dlscratch model file that "
        "records its data set.",
    )
    convert.add_argument("pickle_file", type=Path, metavar="PICKLE", help="the book's parameter pickle")
    convert.add_argument("--out", type=Path, required=True, help="model file to write (.npz)")
    convert.add_argument(
        "--dataset",
        choices=sorted(LOADERS),
        default="mnist",
        help="data set it learnt (default: mnist, the book's)",
    )
    _add_model_options(convert, None)

    graph = commands.add_parser(
        "graph",
        help="draw the computational graph of chapter 5 (SVG or PNG)",
        description="Draw the book's apple (or apple and orange) example as a computational graph: "
        "forward values above the edges, backward values below.",
    )
    graph_picture.add_arguments(graph)
    parser.commands = commands.choices  # type: ignore[attr-defined]
    return parser


def _add_model_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model_file", type=Path, metavar="MODEL", help="model file (.npz), run folder, or book pickle (.pkl)"
    )


def cmd_graph(args: argparse.Namespace) -> int:
    with as_usage_error():
        return graph_picture.run(args)


TRAIN_DEFAULTS = vars(build_parser().parse_args(["train"]))

COMMANDS = {
    "train": cmd_train,
    "gradcheck": cmd_gradcheck,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "convert": cmd_convert,
    "graph": cmd_graph,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        # overflow and the like are reported by the trainer's guards, never as NumPy warnings
        with np.errstate(all="ignore"):
            return COMMANDS[args.command](args)
    except SystemExit as exit_request:  # --help, --version
        return exit_request.code if isinstance(exit_request.code, int) else 0
    except BrokenPipeError:  # the reader went away (dlscratch evaluate ... | head): nothing to say
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - Python would flush into the broken pipe at exit
        return 141
    except (UsageError, OSError) as error:
        # OSError: missing data, unwritable paths, files that cannot be opened
        say(str(error))
        return 2
    except MemoryError:
        say("out of memory: this machine cannot hold what was asked for (try smaller sizes or batches)")
        return 2
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except Exception:
        traceback.print_exc()
        say("internal error: this is a bug in dlscratch; please report it with the traceback above")
        return BUG_STATUS


if __name__ == "__main__":
    sys.exit(main())
