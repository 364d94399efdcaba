"""Checkpoints: a run stopped, saved, restored into fresh objects and continued ends bit for
bit where the uninterrupted run ends; bad checkpoints and mismatched trainers are refused."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from peak_memory import assert_refused_within_memory
from test_serialize import assert_same_arrays, model_parts, raw_archive, set_in

from dlscratch import checkpoint as checkpoint_module
from dlscratch.augment import Compose, RandomFlip, RandomShift
from dlscratch.checkpoint import checkpoint_callback, load_checkpoint, restore_checkpoint, save_checkpoint
from dlscratch.layers import Affine, BatchNormalization, Dropout, Relu
from dlscratch.nets import MultiLayerNetExtend, Sequential, TwoLayerNet
from dlscratch.optim import Adam
from dlscratch.schedules import CosineDecay
from dlscratch.serialize import load, save
from dlscratch.train import SAMPLING_MODES, History, ResumeWarning, Trainer
from dlscratch.validation import EarlyStopping

ITERS, STOP = 30, 13
OPTIMIZERS = {"SGD": {"lr": 0.1}, "Momentum": {"lr": 0.1}, "Adam": {"lr": 0.01}}


def tiny_data(dtype: Any = np.float64) -> tuple[np.ndarray, ...]:
    """20 training and 10 test samples, 4 features, 3 classes. 20 is no multiple of the
    batch size 7, so shuffled batches straddle epochs and a checkpoint lands mid-epoch."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((30, 4)).astype(dtype)
    t = rng.integers(0, 3, 30)
    return x[:20], t[:20], x[20:], t[20:]


def make_trainer(
    network: Any = None,
    optimizer: str = "SGD",
    sampling: str = "replacement",
    seed: Any = 5,
    callbacks: list | None = None,
    **kwargs: Any,
) -> Trainer:
    network = TwoLayerNet(4, 6, 3, weight_init_std=0.5, seed=0) if network is None else network
    dtype = next(iter(network.params.values())).dtype
    return Trainer(
        network,
        *tiny_data(dtype),
        **{"mini_batch_size": 7, "iters": ITERS, **kwargs},
        optimizer=optimizer,
        optimizer_param=OPTIMIZERS[optimizer],
        verbose=False,
        sampling=sampling,
        seed=seed,
        callbacks=callbacks,
    )


class SimulatedCrashError(Exception):
    """Stands for a crash, a Ctrl-C or a job killed at its time limit."""


def interrupt_at(iteration: int):
    def interrupt(trainer: Trainer) -> None:
        if trainer.current_iter == iteration:
            raise SimulatedCrashError

    return interrupt


def run_interrupted(path: Path, build: Any) -> Trainer:
    """Train build() until STOP with checkpoints every STOP iterations, then crash."""
    trainer = build(callbacks=[checkpoint_callback(path, every=STOP), interrupt_at(STOP)])
    with pytest.raises(SimulatedCrashError):
        trainer.train()
    return trainer


def assert_same_run(ours: Trainer, theirs: Trainer) -> None:
    assert_same_arrays(ours.network.params, theirs.network.params)
    for name, layer in ours.network.layers.items():
        assert_same_arrays(layer.buffers, theirs.network.layers[name].buffers)
    ours_state, theirs_state = ours.optimizer.state_dict(), theirs.optimizer.state_dict()
    assert ours_state["step_count"] == theirs_state["step_count"] == ITERS
    for slot, arrays in ours_state["slots"].items():
        assert_same_arrays(arrays, theirs_state["slots"][slot])
    for field in ("train_loss", "epochs", "iterations", "train_acc", "val_acc", "test_acc"):
        assert getattr(ours.history, field) == getattr(theirs.history, field), field
    assert ours.current_iter == theirs.current_iter == ITERS


