"""Training checkpoints: everything needed to stop a run and continue it bit for bit.

A checkpoint is an .npz archive laid out like a model file (see dlscratch.serialize), with
format "dlscratch-checkpoint", version 1, written atomically and flushed to disk:

    __meta__                 UTF-8 JSON: "network" (as in a model file), "optimizer"
                             (Optimizer.state_dict()), "rng" (random states), "trainer"
                             (current_iter, max_iter, batch_size, train_size, sampling),
                             "history" (History.to_dict()), "extra" (any JSON of yours)
    params/..., buffers/...  the network's arrays, as in a model file
    optimizer/slots/v/W1 ... the optimizer's slot arrays (velocities, moments)
    rng/...                  the arrays inside random states (np.random's MT19937 key)
    trainer/order            the shuffled epoch being consumed (sampling="shuffle")

Inside the JSON an array appears as {"__array__": "<entry name>"}.

Random state, saved exactly (a generator's 128-bit integers are JSON integers, which Python
reads back exactly) and set again by restore_checkpoint:
- "sampler": the batch sampler's generator (Trainer(seed=...)), or "global" when unseeded;
- "layers": every np.random.Generator a layer holds, by "<layer name>/<attribute>" (the
  mask source of Dropout(seed=...), which seeded networks such as MultiLayerNetExtend use);
- "global": np.random's global state, which an unseeded Trainer (seed=None, as in the book)
  and unseeded layers (Dropout(seed=None)) draw from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dlscratch import optim as optim_module
from dlscratch.nets.sequential import Sequential
from dlscratch.optim import Optimizer
from dlscratch.serialize import (
    NETWORK_PREFIXES,
    PathLike,
    array_mismatches,
    build,
    copy_network_arrays,
    exported_class,
    get_field,
    network_arrays,
    network_description,
    network_from,
    read_archive,
    short,
    to_json_data,
    write_archive,
)
from dlscratch.train import SAMPLING_MODES, History, Trainer

__all__ = ["checkpoint_callback", "load_checkpoint", "restore_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = "dlscratch-checkpoint"
CHECKPOINT_VERSION = 1
ARRAY_REF = "__array__"
ORDER = "trainer/order"
# the bit generators np.random offers; a file may name no other
_BIT_GENERATORS = ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")


def save_checkpoint(path: PathLike, trainer: Trainer, extra: Any = None) -> Path:
    """Save trainer's run (network, optimizer, random states, progress, history) to path.

    path is used exactly as given; the write is atomic (see dlscratch.save). extra: any JSON
    data to keep with it (the command line stores its arguments there); NumPy scalars and
    paths are stored as numbers and strings. Returns path as a Path. ValueError if extra is
    not JSON data or trainer.rng is neither np.random nor a np.random.Generator.
    """
    extra = to_json_data(extra, "extra")
    arrays = network_arrays(trainer.network)
    meta = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "network": network_description(trainer.network),
        "optimizer": _split_arrays(trainer.optimizer.state_dict(), "optimizer", arrays),
        "rng": _split_arrays(_random_states(trainer), "rng", arrays),
        "trainer": {
            key: getattr(trainer, key)
            for key in ("current_iter", "max_iter", "batch_size", "train_size", "sampling")
        },
        "history": trainer.history.to_dict(),
        "extra": extra,
    }
    arrays[ORDER] = trainer._order  # the sampler's place in the current shuffled epoch
    return write_archive(path, meta, arrays)


def load_checkpoint(path: PathLike) -> dict[str, Any]:
    """Read and check the checkpoint at path, touching no trainer.

    Returns {"network": the network, rebuilt; "optimizer": an Optimizer in its saved state;
    "history": a History; "trainer": {"current_iter", "max_iter", "batch_size",
    "train_size", "sampling", "order"}; "rng": {"sampler": the generator's
    bit_generator.state, or "global" for an unseeded trainer; "layers": "<layer>/<attribute>"
    -> a layer generator's state; "global": np.random's state}; "extra": what
    save_checkpoint was given}. ValueError naming the file for anything
    damaged or inconsistent.
    """
    return read_archive(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, _parse)


def restore_checkpoint(path: PathLike, trainer: Trainer) -> dict[str, Any]:
    """Put the run saved at path back into trainer; trainer.train() then continues it.

    trainer must be built as the saved one was: the same network class and config, optimizer
    type, mini_batch_size, sampling, training-set size and kind of seed (an int or None), and
    of course the same data. The result is then bit for bit the weights and history of a run
    never interrupted. max_iter may differ, to train for longer. The saved optimizer
    hyperparameters replace the trainer's; the layers' generators and np.random's global state
    are set too (see the module's notes). Everything is checked first: on ValueError the
    trainer is untouched. Returns load_checkpoint(path), whose "extra" holds what was saved with the run.
    """
    checkpoint = load_checkpoint(path)
    if problems := _mismatches(checkpoint, trainer):
        raise ValueError(f"cannot restore {path} into this trainer: {'; '.join(problems)}")
    copy_network_arrays(trainer.network, network_arrays(checkpoint["network"]))
    trainer.optimizer.load_state_dict(checkpoint["optimizer"].state_dict())
    trainer.history = checkpoint["history"]
    trainer.current_iter = checkpoint["trainer"]["current_iter"]
    trainer._order = checkpoint["trainer"]["order"].copy()
    random_states = checkpoint["rng"]
    if random_states["sampler"] != "global":
        trainer.rng.bit_generator.state = random_states["sampler"]
    for key, generator in _layer_generators(trainer.network).items():
        generator.bit_generator.state = random_states["layers"][key]
    np.random.set_state(random_states["global"])
    return checkpoint


def checkpoint_callback(path: PathLike, every: int, extra: Any = None) -> Callable[[Trainer], None]:
    """A Trainer callback that saves a checkpoint to path every `every` iterations and after
    the last one.

    Each save replaces the one before atomically, so path always holds the newest complete
    checkpoint (one file, no numbering). extra is passed to save_checkpoint.
    """
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise ValueError(f"checkpoint every must be a positive int, got {every!r}")
    extra = to_json_data(extra, "extra")  # refused now rather than at the first save

    def save_every(trainer: Trainer) -> None:
        if trainer.current_iter % every == 0 or trainer.current_iter == trainer.max_iter:
            save_checkpoint(path, trainer, extra)

    return save_every


# ---------------------------------------------------------------- saving


def _random_states(trainer: Trainer) -> dict[str, Any]:
    if trainer.rng is np.random:
        sampler: Any = "global"
    elif isinstance(trainer.rng, np.random.Generator):
        sampler = trainer.rng.bit_generator.state
    else:
        raise ValueError(
            f"cannot checkpoint a trainer whose rng is a {type(trainer.rng).__name__}; "
            "give Trainer an int seed, a np.random.Generator or None"
        )
    layers = {
        key: generator.bit_generator.state for key, generator in _layer_generators(trainer.network).items()
    }
    return {"sampler": sampler, "layers": layers, "global": np.random.get_state(legacy=False)}


def _layer_generators(network: Sequential) -> dict[str, np.random.Generator]:
    """ "<layer name>/<attribute>" -> each np.random.Generator a layer holds, found by type so
    that any random layer is covered, whatever it calls its generator."""
    return {
        f"{name}/{attribute}": value
        for name, layer in network.layers.items()
        for attribute, value in vars(layer).items()
        if isinstance(value, np.random.Generator)
    }


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


# ---------------------------------------------------------------- loading


def _parse(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    network_entries = {name: a for name, a in arrays.items() if name.startswith(NETWORK_PREFIXES)}
    others = {name: a for name, a in arrays.items() if name not in network_entries}
    network = network_from(meta.get("network"), network_entries)
    optimizer = _optimizer_from(_join_arrays(meta.get("optimizer"), others), network)
    random_states = _checked_random_states(_join_arrays(meta.get("rng"), others))
    trainer = _trainer_state(meta.get("trainer"), others.pop(ORDER, None))
    if others:
        raise ValueError(f"arrays nothing in the record refers to: {short(sorted(others))}")
    return {
        "network": network,
        "optimizer": optimizer,
        "history": _history_from(meta.get("history")),
        "trainer": trainer,
        "rng": random_states,
        "extra": meta.get("extra"),
    }


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


def _optimizer_from(state: Any, network: Sequential) -> Optimizer:
    """The saved optimizer, built from its hyperparameters (which checks them), its state loaded."""
    where = "the optimizer state"
    cls = exported_class(optim_module, get_field(state, "type", str, where), Optimizer)
    if cls is None or cls is Optimizer:
        raise ValueError(f"unknown optimizer {short(state['type'])}")
    optimizer = build(
        f"the {cls.__name__} optimizer", cls, **get_field(state, "hyperparameters", dict, where)
    )
    step_count = get_field(state, "step_count", int, where)
    if step_count < 0:
        raise ValueError(f"{where}: step_count must be >= 0, got {step_count}")
    _check_slots(get_field(state, "slots", dict, where), network)
    optimizer.load_state_dict(state)
    return optimizer


def _check_slots(slots: dict[str, Any], network: Sequential) -> None:
    """Each slot array must match the parameter it belongs to in shape and dtype."""
    for slot in slots:
        for key, array in get_field(slots, slot, dict, "the optimizer's slots").items():
            param = network.params.get(key)
            if param is None or not isinstance(array, np.ndarray):
                raise ValueError(f"optimizer slot {slot}/{short(key)} is not an array of a network parameter")
            if array.shape != param.shape or array.dtype != param.dtype:
                raise ValueError(
                    f"optimizer slot {slot}/{key} is {array.dtype}{array.shape}, "
                    f"its parameter {param.dtype}{param.shape}"
                )


def _checked_random_states(states: Any) -> dict[str, Any]:
    """states, once each has been set on a throwaway generator (so a restore cannot fail)."""
    where = "the random states"
    sampler = get_field(states, "sampler", (str, dict), where)
    if sampler != "global":
        _check_generator_state(sampler)
    for state in get_field(states, "layers", dict, where).values():
        _check_generator_state(state)
    np.random.RandomState().set_state(get_field(states, "global", dict, where))
    return states


def _check_generator_state(state: Any) -> None:
    name = get_field(state, "bit_generator", str, "a generator's state")
    if name not in _BIT_GENERATORS:
        raise ValueError(f"unknown bit generator {short(name)}")
    getattr(np.random, name)().state = state


def _trainer_state(state: Any, order: Any) -> dict[str, Any]:
    """The saved counters and sampler position, checked to be possible."""
    where = "the trainer state"
    counts = {
        key: get_field(state, key, int, where)
        for key in ("current_iter", "max_iter", "batch_size", "train_size")
    }
    if counts["current_iter"] < 0 or min(counts["max_iter"], counts["batch_size"], counts["train_size"]) < 1:
        raise ValueError(f"{where} has impossible counts: {counts}")
    sampling = get_field(state, "sampling", str, where)
    if sampling not in SAMPLING_MODES:
        raise ValueError(f"{where}: unknown sampling {short(sampling)}")
    # the shuffled epoch in progress is a permutation of the training set, or not started
    if not isinstance(order, np.ndarray) or order.dtype.kind not in "iu" or order.ndim != 1:
        raise ValueError(f"{where} needs {ORDER} as a 1-D integer array")
    if len(order) and not np.array_equal(np.sort(order), np.arange(counts["train_size"])):
        raise ValueError(f"{ORDER} is not a permutation of the {counts['train_size']} training samples")
    return {**counts, "sampling": sampling, "order": order}


def _history_from(data: Any) -> History:
    """History.from_dict(data) once every field is there and holds numbers."""
    names = {field.name for field in dataclasses.fields(History)}
    if not isinstance(data, dict) or data.keys() != names:
        raise ValueError(f"the history must be a JSON object with exactly the fields {sorted(names)}")
    for name, value in data.items():
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise ValueError(f"history.{name} must hold numbers, got {short(value)}")
    return History.from_dict(data)


# ---------------------------------------------------------------- restoring


def _mismatches(checkpoint: dict[str, Any], trainer: Trainer) -> list[str]:
    """Why trainer cannot continue the saved run, each as "X is A in the checkpoint, B here"
    (empty: it can)."""
    saved, ours = network_description(checkpoint["network"]), network_description(trainer.network)
    pairs = [("the network", saved["class"], ours["class"])]
    if saved["class"] == ours["class"]:
        keys = sorted(saved["config"].keys() | ours["config"].keys())
        pairs += [(f"the network's {key}", saved["config"].get(key), ours["config"].get(key)) for key in keys]
        pairs += [(f"the network's {key}", saved[key], ours[key]) for key in ("dtype", "param_layers")]
    pairs += [
        ("the optimizer", type(checkpoint["optimizer"]).__name__, type(trainer.optimizer).__name__),
        *(
            (key, checkpoint["trainer"][key], getattr(trainer, key))
            for key in ("batch_size", "train_size", "sampling")
        ),
        ("the batch sampler", _sampler_kind(checkpoint["rng"]["sampler"]), _sampler_kind(trainer.rng)),
        (
            "the layers' own generators",
            {key: state["bit_generator"] for key, state in checkpoint["rng"]["layers"].items()},
            {key: type(g.bit_generator).__name__ for key, g in _layer_generators(trainer.network).items()},
        ),
    ]
    problems = [
        f"{what} is {short(theirs)} in the checkpoint, {short(mine)} here"
        for what, theirs, mine in pairs
        if theirs != mine
    ]
    # the same description means the same arrays; checked all the same, as nothing may fail later
    return problems or array_mismatches(
        network_arrays(trainer.network), network_arrays(checkpoint["network"])
    )


def _sampler_kind(rng: Any) -> str:
    """How the batch sampler draws, for comparing a saved run with a trainer."""
    if rng is np.random or rng == "global":
        return "np.random's global state (seed=None)"
    if isinstance(rng, np.random.Generator):
        rng = rng.bit_generator.state
    if isinstance(rng, dict):
        return f"a {rng['bit_generator']} generator (an int seed)"
    return f"a {type(rng).__name__}"
