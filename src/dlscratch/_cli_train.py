"""``dlscratch train``: a run from the options (or a checkpoint's), into a run folder.

The run's effective settings (every default filled in, only the options that apply) go
into history.json, the checkpoint (so --resume re-reads them through the command line's
own checks) and the model file, with the data set and how its images were prepared.
"""

from __future__ import annotations

import argparse
import math
import shlex
import signal
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from dlscratch._cli_common import (
    INPUT_SCALE,
    UsageError,
    as_usage_error,
    check_memory,
    load_data,
    option_name,
    say,
    takes_images,
)
from dlscratch._cli_models import build_network, model_settings
from dlscratch._runs import (
    CHECKPOINT,
    MODEL,
    SIGNAL_STATUS,
    RunFolder,
    RunFolderError,
    stop_on_signals,
    write_progress,
)
from dlscratch.augment import Compose, augmentation_from_config
from dlscratch.checkpoint import checkpoint_callback, load_checkpoint, restore_checkpoint, save_checkpoint
from dlscratch.datasets import DATASETS
from dlscratch.optim import get_optimizer
from dlscratch.schedules import CosineDecay, StepDecay
from dlscratch.train import DivergenceError, NonFiniteLossError, ResumeWarning, Trainer
from dlscratch.validation import split_validation

SCHEDULES = ("constant", "step", "cosine")
# what --augment's names build (dlscratch.augment configs)
AUGMENTATIONS = {"shift": {"name": "RandomShift", "max_shift": 2}, "flip": {"name": "RandomFlip", "p": 0.5}}


def _check_train_options(args: argparse.Namespace) -> None:
    """UsageError for training options that do not go together."""
    needs = {
        "--test-each-epoch": (args.test_each_epoch, args.val_split is not None, "--val-split"),
        "--early-stopping": (args.early_stopping is not None, args.val_split is not None, "--val-split"),
        "--lr-decay-epochs": (
            args.lr_decay_epochs is not None,
            args.lr_schedule == "cosine",
            "--lr-schedule cosine",
        ),
        "--lr-step-epochs": (
            args.lr_step_epochs is not None,
            args.lr_schedule == "step",
            "--lr-schedule step",
        ),
        "--lr-gamma": (args.lr_gamma is not None, args.lr_schedule == "step", "--lr-schedule step"),
    }
    for option, (given, allowed, needed) in needs.items():
        if given and not allowed:
            raise UsageError(f"{option} applies only with {needed}")
    if args.lr_schedule == "step" and args.lr_step_epochs is None:
        raise UsageError("--lr-schedule step needs --lr-step-epochs N (epochs between steps)")
    if args.augment and "flip" in args.augment and args.dataset == "mnist":
        raise UsageError("--augment flip mirrors images, which turns digits into other shapes: not for mnist")


def _make_trainer(args: argparse.Namespace) -> Trainer:
    """The network, the data and the Trainer that the train options describe, once the
    batch is known to fit in memory."""
    _check_train_options(args)
    dtype = np.dtype(args.dtype)
    network = build_network(args, dtype)
    images = takes_images(network)
    # uint8 pixels, scaled batch by batch: a quarter of the memory and faster batches
    x_train, t_train, x_test, t_test = load_data(args, args.dataset, None, images)
    validation = None
    if args.val_split is not None:
        with as_usage_error():
            x_train, t_train, x_val, t_val = split_validation(
                x_train, t_train, args.val_split, seed=args.seed
            )
        validation = (x_val, t_val)
    if args.batch_size > len(x_train):
        raise UsageError(
            f"--batch-size {args.batch_size} is larger than the training set ({len(x_train)} samples)"
        )
    iters = args.iters if args.iters is not None or args.epochs is not None else 10000
    with as_usage_error():
        trainer = Trainer(
            network,
            x_train,
            t_train,
            x_test,
            t_test,
            epochs=args.epochs or 1,
            mini_batch_size=args.batch_size,
            optimizer=args.optimizer,
            optimizer_param={"lr": _learning_rate(args)},
            verbose=not args.quiet,
            iters=iters,
            sampling=args.sampling,
            seed=args.seed,
            evaluate_sample_num_per_epoch=args.eval_samples,
            input_scale=INPUT_SCALE,
            validation=validation,
            test_each_epoch=True if args.test_each_epoch else None,
            early_stopping=args.early_stopping,
            augment=_augmentation(args, images),
            divergence_factor=args.divergence_factor or None,
        )
        trainer.lr_schedule = _schedule(args, trainer)  # its length depends on the run's
    evaluated = min(getattr(network, "accuracy_batch_size", 1000), len(x_test))
    check_memory(network, x_train.shape[1:], max(args.batch_size, evaluated), dtype, "a batch")
    return trainer