def assert_resumes_bit_for_bit(
    tmp_path: Path, build: Any, global_seed: int | None = None, **fresh: Any
) -> None:
    """Train build() straight through; train another build() until a crash at STOP,
    checkpointing; restore the checkpoint into build(**fresh) (other weights and seeds,
    another np.random state) and finish: both runs must end the same to the bit.

    global_seed: np.random's seed before each of the first two runs (for networks and
    samplers that draw from it, as the book's do).
    """
    if global_seed is not None:
        np.random.seed(global_seed)
    straight = build()
    straight.train()
    path = tmp_path / "run.ckpt"
    if global_seed is not None:
        np.random.seed(global_seed)
    run_interrupted(path, build)
    np.random.seed(12345)  # not the state of the crash: the checkpoint must bring that back
    resumed = build(**fresh)
    restore_checkpoint(path, resumed)
    assert resumed.current_iter == STOP
    resumed.train()
    assert_same_run(resumed, straight)


@pytest.fixture(autouse=True)
def keep_global_rng():
    """These tests seed and restore np.random's global state; other tests get it back."""
    state = np.random.get_state()
    yield
    np.random.set_state(state)


# ---------------------------------------------------------------- bit-identical resumption


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sampling", SAMPLING_MODES)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_resumed_run_matches_uninterrupted_run_bit_for_bit(tmp_path, optimizer, sampling, dtype):
    def build(net_seed: int = 0, seed: int = 5, **kwargs: Any) -> Trainer:
        network = TwoLayerNet(4, 6, 3, weight_init_std=0.5, seed=net_seed, dtype=dtype)
        return make_trainer(network, optimizer, sampling, seed=seed, **kwargs)

    # fresh objects with other weights and another seed: the restore must replace them all
    assert_resumes_bit_for_bit(tmp_path, build, net_seed=99, seed=1234)


def test_unseeded_run_resumes_through_np_random_global_state(tmp_path):
    def build(**kwargs: Any) -> Trainer:
        # seed=None everywhere: the net and the sampler draw from np.random, as in the book
        return make_trainer(TwoLayerNet(4, 6, 3, weight_init_std=0.5), "Momentum", seed=None, **kwargs)

    assert_resumes_bit_for_bit(tmp_path, build, global_seed=3)


def test_buffers_and_unseeded_dropout_resume_bit_for_bit(tmp_path):
    def build(**kwargs: Any) -> Trainer:
        rng = np.random.default_rng(kwargs.pop("net_seed", 0))
        network = Sequential(
            [
                Affine(0.5 * rng.standard_normal((4, 6)), np.zeros(6)),
                BatchNormalization(np.ones(6), np.zeros(6)),
                Relu(),
                Dropout(0.3),  # draws its masks from np.random
                Affine(0.5 * rng.standard_normal((6, 3)), np.zeros(3)),
            ]
        )
        return make_trainer(network, "Adam", "shuffle", **kwargs)

    assert_resumes_bit_for_bit(tmp_path, build, global_seed=4, net_seed=1, seed=77)


def seeded_dropout_trainer(net_seed: int = 0, **kwargs: Any) -> Trainer:
    """A seeded MultiLayerNetExtend: each of its Dropout layers draws from a generator of its own."""
    network = MultiLayerNetExtend(
        4, [6, 5], 3, use_dropout=True, dropout_ratio=0.3, use_batchnorm=True, seed=net_seed
    )
    return make_trainer(network, "Adam", "shuffle", **kwargs)


def test_layers_own_generators_resume_bit_for_bit(tmp_path):
    straight = seeded_dropout_trainer()
    straight.train()
    path = tmp_path / "run.ckpt"
    run_interrupted(path, seeded_dropout_trainer)
    resumed = seeded_dropout_trainer(net_seed=99, seed=1234)  # other dropout generator states
    checkpoint = restore_checkpoint(path, resumed)
    assert sorted(checkpoint["rng"]["layers"]) == ["Dropout1/_rng", "Dropout2/_rng"]
    resumed.train()
    assert_same_run(resumed, straight)


def test_restore_refuses_a_network_without_the_saved_layer_generators(tmp_path):
    path = save_checkpoint(tmp_path / "run.ckpt", seeded_dropout_trainer(iters=2))
    unseeded = make_trainer(
        MultiLayerNetExtend(4, [6, 5], 3, use_dropout=True, dropout_ratio=0.3, use_batchnorm=True),
        "Adam",
        "shuffle",
    )
    with pytest.raises(ValueError, match=r"the layers' own generators is \{'Dropout1/_rng': 'PCG64'"):
        restore_checkpoint(path, unseeded)


# ---------------------------------------------------------------- what a checkpoint holds


