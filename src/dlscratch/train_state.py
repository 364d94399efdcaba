"""A Trainer's state as plain data: made, checked like user input, and compared with a trainer.

``Trainer.state_dict()`` and ``Trainer.load_state_dict()`` are built from these pieces, and
dlscratch.checkpoint stores that state in a file. The state (JSON data and arrays)::

    current_iter, max_iter, batch_size, train_size   counters
    sampling, order, sampler, seed                    where the batch sampler is: its shuffled
                                                      epoch, its generator's state ("global"
                                                      for np.random's), the int seed if any
    history                                           History.to_dict()
    optimizer                                         Optimizer.state_dict() (the starting lr
                                                      when a schedule sets it)
    validation_size, test_each_epoch                  what each evaluation scores
    lr_schedule                                       null, or the Schedule's config()
    augmentation                                      null, or {"config": its config(),
                                                      "generators": [each generator's state]}
    early_stopping                                    null, or EarlyStopping.state_dict():
                                                      settings, progress, the best weights
    input_scale, evaluation_samples                   settings that change the numbers
    data                                              a fingerprint of the data arrays
    threads, numpy                                    what the arithmetic ran on (the thread
                                                      count only for the record)

Checking treats every field as untrusted: kinds and ranges, then the counters against
each other (the losses recorded are current_iter, the optimizer's steps are current_iter,
evaluations fall on iterations the run reached, epochs follow from iterations, one
accuracy per evaluation for each split scored, the shuffled epoch is a permutation where
one must be in progress, early stopping's best is one of the evaluations and its count
of evaluations since is the history's), and for an int seed the sampler's state against
a replay of the batches the seed gives.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import math
from typing import Any

import numpy as np

from dlscratch import optim as optim_module
from dlscratch.augment import augmentation_from_config
from dlscratch.kernels.parallel import get_num_threads
from dlscratch.optim import Optimizer
from dlscratch.records import choice, field, integer, number, or_none, short
from dlscratch.schedules import schedule_from_config

__all__ = [
    "SAMPLING_MODES",
    "arithmetic",
    "augmentation_state",
    "check_state",
    "continuation_warnings",
    "data_fingerprint",
    "draw_batch",
    "mismatches",
    "network_state_arrays",
    "set_augmentation_state",
]

SAMPLING_MODES = ("replacement", "shuffle")
#: the bit generators np.random offers; a state may name no other
BIT_GENERATORS = ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")
# optimizer slots that are sums or averages of squares: a negative value is impossible
_NON_NEGATIVE_SLOTS = {("AdaGrad", "h"), ("RMSprop", "h"), ("Adam", "v")}


# ---------------------------------------------------------------- the batch sampler


def draw_batch(
    rng: Any, sampling: str, train_size: int, batch_size: int, iteration: int, order: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The sample indices of batch number `iteration`, and the shuffled epoch afterwards.

    "replacement": batch_size draws with replacement, as the book's np.random.choice.
    "shuffle": the next batch_size samples of order, a permutation drawn at each epoch's start.
    """
    if sampling == "replacement":
        if isinstance(rng, np.random.Generator):
            # the very numbers choice(train_size, batch_size) draws, without its checks
            return rng.integers(0, train_size, batch_size), order
        return rng.choice(train_size, batch_size), order
    start = (iteration * batch_size) % train_size
    if start == 0 or len(order) != train_size:
        order = rng.permutation(train_size)
    stop = start + batch_size
    if stop <= train_size:
        return order[start:stop], order
    # the batch straddles two epochs: finish this permutation, start the next
    head = order[start:]
    order = rng.permutation(train_size)
    return np.concatenate([head, order[: stop - train_size]]), order


@functools.lru_cache(maxsize=8)  # a resume checks one state up to three times; never mutated
def _replayed_sampler(
    seed: int, sampling: str, train_size: int, batch_size: int, batches: int
) -> tuple[dict[str, Any], np.ndarray]:
    """The generator state and shuffled epoch a fresh sampler seeded with seed reaches after
    drawing that many batches (about 20 microseconds a batch)."""
    rng, order = np.random.default_rng(seed), np.arange(0)
    for iteration in range(batches):
        _, order = draw_batch(rng, sampling, train_size, batch_size, iteration, order)
    return rng.bit_generator.state, order


# ---------------------------------------------------------------- making a state