def _learning_rate(args: argparse.Namespace) -> float:
    """--lr, else 0.1 for sgd (the book's chapter 5), else the optimizer's own default."""
    if args.lr is not None:
        return args.lr
    return 0.1 if args.optimizer == "sgd" else get_optimizer(args.optimizer).lr


def _run_epochs(trainer: Trainer) -> float:
    return trainer.max_iter * trainer.batch_size / trainer.train_size


def _schedule(args: argparse.Namespace, trainer: Trainer) -> Any:
    if args.lr_schedule == "cosine":
        return CosineDecay(args.lr_decay_epochs or _run_epochs(trainer))
    if args.lr_schedule == "step":
        return StepDecay(args.lr_step_epochs, 0.1 if args.lr_gamma is None else args.lr_gamma)
    return None


def _augmentation(args: argparse.Namespace, images: bool) -> Compose | None:
    """The --augment names as a Compose, seeded from --seed (each part its own child seed)."""
    if not args.augment:
        return None
    shape = None if images else [1, 28, 28]
    parts = [{**AUGMENTATIONS[name], "image_shape": shape} for name in args.augment]
    return augmentation_from_config({"name": "Compose", "augmentations": parts}, seed=args.seed)


def _settings(args: argparse.Namespace, trainer: Trainer) -> dict[str, Any]:
    """The run's effective settings as JSON: only options that apply, defaults filled in
    (the learning rate, the run's length, the schedule's), as the command line takes them."""
    settings: dict[str, Any] = {"command": "train", "dataset": args.dataset}
    if args.data_dir is not None:
        settings["data_dir"] = str(args.data_dir)
    settings.update(model_settings(args))
    settings.update(
        seed=args.seed,
        dtype=args.dtype,
        optimizer=args.optimizer,
        lr=_learning_rate(args),
        lr_schedule=args.lr_schedule,
        batch_size=args.batch_size,
        sampling=args.sampling,
        divergence_factor=args.divergence_factor,
    )
    settings.update({"epochs": args.epochs} if args.epochs is not None else {"iters": trainer.max_iter})
    schedule = trainer.lr_schedule
    if isinstance(schedule, CosineDecay):
        settings["lr_decay_epochs"] = schedule.total_epochs
    if isinstance(schedule, StepDecay):
        settings.update(lr_step_epochs=schedule.step_epochs, lr_gamma=schedule.gamma)
    optional = {
        "augment": ",".join(args.augment) if args.augment else None,
        "val_split": args.val_split,
        "test_each_epoch": args.test_each_epoch or None,
        "early_stopping": args.early_stopping,
        "eval_samples": args.eval_samples,
        "checkpoint_every": args.checkpoint_every,
        "no_checkpoint": args.no_checkpoint or None,
    }
    settings.update({key: value for key, value in optional.items() if value is not None})
    return settings


def _data_record(args: argparse.Namespace, trainer: Trainer) -> dict[str, Any]:
    """The data a run learnt and how each image was prepared, for history.json and the model file."""
    return {
        "dataset": args.dataset,
        "input_shape": [1, 28, 28] if takes_images(trainer.network) else [784],
        "input_scale": INPUT_SCALE,
        "prepared": "uint8 pixels times input_scale (0 to 1), light ink on black, 28x28 as published",
        "classes": list(DATASETS[args.dataset].classes),
        "train_samples": trainer.train_size,
        "validation_samples": 0 if trainer.x_val is None else len(trainer.x_val),
        "test_samples": len(trainer.x_test),
        "augmentation": None if trainer.augment is None else trainer.augment.config(),
    }


def _status(trainer: Trainer) -> str:
    if trainer.interrupted:
        return "interrupted"
    return "stopped early" if trainer.stopped_early else "finished"


def _record(
    args: argparse.Namespace, trainer: Trainer, settings: dict[str, Any], status: str
) -> dict[str, Any]:
    """What history.json holds besides the history, and the model file's metadata."""
    record: dict[str, Any] = {
        "settings": settings,
        "data": _data_record(args, trainer),
        "status": status,
        "iterations": trainer.current_iter,
        "epochs": round(trainer.epoch, 4),
        "final_test_acc": trainer.final_test_acc if status in ("finished", "stopped early") else None,
    }
    early = trainer.early_stopping
    if early is not None and early.best_iteration is not None:
        record["best"] = {
            "epoch": round(early.best_iteration * trainer.batch_size / trainer.train_size, 4),
            "iteration": early.best_iteration,
            "val_acc": early.best_acc,
        }
    return record


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume is not None:
        return _resume(args)
    _check_train_options(args)
    with _as_run_folder_error(), RunFolder.new(args.out) as folder:
        args.out = folder.path
        trainer = _make_trainer(args)
        return _train(args, trainer, _settings(args, trainer), folder)