def test_load_checkpoint_gives_back_what_was_saved(tmp_path):
    trainer = make_trainer(optimizer="Adam", sampling="shuffle", iters=9)
    trainer.train()
    extra = {
        "command": ["train", "--lr", "0.1"],
        "seed": np.int64(5),
        "out": tmp_path,
        "nested": {"a": [1.5]},
    }
    path = save_checkpoint(tmp_path / "run.ckpt", trainer, extra=extra)
    checkpoint = load_checkpoint(path)
    assert checkpoint["extra"] == {**extra, "seed": 5, "out": str(tmp_path)}
    assert type(checkpoint["network"]) is TwoLayerNet
    assert_same_arrays(checkpoint["network"].params, trainer.network.params)
    assert isinstance(checkpoint["optimizer"], Adam) and checkpoint["optimizer"].step_count == 9
    assert isinstance(checkpoint["history"], History)
    assert checkpoint["history"].to_dict() == trainer.history.to_dict()
    saved = checkpoint["trainer"]
    assert (saved["current_iter"], saved["max_iter"], saved["batch_size"]) == (9, 9, 7)
    assert (saved["train_size"], saved["sampling"]) == (20, "shuffle")
    np.testing.assert_array_equal(saved["order"], trainer._order)
    # the generator's 128-bit integers come back exactly
    assert checkpoint["rng"]["sampler"] == trainer.rng.bit_generator.state
    assert checkpoint["rng"]["sampler"]["state"]["state"] > 2**64


def test_model_and_checkpoint_files_are_not_mistaken_for_each_other(tmp_path):
    trainer = make_trainer(iters=2)
    checkpoint = save_checkpoint(tmp_path / "run.ckpt", trainer)
    model = save(trainer.network, tmp_path / "model.npz")
    with pytest.raises(ValueError, match="not a dlscratch-model file: its format is 'dlscratch-checkpoint'"):
        load(checkpoint)
    with pytest.raises(ValueError, match="not a dlscratch-checkpoint file: its format is 'dlscratch-model'"):
        load_checkpoint(model)


@pytest.mark.parametrize(("every", "expected"), [(None, [3, 6, 9, 10]), (4, [3, 4, 6, 8, 9, 10])])
def test_callback_saves_each_epoch_every_n_and_after_the_last(tmp_path, monkeypatch, every, expected):
    """20 samples in batches of 7: epochs end inside iterations 3, 6 and 9."""
    saved_at = []
    monkeypatch.setattr(
        checkpoint_module,
        "save_checkpoint",
        lambda path, trainer, extra: saved_at.append(trainer.current_iter),
    )
    make_trainer(iters=10, callbacks=[checkpoint_callback(tmp_path / "run.ckpt", every=every)]).train()
    assert saved_at == expected


def test_callback_replaces_one_file_atomically(tmp_path):
    path = tmp_path / "run.ckpt"
    trainer = make_trainer(iters=10, callbacks=[checkpoint_callback(path, every=3, extra={"run": 1})])
    trainer.train()
    assert os.listdir(tmp_path) == ["run.ckpt"]  # no temporary files, no numbered copies
    checkpoint = load_checkpoint(path)
    assert checkpoint["trainer"]["current_iter"] == 10 and checkpoint["extra"] == {"run": 1}


@pytest.mark.parametrize("every", [0, -3, 1.5, True, "5"])
def test_callback_refuses_a_bad_interval(tmp_path, every):
    with pytest.raises(ValueError, match="every must be a positive int"):
        checkpoint_callback(tmp_path / "run.ckpt", every)


def test_extra_must_be_json(tmp_path):
    with pytest.raises(ValueError, match="extra must be JSON data"):
        save_checkpoint(tmp_path / "run.ckpt", make_trainer(), extra={"x": {1, 2}})
    with pytest.raises(ValueError, match="extra must be JSON data"):
        checkpoint_callback(tmp_path / "run.ckpt", 5, extra=np.ones(2))
    assert os.listdir(tmp_path) == []


def test_trainer_with_an_unknown_rng_is_refused(tmp_path):
    trainer = make_trainer()
    trainer.rng = np.random.RandomState(0)
    with pytest.raises(ValueError, match="cannot save the state of a trainer whose rng is a RandomState"):
        save_checkpoint(tmp_path / "run.ckpt", trainer)