def data_fingerprint(*arrays: np.ndarray) -> str:
    """A digest of the arrays' dtypes, shapes and bytes: equal data, equal fingerprint."""
    digest = hashlib.blake2b(digest_size=16)
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape};".encode())
        digest.update(memoryview(array.reshape(-1).view(np.uint8)))
    return digest.hexdigest()


def arithmetic() -> dict[str, Any]:
    """What the arithmetic runs on here: NumPy's version, and (for the record: the kernels
    give the same bits on any number) the threads the fast kernels use."""
    return {"threads": get_num_threads(), "numpy": np.__version__}


def network_state_arrays(network: Any) -> dict[str, np.ndarray]:
    """The arrays a training step changes: every param by its name, every layer's buffers
    as "<layer>/<key>" (the network's own arrays, not copies)."""
    arrays = dict(getattr(network, "params", {}))
    for layer_name, layer in getattr(network, "layers", {}).items():
        for key, array in getattr(layer, "buffers", {}).items():
            arrays[f"{layer_name}/{key}"] = array
    return arrays


def _generators(augment: Any) -> list[np.random.Generator]:
    """The generators of an Augmentation (one) or a Compose (one per part, in order)."""
    parts = getattr(augment, "augmentations", [augment])
    return [part.rng for part in parts]


def augmentation_state(augment: Any) -> dict[str, Any] | None:
    """{"config", "generators"} of an augmentation with config() (see dlscratch.augment);
    None for none. ValueError for an augmentation whose state cannot be saved."""
    if augment is None:
        return None
    if not hasattr(augment, "config"):
        raise ValueError(
            f"cannot save the state of the augmentation {augment!r}: use dlscratch.augment's "
            "Augmentation or Compose, whose settings and generators can be saved"
        )
    return {"config": augment.config(), "generators": [g.bit_generator.state for g in _generators(augment)]}


def set_augmentation_state(augment: Any, state: dict[str, Any] | None) -> None:
    """Put the generators' saved states (from augmentation_state, checked) back."""
    if augment is None or state is None:
        return
    for generator, saved in zip(_generators(augment), state["generators"], strict=True):
        generator.bit_generator.state = saved


# ---------------------------------------------------------------- checking a state


def check_state(state: Any, network: Any) -> dict[str, Any]:
    """state (as Trainer.state_dict() gives it) checked field by field and as a whole.

    network: the network the state belongs to: the optimizer's slots must match its
    parameters, early stopping's best weights its params and buffers. Returns the state
    with "history" as a History, "optimizer" as an Optimizer holding the saved state, and
    "lr_schedule" as a Schedule (or None); ValueError saying what is wrong otherwise.
    """
    from dlscratch.train import History

    where = "the trainer state"
    params = dict(getattr(network, "params", {}))
    checked: dict[str, Any] = {
        "train_size": integer(state, "train_size", where, minimum=1),
        "validation_size": integer(state, "validation_size", where),
        "test_each_epoch": field(state, "test_each_epoch", bool, where),
        "max_iter": integer(state, "max_iter", where, minimum=1),
        "sampling": choice(state, "sampling", SAMPLING_MODES, where),
        "data": field(state, "data", str, where),
        "threads": integer(state, "threads", where, minimum=1),
        "numpy": field(state, "numpy", str, where),
    }
    checked["batch_size"] = integer(state, "batch_size", where, minimum=1, maximum=checked["train_size"])
    checked["current_iter"] = integer(state, "current_iter", where, maximum=checked["max_iter"])
    checked["input_scale"] = or_none(number, state, "input_scale", where, minimum=0)
    checked["evaluation_samples"] = or_none(integer, state, "evaluation_samples", where, minimum=1)
    checked["seed"] = or_none(integer, state, "seed", where, maximum=2**256)  # any seed default_rng takes
    checked["sampler"] = _sampler_state(state)
    checked["order"] = _order(state, checked)
    checked["history"] = History.from_dict(_history(field(state, "history", dict, where), checked))
    checked["optimizer"] = _optimizer(field(state, "optimizer", dict, where), params, checked["current_iter"])
    checked["lr_schedule"] = _schedule(state)
    checked["augmentation"] = _augmentation(state)
    checked["early_stopping"] = _early_stopping(state, checked, network_state_arrays(network))
    if checked["seed"] is not None and checked["sampler"] != "global":
        replayed, order = _replayed_sampler(
            checked["seed"],
            checked["sampling"],
            checked["train_size"],
            checked["batch_size"],
            checked["current_iter"],
        )
        if replayed != checked["sampler"] or not np.array_equal(order, checked["order"]):
            raise ValueError(
                f"the batch sampler is not where seed {checked['seed']} puts it after "
                f"{checked['current_iter']} batches (the state was edited, or belongs to another run)"
            )
    return checked


