"""The IDX reader: valid files of every type round-trip; every broken file is a ValueError
naming the file and saying what was expected and what was found."""

import gzip
import re
import struct

import numpy as np
import pytest

from dlscratch.datasets import load_idx_dataset, read_idx, write_idx
from dlscratch.datasets.idx import IDX_DTYPES


def _header(code: int, *dims: int) -> bytes:
    return struct.pack(f">2xBB{len(dims)}I", code, len(dims), *dims)


def _write(path, raw: bytes):
    """Write ``raw`` IDX bytes to ``path``, gzip-compressed when the name ends in .gz."""
    path.write_bytes(gzip.compress(raw, mtime=0) if path.suffix == ".gz" else raw)
    return path


def _raises(path, message: str):
    """pytest.raises for a ValueError that names ``path`` and then says ``message``."""
    return pytest.raises(ValueError, match=re.escape(f"{path}: ") + message)


@pytest.fixture(params=["data.idx", "data.idx.gz"])
def path(request, tmp_path):
    """An IDX file name, plain or gzip-compressed."""
    return tmp_path / request.param


@pytest.mark.parametrize("dtype", [dt.newbyteorder("=") for dt in IDX_DTYPES.values()])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (4, 2, 3), (2, 1, 3, 2), (0, 28, 28)])
def test_round_trip(path, dtype, shape):
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype) if dtype.kind in "ui" else np.finfo(dtype)
    if dtype.kind in "ui":
        array = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    else:
        array = (rng.standard_normal(shape) * 100).astype(dtype)
    if array.size:  # the extremes survive the byte swap
        array.flat[0], array.flat[-1] = info.min, info.max
    write_idx(path, array)
    loaded = read_idx(path)
    assert loaded.dtype == dtype and loaded.dtype.isnative
    assert loaded.shape == shape
    np.testing.assert_array_equal(loaded, array)


def test_uint8_file_layout(tmp_path):
    """The bytes are the published layout, not just something read_idx can read back."""
    raw = _header(0x08, 2, 3) + bytes(range(6))
    np.testing.assert_array_equal(read_idx(_write(tmp_path / "a.idx", raw)), [[0, 1, 2], [3, 4, 5]])


def test_big_endian_layout(tmp_path):
    raw = _header(0x0C, 2) + struct.pack(">2i", -2, 70000)
    np.testing.assert_array_equal(read_idx(_write(tmp_path / "a.idx", raw)), [-2, 70000])


def test_content_decides_compression(tmp_path):
    """Browsers often unpack a .gz download and keep its name; the reverse happens too."""
    raw = _header(0x08, 3) + b"abc"
    unpacked = tmp_path / "train-labels-idx1-ubyte.gz"
    unpacked.write_bytes(raw)
    packed = tmp_path / "train-labels-idx1-ubyte"
    packed.write_bytes(gzip.compress(raw))
    for p in (unpacked, packed):
        assert read_idx(p).tolist() == [97, 98, 99]


def test_truncated(path):
    """The message the design promises, for a 60000-image header over 1000 bytes."""
    _write(path, _header(0x08, 60000, 28, 28) + bytes(984))
    with _raises(path, r"expected 47040016 bytes of data, found 1000 \(file truncated\?\)"):
        read_idx(path)


def test_trailing_bytes(path):
    _write(path, _header(0x08, 2, 2) + bytes(5))
    with _raises(path, r"expected 16 bytes of data, found .*trailing bytes"):
        read_idx(path)


@pytest.mark.parametrize("cut", [0, 2, 3])
def test_short_magic(path, cut):
    _write(path, _header(0x08, 1)[:cut])
    with _raises(path, f"expected a 4-byte IDX magic number, found {cut} bytes"):
        read_idx(path)


def test_truncated_header(path):
    _write(path, _header(0x08, 10, 28, 28)[:10])
    with _raises(path, r"expected a 16-byte header for 3 dimensions, found 10 bytes"):
        read_idx(path)


def test_wrong_magic(path):
    _write(path, b"\x01\x00" + _header(0x08, 1)[2:] + b"x")
    with _raises(path, "expected an IDX magic number starting with two zero bytes, found 0x01000801"):
        read_idx(path)