# ---------------------------------------------------------------- what restore refuses


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"network": TwoLayerNet(4, 7, 3, 0.5, seed=0)},
            "the network's hidden_size is 6 in the checkpoint, 7 here",
        ),
        (
            {"network": TwoLayerNet(4, 6, 3, 0.5, dtype=np.float32)},
            "the network's dtype is 'float64' in the ",
        ),
        (
            {"network": Sequential([Affine(np.ones((4, 3)), np.zeros(3))])},
            "the network is 'TwoLayerNet' in the checkpoint, 'Sequential' here",
        ),
        ({"optimizer": "Adam"}, "the optimizer is 'SGD' in the saved state, 'Adam' here"),
        ({"mini_batch_size": 5}, "batch_size is 7 in the saved state, 5 here"),
        ({"sampling": "shuffle"}, "sampling is 'replacement' in the saved state, 'shuffle' here"),
        (
            {"seed": None},
            r"'a PCG64 generator \(an int seed\)' in the saved state, \"np.random's global state",
        ),
        ({"seed": np.random.Generator(np.random.MT19937(0))}, "'a MT19937 generator"),
    ],
    ids=["network", "dtype", "class", "optimizer", "batch size", "sampling", "unseeded", "bit generator"],
)
def test_restore_refuses_a_different_trainer_and_leaves_it_untouched(tmp_path, kwargs, match):
    trained = make_trainer(iters=4)
    trained.train()
    path = save_checkpoint(tmp_path / "run.ckpt", trained)
    other = make_trainer(**kwargs)
    params = {name: array.copy() for name, array in other.network.params.items()}
    with pytest.raises(ValueError, match=match):
        restore_checkpoint(path, other)
    assert_same_arrays(other.network.params, params)
    assert other.current_iter == 0 and other.history.train_loss == []


def tamper_with(meta: dict, arrays: dict, keys: tuple, value: Any) -> None:
    if keys[0] == "arrays":
        arrays[keys[1]] = value
        set_in(meta, ("arrays", keys[1]), {"shape": list(value.shape), "dtype": value.dtype.name})
    else:
        set_in(meta, keys, value)


def nan_like(name: str, shape: tuple[int, ...]) -> np.ndarray:
    array = np.zeros(shape)
    array.flat[1] = np.nan
    return array


