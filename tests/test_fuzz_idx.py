"""Fuzzing read_idx: whatever the bytes, it returns an array or raises ValueError, and it
never allocates from a header's claims before checking them against the file."""

import gzip
import math
import struct
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlscratch.datasets import read_idx, write_idx
from dlscratch.datasets.idx import IDX_DTYPES, MAX_NDIM

# Example counts come from the Hypothesis profile (tests/conftest.py: DLSCRATCH_FUZZ_PROFILE).


@pytest.fixture
def scratch(tmp_path):
    """One file path, rewritten by every example."""
    return tmp_path / "fuzz.idx"


def _load_or_valueerror(path):
    """read_idx's whole contract: an ndarray or a ValueError naming the file."""
    try:
        return read_idx(path)
    except ValueError as e:
        assert str(path) in str(e)
        return None


@given(data=st.binary(max_size=300), gzip_magic=st.booleans())
def test_random_bytes(scratch, data, gzip_magic):
    # Half the inputs start like gzip, so the gzip branch gets fuzzed too.
    scratch.write_bytes(b"\x1f\x8b" + data if gzip_magic else data)
    _load_or_valueerror(scratch)


@given(data=st.binary(max_size=300))
def test_random_gzip_payload(scratch, data):
    scratch.write_bytes(gzip.compress(data))
    _load_or_valueerror(scratch)


@given(
    code=st.sampled_from([*IDX_DTYPES, 0x00, 0x07, 0x0A, 0xFF]),
    dims=st.lists(st.integers(0, 6), max_size=MAX_NDIM + 2),
    extra=st.integers(-3, 3),
    compress=st.booleans(),
)
def test_random_headers(scratch, code, dims, extra, compress):
    """A header over some payload: loads exactly when type, ndim and size all agree."""
    itemsize = IDX_DTYPES[code].itemsize if code in IDX_DTYPES else 1
    payload = bytes(max(0, math.prod(dims) * itemsize + extra))
    raw = struct.pack(f">2xBB{len(dims)}I", code, len(dims), *dims) + payload
    scratch.write_bytes(gzip.compress(raw) if compress else raw)
    valid = code in IDX_DTYPES and 1 <= len(dims) <= MAX_NDIM and len(payload) == math.prod(dims) * itemsize
    array = _load_or_valueerror(scratch)
    assert (array is not None) == valid
    if valid:
        assert array.shape == tuple(dims) and array.dtype == IDX_DTYPES[code].newbyteorder("=")


@given(
    dims=st.lists(st.integers(2**20, 2**32 - 1), min_size=1, max_size=MAX_NDIM),
    code=st.sampled_from(list(IDX_DTYPES)),
    payload=st.integers(0, 1000),
    compress=st.booleans(),
)
def test_huge_declared_size_fails_without_allocating(scratch, dims, code, payload, compress):
    raw = struct.pack(f">2xBB{len(dims)}I", code, len(dims), *dims) + bytes(payload)
    scratch.write_bytes(gzip.compress(raw) if compress else raw)
    file_size = scratch.stat().st_size
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"expected \d+ bytes of data, found \d+ \(file truncated"):
            read_idx(scratch)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * file_size + 2**20


@pytest.fixture(scope="module")
def small_file_bytes(tmp_path_factory):
    """A valid int32 (3, 4) IDX file: plain bytes and gzip bytes."""
    path = tmp_path_factory.mktemp("valid") / "small.idx"
    write_idx(path, np.arange(12, dtype=np.int32).reshape(3, 4))
    plain = path.read_bytes()
    return plain, gzip.compress(plain, mtime=0)


@pytest.mark.parametrize("kind", ["plain", "gzip"])
def test_truncated_at_every_offset(scratch, small_file_bytes, kind):
    plain, packed = small_file_bytes
    data = plain if kind == "plain" else packed
    scratch.write_bytes(data)
    assert read_idx(scratch).tolist() == np.arange(12).reshape(3, 4).tolist()
    for cut in range(len(data)):
        scratch.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=str(scratch)):
            read_idx(scratch)


def test_decompressed_data_truncated_at_every_offset(scratch, small_file_bytes):
    """Complete gzip streams of a cut IDX file: the IDX check, not gzip's, catches these."""
    plain, _ = small_file_bytes
    for cut in range(len(plain)):
        scratch.write_bytes(gzip.compress(plain[:cut]))
        with pytest.raises(ValueError, match=str(scratch)):
            read_idx(scratch)