def _sampler_state(state: dict[str, Any]) -> Any:
    sampler = field(state, "sampler", (str, dict), "the trainer state")
    if sampler != "global":
        check_generator_state(sampler)
    return sampler


def check_generator_state(state: Any) -> None:
    """ValueError unless state is one a np.random bit generator accepts (tried on a throwaway one)."""
    name = field(state, "bit_generator", str, "a generator's state")
    if name not in BIT_GENERATORS:
        raise ValueError(f"unknown bit generator {short(name)}")
    try:
        getattr(np.random, name)().state = state
    except (TypeError, ValueError, KeyError, OverflowError) as error:
        raise ValueError(
            f"a {name} generator state that NumPy refuses ({type(error).__name__}: {error})"
        ) from None


def _order(state: dict[str, Any], checked: dict[str, Any]) -> np.ndarray:
    """The shuffled epoch in progress: a permutation of the training set, or empty when
    none is needed (replacement sampling, or an epoch boundary)."""
    order = state.get("order")
    where, size = "the trainer state", checked["train_size"]
    if not isinstance(order, np.ndarray) or order.dtype.kind not in "iu" or order.ndim != 1:
        raise ValueError(f"{where} needs 'order' as a 1-D integer array")
    if len(order) and not np.array_equal(np.sort(order), np.arange(size)):
        raise ValueError(f"{where}: order is not a permutation of the {size} training samples")
    mid_epoch = (checked["current_iter"] * checked["batch_size"]) % size != 0
    if checked["sampling"] == "replacement" and len(order):
        raise ValueError(f"{where}: sampling with replacement keeps no shuffled order")
    if checked["sampling"] == "shuffle" and mid_epoch and not len(order):
        raise ValueError(f"{where}: a shuffled epoch is in progress but its order is missing")
    return order


def _history(data: dict[str, Any], checked: dict[str, Any]) -> dict[str, Any]:
    """The history's fields as lists of numbers that fit the counters."""
    from dlscratch.train import History

    names = {f.name for f in dataclasses.fields(History)}
    if data.keys() != names:
        raise ValueError(f"the history must be a JSON object with exactly the fields {sorted(names)}")
    for name, value in data.items():
        values = value if isinstance(value, list) else [value]
        if not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values
        ):
            raise ValueError(f"history.{name} must hold finite numbers, got {short(value)}")
    if not isinstance(data["seconds"], (int, float)) or data["seconds"] < 0:
        raise ValueError(f"history.seconds must be a number >= 0, got {short(data['seconds'])}")
    current = checked["current_iter"]
    if len(data["train_loss"]) != current:
        raise ValueError(
            f"the history records {len(data['train_loss'])} losses but the run is at iteration {current}"
        )
    evaluations = data["iterations"]
    if any(len(data[name]) != len(evaluations) for name in ("epochs", "train_acc")):
        raise ValueError("history.epochs, iterations and train_acc must be of one length")
    scored = {"val_acc": checked["validation_size"] > 0, "test_acc": checked["test_each_epoch"]}
    for name, each_evaluation in scored.items():
        expected = len(evaluations) if each_evaluation else 0
        if len(data[name]) != expected:
            raise ValueError(
                f"history.{name} must hold {expected} accuracies (one per evaluation of a split "
                f"scored at each), got {len(data[name])}"
            )
    if not all(type(i) is int and 0 <= i <= current for i in evaluations) or any(
        a >= b for a, b in itertools.pairwise(evaluations)
    ):
        raise ValueError(
            f"history.iterations must rise from 0 to at most {current}, got {short(evaluations)}"
        )
    expected = [round(i * checked["batch_size"] / checked["train_size"], 4) for i in evaluations]
    if data["epochs"] != expected:
        raise ValueError(f"history.epochs {short(data['epochs'])} do not follow from its iterations")
    if not all(0 <= acc <= 1 for acc in data["train_acc"] + data["test_acc"] + data["val_acc"]):
        raise ValueError("history accuracies must lie between 0 and 1")
    return data