# a run of 3 iterations of 7 samples out of 20: evaluations at iterations 0 and 3
TAMPERINGS = {
    "optimizer type": (("trainer", "optimizer", "type"), "Popen", "unknown optimizer 'Popen'"),
    "base optimizer": (("trainer", "optimizer", "type"), "Optimizer", "unknown optimizer 'Optimizer'"),
    "learning rate": (
        ("trainer", "optimizer", "hyperparameters", "lr"),
        -1.0,
        "cannot rebuild the Adam optimizer",
    ),
    "learning rate inf": (("trainer", "optimizer", "hyperparameters", "lr"), float("inf"), "finite number"),
    "hyperparameter": (
        ("trainer", "optimizer", "hyperparameters", "update"),
        1.0,
        "unexpected keyword argument 'update'",
    ),
    "step count": (("trainer", "optimizer", "step_count"), -2, "step_count must be the run's 3 iterations"),
    "slot shape": (
        ("arrays", "trainer/optimizer/slots/m/W1"),
        np.zeros((2, 2)),
        r"slot m/W1 is float64\(2, 2\)",
    ),
    "slot NaN": (("arrays", "trainer/optimizer/slots/m/W1"), nan_like("m", (4, 6)), "slot m/W1 holds NaN"),
    "negative second moment": (
        ("arrays", "trainer/optimizer/slots/v/W1"),
        -np.ones((4, 6)),
        "impossible for a sum of squares",
    ),
    "slot of no parameter": (
        ("trainer", "optimizer", "slots", "m", "W9"),
        {"__array__": "trainer/optimizer/slots/m/W1"},
        "refers to an array it does not hold",
    ),
    "dangling reference": (
        ("trainer", "optimizer", "slots", "m", "W1"),
        {"__array__": "nowhere"},
        "'nowhere'",
    ),
    "unreferenced array": (
        ("arrays", "optimizer/spare"),
        np.ones(2),
        r"nothing in the record refers to: \['optimizer/spare'\]",
    ),
    "weights NaN": (("arrays", "params/W1"), nan_like("W1", (4, 6)), "params/W1 holds NaN"),
    "bit generator": (
        ("trainer", "sampler", "bit_generator"),
        "os.system",
        "unknown bit generator 'os.system'",
    ),
    "generator state": (
        ("trainer", "sampler", "state"),
        {"state": "x"},
        "a PCG64 generator state that NumPy refuses",
    ),
    "sampler edited": (
        ("trainer", "sampler", "state", "state"),
        12345,
        "the batch sampler is not where seed 5",
    ),
    "seed edited": (("trainer", "seed"), 6, "the batch sampler is not where seed 6"),
    "layer generator": (
        ("rng", "layers", "Dropout1/_rng"),
        {"bit_generator": "eval"},
        "unknown bit generator 'eval'",
    ),
    "global state": (("rng", "global", "state", "pos"), "x", "damaged file"),
    "no global state": (
        ("rng", "global"),
        None,
        r"nothing in the record refers to: \['rng/global/state/key'\]",
    ),
    "sampling": (("trainer", "sampling"), "sideways", "sampling 'sideways' is not one of"),
    "batch size zero": (("trainer", "batch_size"), 0, "'batch_size' between 1 and 20"),
    "batch larger than the data": (("trainer", "batch_size"), 21, "'batch_size' between 1 and 20"),
    "current_iter moved back": (
        ("trainer", "current_iter"),
        1,
        "records 3 losses but the run is at iteration 1",
    ),
    "current_iter past the end": (("trainer", "current_iter"), 30, "'current_iter' between 0 and 3"),
    "current_iter as text": (("trainer", "current_iter"), "3", "'current_iter' as int"),
    "max_iter": (("trainer", "max_iter"), 2**70, "'max_iter' between 1 and"),
    "missing counter": (("trainer", "train_size"), None, "'train_size' as int"),
    "order": (
        ("arrays", "trainer/order"),
        np.arange(20)[::-1] % 7,
        "not a permutation of the 20 training samples",
    ),
    "order dtype": (("arrays", "trainer/order"), np.ones(20), "1-D integer array"),
    "order missing mid-epoch": (("arrays", "trainer/order"), np.arange(0), "its order is missing"),
    "history": (
        ("trainer", "history", "train_loss"),
        ["nan"],
        r"history.train_loss must hold finite numbers",
    ),
    "history loss NaN": (("trainer", "history", "train_loss"), [0.5, float("nan"), 1.0], "finite numbers"),
    "history shorter": (
        ("trainer", "history", "train_loss"),
        [0.5],
        "records 1 losses but the run is at iteration 3",
    ),
    "history fields": (("trainer", "history", "colour"), [], "exactly the fields"),
    "history epochs": (("trainer", "history", "epochs"), [0, 9], "do not follow from its iterations"),
    "history iterations": (("trainer", "history", "iterations"), [0, 4], "rise from 0 to at most 3"),
    "history accuracy": (("trainer", "history", "test_acc"), [0.1, 1.5], "between 0 and 1"),
    "history lengths": (("trainer", "history", "train_acc"), [0.1], "of one length"),
    "test accuracies": (("trainer", "history", "test_acc"), [0.1], "test_acc must hold 2 accuracies"),
    "validation accuracies": (("trainer", "history", "val_acc"), [0.1, 0.2], "val_acc must hold 0"),
    "schedule": (("trainer", "lr_schedule"), {"name": "Exponential"}, "unknown learning-rate schedule"),
    "augmentation": (("trainer", "augmentation"), {"config": {"name": "Rotate"}}, "unknown augmentation"),
    "early stopping without validation": (
        ("trainer", "early_stopping"),
        {"patience": 2},
        "early stopping state is there but the run has no validation set",
    ),
    "history seconds": (("trainer", "history", "seconds"), -1.0, "seconds must be a number >= 0"),
    "no trainer": (("trainer",), None, "needs 'trainer' as dict"),
    "threads": (("trainer", "threads"), 0, "'threads' between 1 and"),
}


def dropout_checkpoint(tmp_path: Path) -> Path:
    trainer = seeded_dropout_trainer(iters=3)
    trainer.train()
    return save_checkpoint(tmp_path / "good.ckpt", trainer)


