"""Training checkpoints: everything needed to stop a run and continue it bit for bit.

A checkpoint is an archive (see dlscratch.archive) of format "dlscratch-checkpoint",
version 3, written atomically and flushed to disk:

    __meta__                 UTF-8 JSON: "network" (as in a model file), "trainer"
                             (Trainer.state_dict(): counters, sampler, history, optimizer,
                             data fingerprint, NumPy version), "rng" (the layers' generators
                             and np.random's global state), "extra" (any JSON of yours)
    params/..., buffers/...  the network's arrays, as in a model file
    trainer/...              the arrays inside the trainer's state (the shuffled epoch, the
                             optimizer's slots, early stopping's best weights, an MT19937 key)
    rng/...                  the arrays inside the random states (np.random's MT19937 key)

Inside the JSON an array appears as {"__array__": "<entry name>"}. Files of earlier
versions are refused: version 1 had no fingerprint of the data, version 2 no validation,
schedule, augmentation or early stopping, which a continuation would silently drop.

Random state, saved exactly (a generator's 128-bit integers are JSON integers, which Python
reads back exactly) and set again by restore_checkpoint:
- the batch sampler's generator (Trainer(seed=...)), in the trainer's state, or "global"
  when unseeded; the augmentation's generators, there too;
- "layers": every np.random.Generator a layer holds, by "<layer name>/<attribute>" (the
  mask source of Dropout(seed=...), which seeded networks such as MultiLayerNetExtend use);
- "global": np.random's global state, which an unseeded Trainer (seed=None, as in the book)
  and unseeded layers (Dropout(seed=None)) draw from.

Loading checks a checkpoint as untrusted input: the archive and the network as for a model
file, the trainer's state field by field and its counters against each other (see
dlscratch.train_state), every random state on a throwaway generator. A checkpoint never
holds NaN or infinite weights: the trainer refuses such steps and saving refuses them too.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dlscratch.archive import Archive, PathLike, read_archive, write_archive
from dlscratch.nets.sequential import Sequential
from dlscratch.records import field, short, to_json_data
from dlscratch.serialize import (
    NETWORK_PREFIXES,
    array_mismatches,
    check_network_values,
    copy_network_arrays,
    network_arrays,
    network_description,
    network_from,
)
from dlscratch.train import Trainer
from dlscratch.train_state import check_generator_state, check_state

__all__ = ["checkpoint_callback", "load_checkpoint", "restore_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = "dlscratch-checkpoint"
CHECKPOINT_VERSION = 3
ARRAY_REF = "__array__"


def save_checkpoint(path: PathLike, trainer: Trainer, extra: Any = None) -> Path:
    """Save trainer's run (network, optimizer, random states, progress, history) to path.

    path is used exactly as given; the write is atomic (see dlscratch.save). extra: any JSON
    data to keep with it (the command line stores its arguments there); NumPy scalars and
    paths are stored as numbers and strings. Returns path as a Path. ValueError if extra is
    not JSON data, trainer.rng is neither np.random nor a np.random.Generator, or a weight
    holds NaN or infinity.
    """
    extra = to_json_data(extra, "extra")
    arrays = network_arrays(trainer.network)
    check_network_values(arrays)
    layer_states = {key: g.bit_generator.state for key, g in _layer_generators(trainer.network).items()}
    record = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "network": network_description(trainer.network),
        "trainer": _split_arrays(trainer.state_dict(), "trainer", arrays),
        "rng": _split_arrays(
            {"layers": layer_states, "global": np.random.get_state(legacy=False)}, "rng", arrays
        ),
        "extra": extra,
    }
    return write_archive(path, record, arrays)


def load_checkpoint(path: PathLike) -> dict[str, Any]:
    """Read and check the checkpoint at path, touching no trainer.

    Returns {"network": the network, rebuilt; "optimizer": an Optimizer in its saved state;
    "history": a History; "trainer": {"current_iter", "max_iter", "batch_size",
    "train_size", "validation_size", "test_each_epoch", "sampling", "order", "seed",
    "lr_schedule" (a Schedule or None), "augmentation" ({"config", "generators"} or None),
    "early_stopping" ({"patience", "min_delta", "best_acc", "best_iteration", "wait",
    "best"} or None), "input_scale", "evaluation_samples", "data", "threads", "numpy"};
    "finished": whether the run reached its last iteration or stopped early; "rng":
    {"sampler": the generator's bit_generator.state, or "global" for an unseeded trainer;
    "layers": "<layer>/<attribute>" -> a layer generator's state; "global": np.random's
    state}; "extra": what save_checkpoint was given}. ValueError naming the file for
    anything damaged or inconsistent.
    """
    return _read(path)[0]


def restore_checkpoint(path: PathLike, trainer: Trainer) -> dict[str, Any]:
    """Put the run saved at path back into trainer; trainer.train() then continues it.

    trainer must be built as the saved one was: the same network class and config, optimizer
    type and hyperparameters, mini_batch_size, sampling, input_scale, evaluation samples,
    kind of seed (an int or None) and the same data (checked by fingerprint). The result is
    then bit for bit the weights and history of a run never interrupted, if the arithmetic
    runs on the same NumPy (otherwise a ResumeWarning says so). max_iter
    may differ, to train for longer. The layers' generators and np.random's global state are
    set too (see the module's notes). Everything is checked first: on ValueError the
    trainer is untouched. Returns load_checkpoint(path), whose "extra" holds what was saved
    with the run.
    """
    checkpoint, state = _read(path)
    if problems := _network_mismatches(checkpoint, trainer.network):
        raise ValueError(f"cannot restore {path} into this trainer: {'; '.join(problems)}")
    try:
        trainer.load_state_dict(state)
    except ValueError as error:
        raise ValueError(f"cannot restore {path}: {error}") from None
    copy_network_arrays(trainer.network, network_arrays(checkpoint["network"]))
    for key, generator in _layer_generators(trainer.network).items():
        generator.bit_generator.state = checkpoint["rng"]["layers"][key]
    np.random.set_state(checkpoint["rng"]["global"])
    return checkpoint


def checkpoint_callback(
    path: PathLike, every: int | None = None, extra: Any = None
) -> Callable[[Trainer], None]:
    """A Trainer callback that saves a checkpoint to path at the end of every epoch (after
    its evaluation), after the last iteration (early stopping's too), and, when `every` is
    given, every `every` iterations as well.

    Each save replaces the one before atomically, so path always holds the newest complete
    checkpoint (one file, no numbering). extra is passed to save_checkpoint.
    """
    if every is not None and (
        isinstance(every, bool) or not isinstance(every, numbers.Integral) or every < 1
    ):
        raise ValueError(f"checkpoint every must be a positive int, got {every!r}")
    extra = to_json_data(extra, "extra")  # refused now rather than at the first save

    def save_when_due(trainer: Trainer) -> None:
        evaluations = trainer.history.iterations
        epoch_ended = bool(evaluations) and evaluations[-1] == trainer.current_iter
        if epoch_ended or trainer.finished or (every is not None and trainer.current_iter % every == 0):
            save_checkpoint(path, trainer, extra)

    return save_when_due


# ---------------------------------------------------------------- arrays inside JSON


def _split_arrays(value: Any, name: str, arrays: dict[str, np.ndarray]) -> Any:
    """value with each array moved into arrays under its path and replaced by a reference."""
    if isinstance(value, np.ndarray):
        if name in arrays:
            raise ValueError(f"two arrays would be saved as {name!r}")
        arrays[name] = value
        return {ARRAY_REF: name}
    if isinstance(value, dict):
        return {key: _split_arrays(item, f"{name}/{key}", arrays) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split_arrays(item, f"{name}/{i}", arrays) for i, item in enumerate(value)]
    return value


def _join_arrays(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """value with each {"__array__": name} replaced by that array, taken out of arrays."""
    if isinstance(value, dict):
        if value.keys() == {ARRAY_REF}:
            name = value[ARRAY_REF]
            if not isinstance(name, str) or name not in arrays:
                raise ValueError(f"the record refers to an array it does not hold (or twice): {short(name)}")
            return arrays.pop(name)
        return {key: _join_arrays(item, arrays) for key, item in value.items()}
    if isinstance(value, list):
        return [_join_arrays(item, arrays) for item in value]
    return value


# ---------------------------------------------------------------- loading


def _read(path: PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what load_checkpoint returns, the trainer's state as Trainer.load_state_dict takes it)."""
    return read_archive(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, _parse)


def _parse(archive: Archive) -> tuple[dict[str, Any], dict[str, Any]]:
    record = archive.record
    network = network_from(record.get("network"), archive)
    others = {name: archive.read(name) for name in archive.table if not name.startswith(NETWORK_PREFIXES)}
    state = _join_arrays(field(record, "trainer", dict, "the record"), others)
    random_states = _join_arrays(field(record, "rng", dict, "the record"), others)
    if others:
        raise ValueError(f"arrays nothing in the record refers to: {short(sorted(others))}")
    checked = check_state(state, network)
    layers = field(random_states, "layers", dict, "the random states")
    for generator_state in layers.values():
        check_generator_state(generator_state)
    np.random.RandomState().set_state(field(random_states, "global", dict, "the random states"))
    counters = ("current_iter", "max_iter", "batch_size", "train_size", "sampling", "order", "seed")
    settings = (
        "validation_size",
        "test_each_epoch",
        "lr_schedule",
        "augmentation",
        "early_stopping",
        "input_scale",
        "evaluation_samples",
        "data",
        "threads",
        "numpy",
    )
    early = checked["early_stopping"]
    checkpoint = {
        "network": network,
        "optimizer": checked["optimizer"],
        "history": checked["history"],
        "trainer": {key: checked[key] for key in counters + settings},
        "finished": checked["current_iter"] == checked["max_iter"]
        or (early is not None and early["wait"] >= early["patience"]),
        "rng": {"sampler": checked["sampler"], "layers": layers, "global": random_states["global"]},
        "extra": record.get("extra"),
    }
    return checkpoint, state


# ---------------------------------------------------------------- restoring


def _layer_generators(network: Sequential) -> dict[str, np.random.Generator]:
    """ "<layer name>/<attribute>" -> each np.random.Generator a layer holds, found by type so
    that any random layer is covered, whatever it calls its generator."""
    return {
        f"{name}/{attribute}": value
        for name, layer in network.layers.items()
        for attribute, value in vars(layer).items()
        if isinstance(value, np.random.Generator)
    }


def _network_mismatches(checkpoint: dict[str, Any], network: Sequential) -> list[str]:
    """Why network cannot take the saved one's place, each as "X is A in the checkpoint, B
    here" (empty: it can)."""
    saved, ours = network_description(checkpoint["network"]), network_description(network)
    pairs = [("the network", saved["class"], ours["class"])]
    if saved["class"] == ours["class"]:
        keys = sorted(saved["config"].keys() | ours["config"].keys())
        pairs += [(f"the network's {key}", saved["config"].get(key), ours["config"].get(key)) for key in keys]
        pairs += [(f"the network's {key}", saved[key], ours[key]) for key in ("dtype", "param_layers")]
    pairs.append(
        (
            "the layers' own generators",
            {key: state["bit_generator"] for key, state in checkpoint["rng"]["layers"].items()},
            {key: type(g.bit_generator).__name__ for key, g in _layer_generators(network).items()},
        )
    )
    problems = [
        f"{what} is {short(theirs)} in the checkpoint, {short(mine)} here"
        for what, theirs, mine in pairs
        if theirs != mine
    ]
    # the same description means the same arrays; checked all the same, as nothing may fail later
    return problems or array_mismatches(network_arrays(network), network_arrays(checkpoint["network"]))
