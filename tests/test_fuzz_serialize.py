"""Fuzzing load() and load_checkpoint(): whatever the bytes, they return or raise ValueError,
never anything else (no BadZipFile, KeyError, MemoryError, ... and no hang), and never
allocate from what a file claims.

Example counts come from the Hypothesis profile (tests/conftest.py): a quick run by
default, DLSCRATCH_FUZZ_PROFILE=thorough for 20,000 examples per test. The strategies reach
what a careless fuzzer avoids: integers of every size in the record (a network's sizes are
built within the file's budget, so 10**7 is refused as cheaply as 10**12), members that
overlap or run past the file, and edited checkpoint counters.
"""

from __future__ import annotations

import copy
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_serialize import model_parts, raw_archive, set_in

from dlscratch.checkpoint import load_checkpoint, restore_checkpoint, save_checkpoint
from dlscratch.nets import Sequential, TwoLayerNet
from dlscratch.serialize import load, save
from dlscratch.train import Trainer


@pytest.fixture(scope="module")
def good_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny but complete model file: every offset of it can be tried."""
    return save(TwoLayerNet(2, 3, 2, seed=0), tmp_path_factory.mktemp("fuzz") / "good.npz")


def loads_or_refuses(path: Path) -> None:
    try:
        network = load(path)
    except ValueError as error:
        assert str(path) in str(error)
    else:
        assert isinstance(network, Sequential)


@given(data=st.binary(max_size=2048), zip_like=st.booleans())
def test_random_bytes(tmp_path, data, zip_like):
    path = tmp_path / "model.npz"
    # starting like a zip gets past the first check, into zipfile's parser
    path.write_bytes(b"PK\x03\x04" + data if zip_like else data)
    loads_or_refuses(path)


def test_every_truncation_is_refused(tmp_path, good_file):
    path = tmp_path / "model.npz"
    path.write_bytes(good_file.read_bytes())
    for end in reversed(range(path.stat().st_size)):
        os.truncate(path, end)  # in place: no rewriting of the file at each offset
        with pytest.raises(ValueError, match="cannot load"):
            load(path)


@given(
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8)
)
def test_mutated_bytes(tmp_path, good_file, edits):
    data = bytearray(good_file.read_bytes())
    for where, byte in edits:
        data[int(where * len(data))] = byte
    path = tmp_path / "model.npz"
    path.write_bytes(bytes(data))
    loads_or_refuses(path)


_CENTRAL = struct.Struct("<4s6H3L5H2L")


def directory_entries(data: bytes) -> list[int]:
    """Where each central directory entry of a zip starts."""
    starts, at = [], data.rfind(b"PK\x05\x06")
    at = struct.unpack_from("<L", data, at + 16)[0]  # the directory's offset
    while data[at : at + 4] == b"PK\x01\x02":
        starts.append(at)
        name, extra, comment = struct.unpack_from("<3H", data, at + 28)
        at += _CENTRAL.size + name + extra + comment
    return starts


# where a directory entry's fields sit: crc, compressed size, size, local header offset
_FIELDS = {"crc": 16, "compressed": 20, "size": 24, "offset": 42}


@given(
    edits=st.lists(
        st.tuples(
            st.integers(0, 10),
            st.sampled_from(sorted(_FIELDS)),
            st.one_of(st.integers(0, 2**32 - 1), st.sampled_from(["another member's", "shifted"])),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_directory(tmp_path, good_file, edits):
    """Members pointed at each other (overlapping), past the file, or given other sizes."""
    data = bytearray(good_file.read_bytes())
    entries = directory_entries(bytes(data))
    for index, name, value in edits:
        entry = entries[index % len(entries)]
        at = entry + _FIELDS[name]
        if value == "another member's":
            value = struct.unpack_from("<L", data, entries[(index + 1) % len(entries)] + _FIELDS[name])[0]
        elif value == "shifted":
            value = (struct.unpack_from("<L", data, at)[0] + 7) % 2**32
        struct.pack_into("<L", data, at, value)
    path = tmp_path / "model.npz"
    path.write_bytes(bytes(data))
    loads_or_refuses(path)


# Integers of every size: small, mid-sized (10**5 to 10**9 would have been allocated by a
# loader that built the network before checking it) and absurd.
INTEGERS = st.one_of(st.integers(-3, 8), st.integers(9, 10**9), st.sampled_from([10**12, 2**63, -(2**70)]))
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), INTEGERS, st.floats(), st.text(max_size=6)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
DTYPES = st.one_of(
    st.sampled_from(
        ["float64", "float32", "int64", "uint8", "bool", "object", "O", "|O", "<U3", "V8", "float128"]
    ),
    JSON,
)
SHAPES = st.one_of(st.lists(INTEGERS, max_size=4), JSON)
# places in the record (and one in the arrays) that a mutation may replace
PLACES = [
    ("format",),
    ("version",),
    ("network",),
    ("network", "class"),
    ("network", "config"),
    ("network", "config", "input_size"),
    ("network", "config", "hidden_size"),
    ("network", "config", "output_size"),
    ("network", "config", "weight_init_std"),
    ("network", "config", "dtype"),
    ("network", "dtype"),
    ("network", "param_layers"),
    ("network", "param_layers", "W1"),
    ("arrays",),
    ("arrays", "params/W1"),
    ("arrays", "params/b2", "shape"),
    ("arrays", "params/b2", "dtype"),
]
ARRAYS = st.sampled_from(
    [
        np.zeros((2, 3)),
        np.zeros((3, 2)),
        np.zeros(3, np.float32),
        np.zeros(2, np.int64),
        np.zeros(0),
        np.ones(()),
        np.full(3, np.nan),
    ]
)


@given(
    place=st.sampled_from(PLACES),
    value=JSON,
    shape=SHAPES,
    dtype=DTYPES,
    replaced=st.sampled_from([None, "params/W1", "params/b1", "surplus"]),
    array=ARRAYS,
)
def test_mutated_record(tmp_path, good_file, place, value, shape, dtype, replaced, array):
    meta, arrays = model_parts(good_file)
    meta = copy.deepcopy(meta)
    set_in(meta, place, value)
    if isinstance(meta.get("arrays"), dict):
        meta["arrays"]["params/W1"] = {"shape": shape, "dtype": dtype}
    if replaced is not None:
        arrays[replaced] = array
    loads_or_refuses(raw_archive(tmp_path / "model.npz", meta, arrays))


@given(meta=JSON)
def test_arbitrary_json_record(tmp_path, good_file, meta):
    loads_or_refuses(raw_archive(tmp_path / "model.npz", meta, model_parts(good_file)[1]))


def test_a_consistent_record_still_loads(tmp_path, good_file):
    """The mutations above start from a file that does load, so refusals are the mutations'."""
    meta, arrays = model_parts(good_file)
    network = load(raw_archive(tmp_path / "model.npz", meta, arrays))
    assert type(network) is TwoLayerNet
    np.testing.assert_array_equal(network.params["W1"], arrays["params/W1"])