def plain_checkpoint(tmp_path: Path) -> Path:
    trainer = make_trainer(optimizer="Adam", sampling="shuffle", iters=3)
    trainer.train()
    return save_checkpoint(tmp_path / "good.ckpt", trainer)


@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_tampered_checkpoint_is_refused(tmp_path, tamper):
    keys, value, match = tamper
    good = dropout_checkpoint(tmp_path) if keys[:2] == ("rng", "layers") else plain_checkpoint(tmp_path)
    meta, arrays = model_parts(good)
    tamper_with(meta, arrays, keys, value)
    path = raw_archive(tmp_path / "tampered.ckpt", meta, arrays)
    with pytest.raises(ValueError, match=match) as refused:
        load_checkpoint(path)
    assert str(path) in str(refused.value)


def test_the_tampering_base_loads(tmp_path):
    """The tamperings above start from checkpoints that load, so each refusal is the tampering's."""
    for good in (plain_checkpoint(tmp_path), dropout_checkpoint(tmp_path)):
        meta, arrays = model_parts(good)
        assert (
            load_checkpoint(raw_archive(tmp_path / "copy.ckpt", meta, arrays))["trainer"]["current_iter"] == 3
        )


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_checkpoint_is_refused_by_name(tmp_path, version):
    meta, arrays = model_parts(plain_checkpoint(tmp_path))
    meta["version"] = version
    with pytest.raises(
        ValueError, match=f"dlscratch-checkpoint version {version} is not the version this dlscratch reads, 3"
    ):
        load_checkpoint(raw_archive(tmp_path / "old.ckpt", meta, arrays))


# ------------------------------------------------------------- validation, stopping, schedules, augmenting


def featured_trainer(
    patience: int = 100, min_delta: float = 0.0, aug_seed: int = 1, **kwargs: Any
) -> Trainer:
    """Every extra at once: a validation split, early stopping, a cosine schedule, shifts and
    flips of the 2x2 "images" the 4 features make. 14 training samples, 2 steps an epoch."""
    shape = (1, 2, 2)
    augment = Compose(
        [RandomShift(1, image_shape=shape, seed=aug_seed), RandomFlip(image_shape=shape, seed=aug_seed + 1)]
    )
    return make_trainer(optimizer="Adam", sampling="shuffle", validation=0.3,
                        early_stopping=EarlyStopping(patience, min_delta), lr_schedule=CosineDecay(12),
                        augment=augment, **kwargs)  # fmt: skip


def test_a_run_with_every_extra_resumes_bit_for_bit(tmp_path):
    straight = featured_trainer()
    straight.train()
    path = tmp_path / "run.ckpt"
    crashed = featured_trainer(callbacks=[checkpoint_callback(path, every=STOP), interrupt_at(STOP)])
    with pytest.raises(SimulatedCrashError):
        crashed.train()
    resumed = featured_trainer(aug_seed=77)  # other generators: the checkpoint must set them
    restore_checkpoint(path, resumed)
    resumed.train()
    assert_same_run(resumed, straight)
    assert resumed.history.val_acc == straight.history.val_acc and len(straight.history.val_acc) == 16
    ours, theirs = resumed.early_stopping.state_dict(), straight.early_stopping.state_dict()
    assert_same_arrays(ours.pop("best"), theirs.pop("best"))
    assert (
        ours == theirs and 0 < ours["best_iteration"] < ITERS
    )  # the weights kept are neither first nor last
    for a, b in zip(resumed.augment.augmentations, straight.augment.augmentations, strict=True):
        assert a.rng.bit_generator.state == b.rng.bit_generator.state


def test_early_stopping_resumed_stops_where_the_unbroken_run_stops(tmp_path):
    straight = featured_trainer(patience=4, min_delta=1.0)  # no evaluation improves by 1
    straight.train()
    assert straight.stopped_early and straight.current_iter == 8 and straight.history.iterations[-1] == 8
    path = tmp_path / "run.ckpt"
    crashed = featured_trainer(
        patience=4, min_delta=1.0, callbacks=[checkpoint_callback(path), interrupt_at(5)]
    )
    with pytest.raises(SimulatedCrashError):
        crashed.train()
    assert load_checkpoint(path)["trainer"]["early_stopping"]["wait"] == 2  # saved after epoch 2
    resumed = featured_trainer(patience=4, min_delta=1.0, callbacks=[checkpoint_callback(path)])
    restore_checkpoint(path, resumed)
    resumed.train()
    assert resumed.stopped_early and resumed.current_iter == 8
    assert load_checkpoint(path)["finished"]  # the callback saved the stop