@contextmanager
def _as_run_folder_error() -> Iterator[None]:
    try:
        yield
    except RunFolderError as error:
        raise UsageError(str(error)) from None


def _train(args: argparse.Namespace, trainer: Trainer, settings: dict[str, Any], folder: RunFolder) -> int:
    """Train, writing the run folder; the exit status."""
    out = folder.path
    if not args.no_checkpoint:
        trainer.callbacks.append(
            checkpoint_callback(out / CHECKPOINT, args.checkpoint_every, {"settings": settings})
        )
    folder.keep()
    try:
        with stop_on_signals(trainer) as signals:
            history = trainer.train()
    except (NonFiniteLossError, DivergenceError) as error:
        write_progress(out, trainer.history, _record(args, trainer, settings, "diverged"))
        kept = (
            f" The checkpoint of epoch {_checkpoint_epoch(out)} is kept."
            if (out / CHECKPOINT).exists()
            else ""
        )
        advice = f"Try a --lr smaller than {_learning_rate(args):g}."
        message = str(error).replace("Try a smaller learning rate.", advice)
        say(f"{message}{kept} Metrics and curves so far are in {out}.")
        return 1
    except KeyboardInterrupt:
        kept = (
            f"the checkpoint of epoch {_checkpoint_epoch(out)} is kept; resume with: {_resume_command(out)}"
            if (out / CHECKPOINT).exists()
            else "no checkpoint was saved yet"
        )
        say(f"interrupted at once, in the middle of a step: {kept}")
        return 130
    if trainer.interrupted:
        if not args.no_checkpoint:
            save_checkpoint(out / CHECKPOINT, trainer, {"settings": settings})
        write_progress(out, history, _record(args, trainer, settings, "interrupted"))
        received = signals[0] if signals else None
        name = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}.get(received, "a request")
        saved = "checkpoint, " if not args.no_checkpoint else ""
        print(
            f"dlscratch: stopped by {name} at iteration {trainer.current_iter} (epoch {trainer.epoch:.4g}); "
            f"{saved}metrics.csv, history.json and curves.png are in {out}",
            file=sys.stderr,
        )
        if not args.no_checkpoint:
            print(f"dlscratch: resume with: {_resume_command(out)}", file=sys.stderr)
        return SIGNAL_STATUS.get(received, 130)
    from dlscratch.serialize import save

    record = _record(args, trainer, settings, _status(trainer))
    save(trainer.network, out / MODEL, metadata={key: record[key] for key in record if key != "iterations"})
    write_progress(out, history, record)
    if not args.quiet:
        stopped = f"stopped early at epoch {trainer.epoch:.4g}; " if trainer.stopped_early else ""
        print(f"{stopped}{history.seconds:.1f} s; model, metrics.csv, history.json and curves.png in {out}")
    return 0


def _checkpoint_epoch(out: Path) -> str:
    """The epoch the checkpoint in out reached, for messages (as read, unchecked: '?' if unreadable)."""
    try:
        trainer = load_checkpoint(out / CHECKPOINT)["trainer"]
    except (OSError, ValueError):
        return "?"
    return f"{trainer['current_iter'] * trainer['batch_size'] / trainer['train_size']:.4g}"


def _resume_command(out: Path) -> str:
    return f"dlscratch train --resume {shlex.quote(str(out))}"


# ---------------------------------------------------------------- resume


RESUME_OPTIONS = ("resume", "quiet", "command", "epochs", "iters")


