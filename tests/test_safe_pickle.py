"""load_pickle: the book's kind of pickle loads as pickle.load gives it; nothing else runs.

The honest files are built here the way the book's three pretrained files are (dicts of
NumPy arrays, written by old and new NumPy with several protocols); the book's files
themselves stay out of the repository. Every hostile file is one a naive pickle.load would
act on; the tests that it did nothing look for the marker file it would have written.
"""

from __future__ import annotations

import itertools
import os
import pickle
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from peak_memory import assert_refused_within_memory

from dlscratch.safe_pickle import load_pickle

_reconstruct = np._core.multiarray._reconstruct
_frombuffer = np._core.numeric._frombuffer


class Reduces:
    """Pickles as the call f(*args) (then BUILD with state, if given), whatever f is."""

    def __init__(self, f: Any, args: tuple, state: Any = None) -> None:
        self.f, self.args, self.state = f, args, state

    def __reduce__(self) -> tuple:
        return (self.f, self.args) if self.state is None else (self.f, self.args, self.state)


def write_marker(path: str) -> None:
    """What a hostile pickle makes pickle.load call: proof that code ran."""
    Path(path).write_text("ran")


def pickled(tmp_path: Path, value: Any, protocol: int = pickle.HIGHEST_PROTOCOL, **options: Any) -> Path:
    path = tmp_path / f"value-{protocol}.pkl"
    path.write_bytes(pickle.dumps(value, protocol=protocol, **options))
    return path


def written(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "hand-made.pkl"
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- the book's kind of file


def sample_weight_like(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """ch03's sample_weight.pkl: float32 weights of a 784-50-100-10 net, weights in Fortran order."""
    sizes = [784, 50, 100, 10]
    weights = {}
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes), start=1):
        weights[f"W{i}"] = np.asfortranarray(rng.standard_normal((n_in, n_out)).astype(np.float32))
        weights[f"b{i}"] = rng.standard_normal(n_out).astype(np.float32)
    return weights