def featured_checkpoint(tmp_path: Path) -> Path:
    trainer = featured_trainer(iters=5)
    trainer.train()
    return save_checkpoint(tmp_path / "featured.ckpt", trainer)


FEATURE_TAMPERINGS = {
    "wait": (("trainer", "early_stopping", "wait"), 0, "wait must count the evaluations after the best one"),
    "best iteration": (
        ("trainer", "early_stopping", "best_iteration"),
        3,
        "the best iteration 3 is no evaluation",
    ),
    "best accuracy": (
        ("trainer", "early_stopping", "best_acc"),
        0.123,
        "best_acc is not the validation accuracy",
    ),
    "patience": (("trainer", "early_stopping", "patience"), 0, "'patience' between 1 and"),
    "best weights": (
        ("arrays", "trainer/early_stopping/best/W1"),
        np.zeros((3, 3)),
        "the best weights do not fit the network: W1 is float64(3, 3), the network's float64(4, 6)",
    ),
    "generators": (("trainer", "augmentation", "generators"), [], "0 generator states for 2 augmentations"),
    "generator state": (
        ("trainer", "augmentation", "generators", 0, "bit_generator"),
        "Lottery",
        "unknown bit generator 'Lottery'",
    ),
    "augmentation": (("trainer", "augmentation", "config", "augmentations", 0, "max_shift"), -1, "max_shift"),
    "schedule": (("trainer", "lr_schedule", "total_epochs"), -2, "total_epochs must be > 0"),
    "validation accuracies": (("trainer", "history", "val_acc"), [0.5], "val_acc must hold 4 accuracies"),
    "no validation": (("trainer", "validation_size"), 0, "history.val_acc must hold 0 accuracies"),
    "early stopping without validation": (
        ("trainer", "history", "val_acc"),
        [],
        "history.val_acc must hold 4 accuracies",
    ),
}


@pytest.mark.parametrize("tamper", FEATURE_TAMPERINGS.values(), ids=FEATURE_TAMPERINGS.keys())
def test_tampered_extras_are_refused(tmp_path, tamper):
    keys, value, match = tamper
    meta, arrays = model_parts(featured_checkpoint(tmp_path))
    tamper_with(meta, arrays, keys, value)
    with pytest.raises(ValueError, match=re.escape(match)):
        load_checkpoint(raw_archive(tmp_path / "tampered.ckpt", meta, arrays))


def test_the_featured_checkpoint_loads_untampered(tmp_path):
    meta, arrays = model_parts(featured_checkpoint(tmp_path))
    checkpoint = load_checkpoint(raw_archive(tmp_path / "copy.ckpt", meta, arrays))
    assert checkpoint["trainer"]["validation_size"] == 6 and checkpoint["finished"]
    assert checkpoint["trainer"]["lr_schedule"] == CosineDecay(12)