def _optimizer(state: dict[str, Any], params: dict[str, np.ndarray], current_iter: int) -> Optimizer:
    """The saved optimizer, built from its hyperparameters (which checks them), its state loaded."""
    from dlscratch.serialize import build, exported_class

    where = "the optimizer state"
    cls = exported_class(optim_module, field(state, "type", str, where), Optimizer)
    if cls is None or cls is Optimizer:
        raise ValueError(f"unknown optimizer {short(state['type'])}")
    hyperparameters = field(state, "hyperparameters", dict, where)
    for name in hyperparameters:
        number(hyperparameters, name, f"the {cls.__name__} hyperparameters")
    optimizer = build(f"the {cls.__name__} optimizer", cls, **hyperparameters)
    step_count = field(state, "step_count", int, where)
    if step_count != current_iter:
        raise ValueError(f"{where}: step_count must be the run's {current_iter} iterations, got {step_count}")
    slots = field(state, "slots", dict, where)
    if unknown := sorted(slots.keys() - set(cls.slot_names)):
        raise ValueError(f"{cls.__name__} keeps no state named {short(unknown)}")
    for slot in cls.slot_names:
        arrays = field(slots, slot, dict, "the optimizer's slots") if step_count else slots.get(slot, {})
        expected = set(params) if step_count else set()
        if set(arrays) != expected:
            raise ValueError(
                f"optimizer slot {slot} must hold exactly {short(sorted(expected))} after "
                f"{step_count} steps, got {short(sorted(arrays))}"
            )
        for key, array in arrays.items():
            _check_slot(cls.__name__, slot, key, array, params[key])
    optimizer.load_state_dict(state)
    return optimizer