# ---------------------------------------------------------------- checkpoints


def tiny_trainer(network: TwoLayerNet | None = None) -> Trainer:
    rng = np.random.default_rng(3)
    x, t = rng.standard_normal((13, 2)), rng.integers(0, 2, 13)
    network = network or TwoLayerNet(2, 3, 2, seed=0)
    return Trainer(network, x[:9], t[:9], x[9:], t[9:], mini_batch_size=4, iters=6, optimizer="Adam",
                   optimizer_param={"lr": 0.01}, verbose=False, sampling="shuffle", seed=1)  # fmt: skip


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint taken mid-epoch (5 batches of 4 out of 9 samples), Adam slots and all."""
    trainer = tiny_trainer()
    for _ in range(5):
        trainer.train_step()
    return save_checkpoint(tmp_path_factory.mktemp("fuzz") / "good.ckpt", trainer, extra={"run": 1})


CHECKPOINT_PLACES = [
    ("trainer", "current_iter"),
    ("trainer", "max_iter"),
    ("trainer", "batch_size"),
    ("trainer", "train_size"),
    ("trainer", "sampling"),
    ("trainer", "seed"),
    ("trainer", "sampler"),
    ("trainer", "sampler", "state", "state"),
    ("trainer", "input_scale"),
    ("trainer", "evaluation_samples"),
    ("trainer", "data"),
    ("trainer", "threads"),
    ("trainer", "history"),
    ("trainer", "history", "train_loss"),
    ("trainer", "history", "iterations"),
    ("trainer", "history", "epochs"),
    ("trainer", "history", "test_acc"),
    ("trainer", "history", "seconds"),
    ("trainer", "optimizer", "type"),
    ("trainer", "optimizer", "step_count"),
    ("trainer", "optimizer", "hyperparameters", "lr"),
    ("trainer", "optimizer", "hyperparameters", "beta1"),
    ("trainer", "optimizer", "slots"),
    ("trainer", "optimizer", "slots", "m"),
    ("trainer", "order"),
    ("rng", "layers"),
    ("rng", "global"),
    ("rng", "global", "state", "pos"),
    ("extra",),
]


@pytest.mark.filterwarnings("ignore::dlscratch.train.ResumeWarning")  # an edited NumPy version only warns
@given(place=st.sampled_from(CHECKPOINT_PLACES), value=JSON, restore=st.booleans())
def test_mutated_checkpoint(tmp_path, good_checkpoint, place, value, restore):
    """Any field of a checkpoint's record replaced: load_checkpoint and restore_checkpoint
    return or raise ValueError; a refused restore leaves the trainer untouched."""
    meta, arrays = model_parts(good_checkpoint)
    set_in(meta, place, value)
    path = raw_archive(tmp_path / "edited.ckpt", meta, arrays)
    trainer = tiny_trainer(TwoLayerNet(2, 3, 2, seed=7))
    before = {key: array.copy() for key, array in trainer.network.params.items()}
    try:
        restore_checkpoint(path, trainer) if restore else load_checkpoint(path)
    except ValueError as error:
        assert str(path) in str(error)
        assert trainer.current_iter == 0
        for key, array in before.items():
            assert np.array_equal(trainer.network.params[key], array)