def _resume(args: argparse.Namespace) -> int:
    from dlscratch import cli  # the parser, which imports this module

    changed = sorted(
        k for k, v in vars(args).items() if k not in RESUME_OPTIONS and v != cli.TRAIN_DEFAULTS.get(k)
    )
    if changed:
        raise UsageError(
            "--resume continues a run with its own settings (only --epochs or --iters, the new total, "
            f"and --quiet go with it); drop {', '.join(map(option_name, changed))}"
        )
    folder = args.resume
    if not (folder / CHECKPOINT).is_file():
        reason = "it is not a folder" if not folder.is_dir() else f"it has no {CHECKPOINT}"
        raise UsageError(f"no checkpoint to resume at {folder / CHECKPOINT}: {reason}")
    with _as_run_folder_error(), RunFolder.existing(folder) as held:
        with as_usage_error():
            checkpoint = load_checkpoint(folder / CHECKPOINT)
        restored = _resumed_args(args, checkpoint)
        if restored is None:
            return 0
        trainer = _make_trainer(restored)
        _restore(folder / CHECKPOINT, trainer)
        return _train(restored, trainer, _settings(restored, trainer), held)


def _resumed_args(args: argparse.Namespace, checkpoint: dict[str, Any]) -> argparse.Namespace | None:
    """The options of the run being resumed (re-checked as the command line checks them),
    its length replaced by a new total when one is given; None when there is nothing to do."""
    path = args.resume / CHECKPOINT
    extra = checkpoint["extra"]
    settings = extra.get("settings") if isinstance(extra, dict) else None
    if not isinstance(settings, dict):
        raise UsageError(f"{path} holds no settings of a 'dlscratch train' run (extra.settings)")
    restored = _parse_settings(settings, path)
    restored.out, restored.resume, restored.quiet = args.resume, args.resume, args.quiet
    restored.no_download = True  # the run had its data: a resume never downloads
    state = checkpoint["trainer"]
    at = state["current_iter"]
    epoch = at * state["batch_size"] / state["train_size"]
    where = f"{args.resume} is at iteration {at} of {state['max_iter']} (epoch {epoch:.4g})"
    if args.epochs is None and args.iters is None:
        if checkpoint["finished"]:
            how = "stopped early" if at < state["max_iter"] else "finished"
            print(
                f"dlscratch: {args.resume} {how} at iteration {at} (epoch {epoch:.4g}): nothing to resume. "
                "To train it further, give the new total: "
                f"{_resume_command(args.resume)} --epochs N (or --iters N)",
                file=sys.stderr,
            )
            return None
        return restored
    early = state["early_stopping"]
    if early is not None and early["wait"] >= early["patience"]:
        raise UsageError(f"{where} and stopped early: training it further would stop again at once")
    total = (
        args.iters
        if args.iters is not None
        else math.ceil(args.epochs * state["train_size"] / state["batch_size"])
    )
    if total <= at:
        raise UsageError(f"{where}: the new total (--epochs or --iters) must lie beyond it")
    schedule = state["lr_schedule"]
    if schedule is not None and schedule.factor(epoch) == 0:
        raise UsageError(
            f"{where}, where its learning-rate schedule reached 0: training it further would change nothing"
        )
    restored.epochs, restored.iters = args.epochs, args.iters
    return restored


def _parse_settings(settings: dict[str, Any], path: Path) -> argparse.Namespace:
    """settings (a train command's effective settings, as JSON) parsed again as the options
    they were: every value goes through the same checks as on the command line."""
    from dlscratch import cli  # the parser, which imports this module

    argv = ["train"]
    for key, value in settings.items():
        if key in ("command", "out", "resume", "quiet"):
            continue
        if key not in cli.TRAIN_DEFAULTS:
            raise UsageError(f"{path} holds an unknown setting {key!r}")
        if cli.TRAIN_DEFAULTS[key] is False:  # a flag
            if not isinstance(value, bool):
                raise UsageError(f"{path}: the setting {key!r} must be true or false, got {value!r}")
            argv += [option_name(key)] if value else []
        elif isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            argv += [option_name(key), ",".join(map(str, value))]
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            argv += [option_name(key), str(value)]
        elif value is not None:
            raise UsageError(f"{path}: the setting {key!r} cannot be {value!r}")
    if settings.get("command") != "train":
        raise UsageError(
            f"{path} holds settings of no 'dlscratch train' run (command {settings.get('command')!r})"
        )
    try:
        return cli.build_parser().parse_args(argv)
    except UsageError as error:
        raise UsageError(f"{path} holds settings the command line refuses: {error}") from None


def _restore(path: Path, trainer: Trainer) -> None:
    """restore_checkpoint, its refusals as UsageErrors and its warnings as 'dlscratch: warning:' lines."""
    with warnings.catch_warnings(record=True) as caught, as_usage_error():
        warnings.simplefilter("always", ResumeWarning)
        restore_checkpoint(path, trainer)
    for warning in caught:
        if issubclass(warning.category, ResumeWarning):
            print(f"dlscratch: warning: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