@pytest.mark.parametrize("code", [0x00, 0x07, 0x0A, 0x0F, 0xFF])
def test_unknown_type_code(path, code):
    _write(path, _header(code, 1) + bytes(8))
    with _raises(path, rf"expected an IDX type code in 0x08 \(uint8\).*, found 0x{code:02X}"):
        read_idx(path)


@pytest.mark.parametrize("ndim", [0, 5, 255])
def test_bad_ndim(path, ndim):
    _write(path, _header(0x08, *[1] * ndim) + bytes(1))
    with _raises(path, f"expected 1 to 4 dimensions, found {ndim}"):
        read_idx(path)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "x.idx.gz"
    packed = bytearray(gzip.compress(_header(0x08, 1000) + bytes(range(256)) * 4))
    packed[10] = 0xFF  # the first deflate block header: block type 3 does not exist
    path.write_bytes(bytes(packed))
    with _raises(path, "corrupt gzip data"):
        read_idx(path)


def test_truncated_gzip(tmp_path):
    path = tmp_path / "x.idx.gz"
    path.write_bytes(gzip.compress(_header(0x08, 1000) + bytes(1000))[:-12])
    with _raises(path, "corrupt gzip data"):
        read_idx(path)


def test_gzip_checksum_error(tmp_path):
    path = tmp_path / "x.idx.gz"
    packed = bytearray(gzip.compress(_header(0x08, 4) + b"abcd"))
    packed[-8] ^= 0xFF  # the CRC32 in the trailer
    path.write_bytes(bytes(packed))
    with _raises(path, "corrupt gzip data"):
        read_idx(path)


def test_missing_file_is_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.gz")


def test_write_rejects_what_idx_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="IDX cannot hold dtype bool"):
        write_idx(tmp_path / "a", np.zeros(3, bool))
    with pytest.raises(ValueError, match="IDX holds 1 to 4 dimensions, got shape"):
        write_idx(tmp_path / "a", np.zeros((1,) * 5, np.uint8))


# load_idx_dataset: a pair of files checked against each other


def _pair(tmp_path, images, labels):
    images_path, labels_path = tmp_path / "images.gz", tmp_path / "labels.gz"
    write_idx(images_path, np.asarray(images))
    write_idx(labels_path, np.asarray(labels))
    return images_path, labels_path


def test_pair_loads(tmp_path):
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28).astype(np.uint8)
    x, t = load_idx_dataset(*_pair(tmp_path, images, np.array([0, 9, 3], np.uint8)))
    np.testing.assert_array_equal(x, images)
    assert t.dtype == np.int64 and t.tolist() == [0, 9, 3]


def test_counts_disagree(tmp_path):
    images_path, labels_path = _pair(tmp_path, np.zeros((3, 28, 28), np.uint8), np.zeros(4, np.uint8))
    expected = f"{images_path} holds 3 images but {labels_path} holds 4 labels"
    with pytest.raises(ValueError, match=re.escape(expected)):
        load_idx_dataset(images_path, labels_path)


@pytest.mark.parametrize(
    "labels, found",
    [([0, 10, 11], "found 10 at index 1 (2 out of range)"), ([-1, 0, 0], "found -1 at index 0")],
)
def test_label_out_of_range(tmp_path, labels, found):
    images_path, labels_path = _pair(tmp_path, np.zeros((3, 28, 28), np.uint8), np.array(labels, np.int8))
    with _raises(labels_path, re.escape(f"expected labels 0..9, {found}")):
        load_idx_dataset(images_path, labels_path)


@pytest.mark.parametrize(
    "images", [np.zeros((2, 27, 28), np.uint8), np.zeros((2, 784), np.uint8), np.zeros((2, 28, 28), np.int16)]
)
def test_bad_images(tmp_path, images):
    images_path, labels_path = _pair(tmp_path, images, np.zeros(2, np.uint8))
    with _raises(images_path, r"expected uint8 images of shape \(N, 28, 28\), found"):
        load_idx_dataset(images_path, labels_path)


@pytest.mark.parametrize("labels", [np.zeros((2, 1), np.uint8), np.zeros(2, np.float32)])
def test_bad_labels(tmp_path, labels):
    images_path, labels_path = _pair(tmp_path, np.zeros((2, 28, 28), np.uint8), labels)
    with _raises(labels_path, "expected 1-D integer labels, found"):
        load_idx_dataset(images_path, labels_path)