def _check_slot(optimizer: str, slot: str, key: str, array: Any, param: np.ndarray) -> None:
    if not isinstance(array, np.ndarray):
        raise ValueError(f"optimizer slot {slot}/{short(key)} is not an array")
    if array.shape != param.shape or array.dtype != param.dtype:
        raise ValueError(
            f"optimizer slot {slot}/{key} is {array.dtype}{array.shape}, "
            f"its parameter {param.dtype}{param.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"optimizer slot {slot}/{key} holds NaN or infinite values")
    if (optimizer, slot) in _NON_NEGATIVE_SLOTS and (array < 0).any():
        raise ValueError(
            f"optimizer slot {slot}/{key} holds negative values, impossible for a sum of squares"
        )


def _present(state: dict[str, Any], key: str) -> Any:
    """state[key], which may be null but must be there."""
    if key not in state:
        raise ValueError(f"the trainer state has no {key!r}")
    return state[key]


def _schedule(state: dict[str, Any]) -> Any:
    config = _present(state, "lr_schedule")
    return None if config is None else schedule_from_config(config)


def _augmentation(state: dict[str, Any]) -> dict[str, Any] | None:
    """The augmentation's config, rebuilt to check it, and its generators' states, each
    checked on a throwaway generator of the kind it names."""
    saved = _present(state, "augmentation")
    if saved is None:
        return None
    where = "the augmentation state"
    rebuilt = augmentation_from_config(field(saved, "config", dict, where))
    generators = field(saved, "generators", list, where)
    if len(generators) != len(_generators(rebuilt)):
        raise ValueError(
            f"{where} holds {len(generators)} generator states for {len(_generators(rebuilt))} augmentations"
        )
    for generator in generators:
        check_generator_state(generator)
    return {"config": saved["config"], "generators": generators}


def _early_stopping(
    state: dict[str, Any], checked: dict[str, Any], arrays: dict[str, np.ndarray]
) -> dict[str, Any] | None:
    """Early stopping's settings and progress, checked against the history, and its best
    weights against the network's arrays."""
    saved = _present(state, "early_stopping")
    if saved is None:
        return None
    where = "the early stopping state"
    if checked["validation_size"] == 0:
        raise ValueError(f"{where} is there but the run has no validation set")
    result = {
        "patience": integer(saved, "patience", where, minimum=1),
        "min_delta": number(saved, "min_delta", where, minimum=0),
        "best_acc": or_none(number, saved, "best_acc", where, minimum=0, maximum=1),
        "best_iteration": or_none(integer, saved, "best_iteration", where),
        "wait": integer(saved, "wait", where),
        "best": field(saved, "best", dict, where),
    }
    history = checked["history"]
    if result["best_iteration"] is None:
        if result["best_acc"] is not None or result["wait"] or result["best"] or history.iterations:
            raise ValueError(f"{where} has progress but no best evaluation")
        return result
    if result["best_iteration"] not in history.iterations:
        raise ValueError(f"{where}: the best iteration {result['best_iteration']} is no evaluation's")
    index = history.iterations.index(result["best_iteration"])
    if history.val_acc[index] != result["best_acc"]:
        raise ValueError(f"{where}: best_acc is not the validation accuracy of its evaluation")
    if result["wait"] != len(history.iterations) - 1 - index:
        raise ValueError(f"{where}: wait must count the evaluations after the best one")
    if problems := _array_problems(arrays, result["best"]):
        raise ValueError(f"{where}: the best weights do not fit the network: {'; '.join(problems[:3])}")
    return result


def _array_problems(expected: dict[str, np.ndarray], found: dict[str, Any]) -> list[str]:
    if expected.keys() != found.keys():
        return [f"arrays {short(sorted(found))}, the network's {short(sorted(expected))}"]
    problems = []
    for name, array in found.items():
        if not isinstance(array, np.ndarray):
            problems.append(f"{short(name)} is not an array")
        elif array.shape != expected[name].shape or array.dtype != expected[name].dtype:
            want = expected[name]
            problems.append(f"{name} is {array.dtype}{array.shape}, the network's {want.dtype}{want.shape}")
        elif not np.isfinite(array).all():
            problems.append(f"{name} holds NaN or infinite values")
    return problems


# ---------------------------------------------------------------- comparing with a trainer


def mismatches(checked: dict[str, Any], trainer: Any, ours: dict[str, Any]) -> list[str]:
    """Why trainer, whose own state is ours, cannot continue the checked state's run.

    Each as "X is A in the saved state, B here"; empty when it can. The thread count and
    NumPy version are not among them: the first changes nothing, the second the last bits
    only (see continuation_warnings).
    """
    saved_optimizer, our_optimizer = checked["optimizer"], trainer.optimizer
    pairs = [
        ("the optimizer", type(saved_optimizer).__name__, type(our_optimizer).__name__),
        *(
            (key, checked[key], ours[key])
            for key in (
                "batch_size",
                "train_size",
                "validation_size",
                "test_each_epoch",
                "sampling",
                "input_scale",
                "evaluation_samples",
            )
        ),
        ("the learning-rate schedule", _config(checked["lr_schedule"]), ours["lr_schedule"]),
        ("the augmentation", _config(checked["augmentation"]), _config(ours["augmentation"])),
        ("early stopping", _settings(checked["early_stopping"]), _settings(ours["early_stopping"])),
        ("the batch sampler", sampler_kind(checked["sampler"]), sampler_kind(ours["sampler"])),
        ("the training and test data (fingerprint)", checked["data"], ours["data"]),
    ]
    if type(saved_optimizer) is type(our_optimizer):
        saved, mine = saved_optimizer.hyperparameters(), our_optimizer.hyperparameters()
        pairs += [(f"the optimizer's {key}", saved.get(key), mine.get(key)) for key in sorted(saved | mine)]
    return [
        f"{what} is {short(theirs)} in the saved state, {short(mine)} here"
        for what, theirs, mine in pairs
        if theirs != mine
    ]


def _config(value: Any) -> Any:
    """A schedule's or an augmentation state's config, for comparing (None stays None)."""
    if value is None:
        return None
    return value["config"] if isinstance(value, dict) else value.config()


def _settings(early_stopping: dict[str, Any] | None) -> Any:
    if early_stopping is None:
        return None
    return {key: early_stopping[key] for key in ("patience", "min_delta")}


def continuation_warnings(checked: dict[str, Any]) -> list[str]:
    """What makes a continuation here not bit-identical to the run continued where it was
    saved: another NumPy. (Another thread count does not: dlscratch.kernels cut their work
    into the same chunks on any number of threads.)"""
    here = arithmetic()
    if checked["numpy"] == here["numpy"]:
        return []
    return [
        f"the saved run used NumPy {checked['numpy']}, here {here['numpy']}: "
        "the continuation may differ from an unbroken run in the last bits"
    ]


def sampler_kind(rng: Any) -> str:
    """How a batch sampler draws, for comparing a saved run with a trainer."""
    if rng is np.random or rng == "global":
        return "np.random's global state (seed=None)"
    if isinstance(rng, np.random.Generator):
        rng = rng.bit_generator.state
    if isinstance(rng, dict):
        return f"a {rng['bit_generator']} generator (an int seed)"
    return f"a {type(rng).__name__}"
