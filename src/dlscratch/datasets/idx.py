"""Read and write IDX files, the format MNIST and Fashion-MNIST ship in.

An IDX file is a header followed by the raw array, big-endian, in C order:

    bytes 0-1   zero
    byte  2     type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
                0x0E float64
    byte  3     number of dimensions, ndim
    4 * ndim    each dimension, a big-endian uint32
    the rest    prod(dims) items

A file may be gzip-compressed (recognised by its content, not its name, because browsers
often decompress ``.gz`` downloads and keep the name). Reading is strict: every way a file
can be malformed ends in a ``ValueError`` naming the file and saying what was expected and
what was found, and nothing is allocated from the header's sizes before they are checked
against the data that is really there.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np

from dlscratch.files import open_regular_file

__all__ = ["IDX_DTYPES", "MAX_NDIM", "read_idx", "read_idx_header", "write_idx"]

#: IDX type code -> dtype of the items as stored in the file (big-endian).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

#: Most dimensions accepted; every published IDX data set uses 1 to 3.
MAX_NDIM = 4

_GZIP_MAGIC = b"\x1f\x8b"
# Reads go in chunks of this size, so a lying header never makes us ask for a huge buffer.
_CHUNK = 1 << 18
# What the gzip module raises on a corrupt or truncated stream.
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)
_KNOWN_TYPES = ", ".join(f"0x{code:02X} ({dt.name})" for code, dt in IDX_DTYPES.items())


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file, plain or gzip-compressed.

    Returns an array of the shape the header gives, ``dims``, with the dtype its type
    code names, in native byte order. Raises ``ValueError`` naming the file when the
    header is malformed, the data is shorter or longer than the header says, or the gzip
    stream is corrupt; a missing or unreadable file raises the usual ``OSError``.
    """
    path = Path(path)
    with _opened(path) as (raw, stream, compressed):
        dtype, dims = _read_header(stream, path)
        header_size = 4 + 4 * len(dims)
        size = math.prod(dims) * dtype.itemsize  # a Python int: no overflow
        if not compressed:
            # The real size is known up front: fail before reading anything.
            _check_size(path, header_size + size, os.fstat(raw.fileno()).st_size)
        # One byte more than needed tells trailing data apart from an exact fit.
        data = _read_at_most(stream, size + 1)
    if len(data) > size:
        raise ValueError(
            f"{path}: expected {header_size + size} bytes of data, found more "
            "(trailing bytes after the array)"
        )
    _check_size(path, header_size + size, header_size + len(data))
    return _to_native(np.frombuffer(data, dtype=dtype).reshape(dims))


def read_idx_header(path: str | os.PathLike[str]) -> tuple[np.dtype, tuple[int, ...]]:
    """The dtype (native byte order) and dims an IDX file's header declares, reading nothing
    more, so that files can be checked against each other before their data is read.

    Raises as read_idx does for a malformed header; the data itself is not checked.
    """
    path = Path(path)
    with _opened(path) as (_, stream, _compressed):
        dtype, dims = _read_header(stream, path)
    return dtype.newbyteorder("="), dims


@contextmanager
def _opened(path: Path) -> Iterator[tuple[BinaryIO, BinaryIO, bool]]:
    """(the file, the stream of its IDX bytes, whether it is gzip-compressed); a corrupt
    gzip stream met inside the block becomes a ValueError naming the file."""
    with open_regular_file(path) as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        stream: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        try:
            yield raw, stream, compressed
        except _GZIP_ERRORS as e:
            raise ValueError(f"{path}: corrupt gzip data ({e})") from e


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` (1 to MAX_NDIM dimensions, a dtype IDX can hold) as an IDX file.

    The file is gzip-compressed when the name ends in ``.gz``, with a fixed timestamp so
    the same array always gives the same bytes (and the same checksum).
    """
    array = np.asarray(array)
    code = _type_code(array.dtype)
    if not 1 <= array.ndim <= MAX_NDIM:
        raise ValueError(f"IDX holds 1 to {MAX_NDIM} dimensions, got shape {array.shape}")
    if any(d >= 2**32 for d in array.shape):
        raise ValueError(f"IDX dimensions must be below 2**32, got shape {array.shape}")
    header = struct.pack(f">2xBB{array.ndim}I", code, array.ndim, *array.shape)
    payload = header + array.astype(IDX_DTYPES[code], copy=False).tobytes()
    with open(path, "wb") as f:
        if str(path).endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
                gz.write(payload)
        else:
            f.write(payload)


def _read_header(stream: BinaryIO, path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    """Parse the magic number and dimensions; returns (stored dtype, dims)."""
    magic = stream.read(4)
    if len(magic) < 4:
        raise ValueError(
            f"{path}: expected a 4-byte IDX magic number, found {len(magic)} bytes (empty or truncated file?)"
        )
    code, ndim = magic[2], magic[3]
    if magic[:2] != b"\0\0":
        raise ValueError(
            f"{path}: expected an IDX magic number starting with two zero bytes, "
            f"found 0x{magic.hex().upper()} (not an IDX file?)"
        )
    if code not in IDX_DTYPES:
        raise ValueError(f"{path}: expected an IDX type code in {_KNOWN_TYPES}, found 0x{code:02X}")
    if not 1 <= ndim <= MAX_NDIM:
        raise ValueError(f"{path}: expected 1 to {MAX_NDIM} dimensions, found {ndim}")
    raw_dims = stream.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise ValueError(
            f"{path}: expected a {4 + 4 * ndim}-byte header for {ndim} dimensions, "
            f"found {4 + len(raw_dims)} bytes (file truncated?)"
        )
    return IDX_DTYPES[code], struct.unpack(f">{ndim}I", raw_dims)


def _check_size(path: Path, expected: int, found: int) -> None:
    """Raise unless a file holds exactly the header plus the array it declares."""
    if found < expected:
        raise ValueError(f"{path}: expected {expected} bytes of data, found {found} (file truncated?)")
    if found > expected:
        raise ValueError(
            f"{path}: expected {expected} bytes of data, found {found} (trailing bytes after the array)"
        )


def _read_at_most(stream: BinaryIO, limit: int) -> bytearray:
    """Read until end of stream or ``limit`` bytes, whichever comes first.

    The buffer grows with what really arrives, so memory follows the data, never the
    header's claims.
    """
    data = bytearray()
    while len(data) < limit:
        chunk = stream.read(min(_CHUNK, limit - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def _to_native(array: np.ndarray) -> np.ndarray:
    """Big-endian items -> native byte order, in place (the buffer is ours and writable)."""
    if array.dtype.isnative:
        return array
    array.byteswap(inplace=True)
    return array.view(array.dtype.newbyteorder("="))


def _type_code(dtype: np.dtype) -> int:
    """The IDX type code for ``dtype`` in either byte order."""
    for code, stored in IDX_DTYPES.items():
        if dtype.kind == stored.kind and dtype.itemsize == stored.itemsize:
            return code
    raise ValueError(f"IDX cannot hold dtype {dtype}; expected one of {_KNOWN_TYPES}")
