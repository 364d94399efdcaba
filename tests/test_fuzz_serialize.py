"""Fuzzing load(): whatever the bytes, it returns a network or raises ValueError, never
anything else (no BadZipFile, KeyError, MemoryError, ... and no hang)."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_serialize import model_parts, raw_archive, set_in

from dlscratch.nets import Sequential, TwoLayerNet
from dlscratch.serialize import load, save

# every example overwrites one file in the test's tmp_path, so sharing that fixture is fine
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


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


@FUZZ
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


@FUZZ
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


# Integers are small or absurd, never in between: a record may ask a named network's
# constructor for any size, and 10**9 floats would be honestly allocated before the
# shape check refuses them (see dlscratch.serialize's notes); 10**12 fails at once.
INTEGERS = st.one_of(st.integers(-3, 8), st.sampled_from([10**12, 2**63, -(2**70)]))
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
    ]
)


@FUZZ
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


@FUZZ
@given(meta=JSON)
def test_arbitrary_json_record(tmp_path, good_file, meta):
    loads_or_refuses(raw_archive(tmp_path / "model.npz", meta, model_parts(good_file)[1]))


def test_a_consistent_record_still_loads(tmp_path, good_file):
    """The mutations above start from a file that does load, so refusals are the mutations'."""
    meta, arrays = model_parts(good_file)
    network = load(raw_archive(tmp_path / "model.npz", meta, arrays))
    assert type(network) is TwoLayerNet
    np.testing.assert_array_equal(network.params["W1"], arrays["params/W1"])