def convnet_like(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """ch07's params.pkl: SimpleConvNet's float64 filters and weights."""
    shapes = {"W1": (30, 1, 5, 5), "b1": (30,), "W2": (4320, 100), "b2": (100,), "W3": (100, 10), "b3": (10,)}
    return {name: rng.standard_normal(shape) for name, shape in shapes.items()}


def deep_convnet_like(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """ch08's deep_convnet_params.pkl: 16 arrays, filters of four sizes, big-endian for good measure."""
    channels = [1, 16, 16, 32, 32, 64, 64]
    params: dict[str, np.ndarray] = {}
    for i in range(1, 7):
        params[f"W{i}"] = rng.standard_normal((channels[i], channels[i - 1], 3, 3))
        params[f"b{i}"] = np.zeros(channels[i])
    params["W7"], params["b7"] = rng.standard_normal((64 * 4 * 4, 50)).astype(">f8"), np.zeros(50)
    params["W8"], params["b8"] = rng.standard_normal((50, 10)), np.zeros(10)
    return params


BOOK_LIKE = {"sample_weight": sample_weight_like, "params": convnet_like, "deep_convnet": deep_convnet_like}


def assert_same(loaded: Any, expected: Any) -> None:
    """Equal values of equal types; arrays equal bit for bit, in dtype, shape and layout."""
    assert type(loaded) is type(expected), (type(loaded), type(expected))
    if isinstance(expected, np.ndarray):
        native = expected.dtype.newbyteorder("=")  # big-endian arrays come back native, as with NumPy
        assert (loaded.dtype, loaded.shape) == (native, expected.shape)
        assert loaded.tobytes("A") == expected.astype(native).tobytes("A")
        assert loaded.flags.f_contiguous == expected.flags.f_contiguous
        assert loaded.flags.writeable and loaded.flags.owndata
    elif isinstance(expected, dict):
        assert list(loaded) == list(expected)
        for key in expected:
            assert_same(loaded[key], expected[key])
    elif isinstance(expected, (list, tuple)):
        assert len(loaded) == len(expected)
        for mine, theirs in zip(loaded, expected, strict=True):
            assert_same(mine, theirs)
    else:
        assert loaded == expected or (loaded != loaded and expected != expected)  # NaN equals itself here


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("book_file", BOOK_LIKE)
def test_book_like_pickles_load_as_pickle_load_gives_them(tmp_path, rng, book_file, protocol):
    path = pickled(tmp_path, BOOK_LIKE[book_file](rng), protocol)
    assert_same(load_pickle(path), pickle.loads(path.read_bytes()))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_every_plain_kind_of_value_loads(tmp_path, protocol):
    value = {
        "numbers": [0, -1, 2**100, 0.1, float("inf"), float("nan"), 1 - 2j, True, False, None],
        "text": ("déjà", b"\x00\xff", b""),
        "scalars": [np.float32(1.5), np.int64(-3), np.bool_(True), np.complex128(1j), np.uint8(255)],
        "dtypes": [np.dtype(">i4"), np.dtype("f2"), np.dtype(bool)],
        "arrays": [
            np.zeros(()),
            np.zeros((0, 3)),
            np.arange(6, dtype=">u2").reshape(2, 3).T,
            np.ones(4, bool),
        ],
        "nested": {"a": [{"b": (1, [2])}]},
        7: "an int key",
    }
    assert_same(load_pickle(pickled(tmp_path, value, protocol)), value)


def test_shared_and_self_referencing_containers(tmp_path):
    shared = [np.arange(3.0)]
    cycle: list[Any] = [1]
    cycle.append(cycle)
    loaded = load_pickle(pickled(tmp_path, {"a": shared, "b": shared, "cycle": cycle}))
    assert loaded["a"] is loaded["b"] and isinstance(loaded["a"][0], np.ndarray)
    assert loaded["cycle"][1] is loaded["cycle"]


# ---------------------------------------------------------------- code never runs


def test_reduce_calling_os_system_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    evil = {"W1": np.zeros(2), "b1": Reduces(os.system, (f"echo ran > {marker}",))}
    path = pickled(tmp_path, evil)
    refused = rf"cannot load {re.escape(str(path))}: it names the global '(os|posix)\.system'"
    with pytest.raises(ValueError, match=refused):
        load_pickle(path)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_reduce_calling_any_function_is_refused_and_nothing_runs(tmp_path, protocol):
    marker = tmp_path / "ran"
    path = pickled(tmp_path, [np.ones(3), Reduces(write_marker, (str(marker),))], protocol)
    with pytest.raises(ValueError, match=r"names the global 'test_safe_pickle\.write_marker'"):
        load_pickle(path)
    assert not marker.exists()
    pickle.loads(path.read_bytes())  # the file is the real thing: pickle.load does run it
    assert marker.read_text() == "ran"


@pytest.mark.parametrize(
    "value, refused",
    [
        (Reduces(eval, ("1+1",)), r"the global '(__builtin__|builtins)\.eval'"),
        (Reduces(np.load, ("x.npy",)), r"the global 'numpy\.load'"),
        (Reduces(np.ndarray, ((10**12,),)), "not a readable pickle"),  # the class is no constructor here
        (np.array([1, "a"], dtype=object), "dtype 'O8'"),
        (np.zeros(2, dtype=[("a", "f8")]), "dtype 'V8'"),
        (np.zeros(2, dtype="M8[s]"), "dtype 'M8'"),
        (np.ma.masked_array([1.0, 2.0]), r"the global 'numpy\.ma"),
        (np.rec.array([(1.0,)], dtype=[("a", "f8")]), r"the global 'numpy\.rec\.recarray'"),
        (Reduces(bytes, (10**10,)), r"bytes\(10000000000,\)"),
        (
            Reduces(np.dtype, ("f8", False, True), (3, "<", None, ("a",), {"a": 1}, -1, -1, 0)),
            "structured",
        ),
        (
            Reduces(_reconstruct, (np.ndarray, (0,), b"b"), (1, (2,), np.dtype("O"), False, [1, 2])),
            "dtype 'O8'",
        ),
    ],
    ids=[
        "eval",
        "numpy.load",
        "ndarray()",
        "object",
        "structured",
        "datetime",
        "masked",
        "recarray",
        "bytes(n)",
        "dtype-fields",
        "object-state",
    ],
)
def test_what_is_not_plain_data_is_refused_by_name(tmp_path, value, refused):
    path = pickled(tmp_path, {"W1": value}, protocol=2)
    with pytest.raises(ValueError, match=refused):
        load_pickle(path)


def test_out_of_band_buffers_are_refused(tmp_path):
    buffers: list[pickle.PickleBuffer] = []
    path = pickled(tmp_path, np.arange(4.0), 5, buffer_callback=buffers.append)
    with pytest.raises(ValueError, match="NEXT_BUFFER"):
        load_pickle(path)


# ---------------------------------------------------------------- nothing allocated from claims


HUGE_SHAPES = {
    "reconstruct": Reduces(
        _reconstruct, (np.ndarray, (0,), b"b"), (1, (10**6, 10**6), np.dtype("f8"), False, b"\0" * 8)
    ),
    "frombuffer": Reduces(_frombuffer, (bytes(8), np.dtype("f8"), (10**12,), "C")),
    "scalar": Reduces(np._core.multiarray.scalar, (np.dtype("f8"), b"\0" * 7)),
    "negative": Reduces(_frombuffer, (bytes(8), np.dtype("f8"), (-1, -1), "C")),
}


@pytest.mark.parametrize("value", HUGE_SHAPES.values(), ids=HUGE_SHAPES)
def test_a_shape_the_data_does_not_fill_is_refused(tmp_path, value):
    with pytest.raises(ValueError, match="not a readable pickle"):
        load_pickle(pickled(tmp_path, [value], protocol=4))


def memo_bomb() -> list[Reduces]:
    """1000 arrays from one memoized 80 kB buffer: an 80 kB file asking for 80 MB."""
    raw = bytes(80_000)
    return [Reduces(_frombuffer, (raw, np.dtype("f8"), (10_000,), "C")) for _ in range(1000)]


OPCODE_BOMBS = {
    # CPython sizes (and clears) the memo by the largest index it is given: 2**28 is 2 GB
    "memo index": b"\x80\x02Nr\xff\xff\xff\x0f.",
    # and allocates a declared length before reading it
    "bytes8 length": b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"abc.",
    "bytearray8 length": b"\x80\x05\x96" + struct.pack("<Q", 2**40) + b".",
    "unicode8 length": b"\x80\x04\x8d" + struct.pack("<Q", 2**40) + b"abc.",
    "frame length": b"\x80\x04\x95" + struct.pack("<Q", 2**40) + b"N.",
    "long digits": b"L" + b"9" * 100_000 + b"L\n.",
    "deep nesting": b"\x80\x02" + b"]" * 200_000 + b"a" * 199_999 + b".",
}


@pytest.mark.parametrize("data", OPCODE_BOMBS.values(), ids=OPCODE_BOMBS)
def test_instructions_that_would_allocate_from_claims_are_refused(tmp_path, data):
    with pytest.raises(ValueError, match="cannot load"):
        load_pickle(written(tmp_path, data))


def test_one_buffer_cannot_become_many_arrays(tmp_path):
    with pytest.raises(ValueError, match="larger than the file"):
        load_pickle(pickled(tmp_path, memo_bomb()))


@pytest.mark.parametrize(
    "make",
    [
        *(lambda tmp_path, data=data: written(tmp_path, data) for data in OPCODE_BOMBS.values()),
        lambda tmp_path: pickled(tmp_path, memo_bomb()),
        *(lambda tmp_path, value=value: pickled(tmp_path, [value]) for value in HUGE_SHAPES.values()),
    ],
    ids=[*OPCODE_BOMBS, "memo bomb", *HUGE_SHAPES],
)
def test_peak_memory_of_a_hostile_pickle_stays_near_its_size(tmp_path, make):
    assert_refused_within_memory("dlscratch.safe_pickle:load_pickle", make(tmp_path))


# ---------------------------------------------------------------- damaged files


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_every_truncation_is_refused(tmp_path, rng, protocol):
    data = pickle.dumps({"W1": rng.standard_normal((2, 3)), "b1": np.zeros(3, np.float32)}, protocol=protocol)
    for end in range(len(data)):
        with pytest.raises(ValueError, match="cannot load"):
            load_pickle(written(tmp_path, data[:end]))


def test_trailing_bytes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="follow the end"):
        load_pickle(written(tmp_path, pickle.dumps([1]) + b"junk"))


def test_a_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_pickle(tmp_path / "absent.pkl")


def loads_or_refuses(path: Path) -> None:
    """load_pickle's whole contract: plain data, or a ValueError naming the file."""
    try:
        load_pickle(path)
    except ValueError as error:
        assert str(path) in str(error)


@given(data=st.binary(max_size=512), protocol=st.sampled_from([b"", b"\x80\x02", b"\x80\x04", b"\x80\x05"]))
def test_random_bytes(tmp_path, data, protocol):
    loads_or_refuses(written(tmp_path, protocol + data))


HONEST = pickle.dumps(
    {"W1": np.arange(6, dtype=np.float32).reshape(2, 3), "b": [np.float64(1), (2, "x")], "n": None},
    protocol=2,
)


@given(
    edits=st.lists(st.tuples(st.integers(0, len(HONEST) - 1), st.integers(0, 255)), min_size=1, max_size=6)
)
def test_mutated_bytes(tmp_path, edits):
    data = bytearray(HONEST)
    for where, byte in edits:
        data[where] = byte
    loads_or_refuses(written(tmp_path, bytes(data)))