def test_a_trainer_with_other_extras_cannot_continue(tmp_path):
    path = featured_checkpoint(tmp_path)
    for other, message in [
        (featured_trainer(patience=7), "early stopping is {'patience': 100"),
        (
            make_trainer(optimizer="Adam", sampling="shuffle"),
            "validation_size is 6 in the saved state, 0 here",
        ),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            restore_checkpoint(path, other)


# ---------------------------------------------------------------- continuing elsewhere


def restored_with(tmp_path: Path, keys: tuple, value: Any, trainer: Trainer) -> None:
    """restore_checkpoint of a 3-iteration Adam run, the record edited at keys, into trainer."""
    meta, arrays = model_parts(plain_checkpoint(tmp_path))
    set_in(meta, keys, value)
    restore_checkpoint(raw_archive(tmp_path / "edited.ckpt", meta, arrays), trainer)


def test_restore_refuses_an_edited_learning_rate(tmp_path):
    trainer = make_trainer(optimizer="Adam", sampling="shuffle")
    with pytest.raises(ValueError, match=r"the optimizer's lr is 0\.5 in the saved state, 0\.01 here"):
        restored_with(tmp_path, ("trainer", "optimizer", "hyperparameters", "lr"), 0.5, trainer)
    assert trainer.current_iter == 0


def test_restore_refuses_other_data(tmp_path):
    path = plain_checkpoint(tmp_path)
    x, t, x_test, t_test = tiny_data()
    x = x.copy()
    x[0, 0] += 1  # one value of one sample: another data set
    trainer = Trainer(
        TwoLayerNet(4, 6, 3, weight_init_std=0.5, seed=0), x, t, x_test, t_test,
        mini_batch_size=7, iters=ITERS, optimizer="Adam", optimizer_param=OPTIMIZERS["Adam"],
        verbose=False, sampling="shuffle", seed=5,
    )  # fmt: skip
    with pytest.raises(
        ValueError, match=r"the training and test data \(fingerprint\) is '[0-9a-f]+' in the saved"
    ):
        restore_checkpoint(path, trainer)
    assert trainer.current_iter == 0


def test_restore_under_another_numpy_warns(tmp_path):
    trainer = make_trainer(optimizer="Adam", sampling="shuffle")
    with pytest.warns(ResumeWarning, match="used NumPy 1.0.0, here .* may differ .* in the last bits"):
        restored_with(tmp_path, ("trainer", "numpy"), "1.0.0", trainer)
    assert trainer.current_iter == 3


def test_restore_on_another_thread_count_is_silent(tmp_path, recwarn):
    """The kernels give the same bits on any number of threads: nothing to warn about."""
    trainer = make_trainer(optimizer="Adam", sampling="shuffle")
    restored_with(tmp_path, ("trainer", "threads"), 64, trainer)
    assert trainer.current_iter == 3 and not [w for w in recwarn if issubclass(w.category, ResumeWarning)]


def test_state_dict_round_trip_continues_the_run():
    """Trainer.state_dict()/load_state_dict() alone (no file) continue a run as a checkpoint does."""
    straight = make_trainer(optimizer="Adam", sampling="shuffle")
    straight.train()
    first = make_trainer(optimizer="Adam", sampling="shuffle", callbacks=[interrupt_at(STOP)])
    with pytest.raises(SimulatedCrashError):
        first.train()
    second = make_trainer(optimizer="Adam", sampling="shuffle", network=TwoLayerNet(4, 6, 3, 0.5, seed=9))
    for key, array in first.network.params.items():
        second.network.params[key][...] = array
    second.load_state_dict(first.state_dict())
    second.train()
    assert_same_run(second, straight)


def test_a_resumed_run_checkpoints_with_the_seed_it_was_started_with(tmp_path):
    """The sampler replay of a later checkpoint uses the original run's seed, not the one the
    trainer it was restored into was built with."""
    path = plain_checkpoint(tmp_path)
    resumed = make_trainer(optimizer="Adam", sampling="shuffle", seed=999, iters=8)
    restore_checkpoint(path, resumed)
    resumed.train()
    assert load_checkpoint(save_checkpoint(tmp_path / "later.ckpt", resumed))["trainer"]["seed"] == 5


@pytest.mark.parametrize("sampling", SAMPLING_MODES)
def test_an_edited_sampler_is_refused_for_either_sampling(tmp_path, sampling):
    trainer = make_trainer(sampling=sampling, iters=4)
    trainer.train()
    meta, arrays = model_parts(save_checkpoint(tmp_path / "good.ckpt", trainer))
    meta["trainer"]["sampler"]["state"]["inc"] += 2
    with pytest.raises(ValueError, match="the batch sampler is not where seed 5 puts it after 4 batches"):
        load_checkpoint(raw_archive(tmp_path / "edited.ckpt", meta, arrays))


def test_peak_memory_of_a_checkpoint_asking_for_a_huge_network(tmp_path):
    meta, arrays = model_parts(plain_checkpoint(tmp_path))
    meta["network"]["config"]["hidden_size"] = 10**9
    path = raw_archive(tmp_path / "huge.ckpt", meta, arrays)
    assert_refused_within_memory("dlscratch.checkpoint:load_checkpoint", path)
