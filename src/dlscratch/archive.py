"""Archives of named arrays with a JSON record, read as untrusted input. No pickle anywhere.

An archive is an ordinary NumPy .npz file (a zip of .npy files), every member stored
uncompressed:

    __meta__        uint8 array: the UTF-8 JSON record, with an "arrays" table
    <name>          each array the table lists: {"<name>": {"shape": [...], "dtype": "float32"}}

Model files and checkpoints (dlscratch.serialize, dlscratch.checkpoint) are archives; this
module knows nothing of networks. Reading checks the container before anything is
allocated from it:

- the file is a regular file (a FIFO would block) and a zip archive;
- every member is a stored .npy whose bytes lie inside the file, and no two members share
  any byte: overlapping members would let a small file expand quadratically (a "zip
  bomb"), and not every Python's zipfile refuses them;
- the record names its format and version, and its array table lists exactly the members,
  each .npy header agreeing with the table and the member holding exactly the bytes its
  shape and dtype need. So the arrays together are never larger than the file.

Only then does the caller's parse function see the record, and it reads arrays one by one
when it has checked what they are for.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np
from numpy.lib import format as npy_format

from dlscratch.files import open_regular_file, write_atomically
from dlscratch.records import as_json_text, field, short, to_json_data

__all__ = ["DTYPES", "META", "Archive", "read_archive", "write_archive"]

T = TypeVar("T")
PathLike = str | os.PathLike

META = "__meta__"
#: Plain numbers only: no entry of an archive can ever need pickle to be read.
DTYPES = frozenset(
    ["bool", "float16", "float32", "float64"]
    + [f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)]
)
_MAX_NDIM = 32
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # a zip member's local file header, 30 bytes

# What a damaged or hostile file can make zipfile, zlib, json, numpy's .npy parser or a
# parse function raise; read_archive turns each into one ValueError naming the file.
_BAD_FILE_ERRORS = (
    ValueError,  # json and UnicodeDecodeError included
    TypeError,
    KeyError,
    IndexError,
    EOFError,
    struct.error,
    zipfile.BadZipFile,
    zlib.error,
    NotImplementedError,  # zipfile: unsupported compression or encryption
    RuntimeError,  # zipfile: encrypted member; RecursionError: absurdly nested JSON
    MemoryError,
    OverflowError,
)


# ---------------------------------------------------------------- writing


def write_archive(path: PathLike, record: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """Write record, with an "arrays" table of every array's shape and dtype added, and the
    arrays, to an .npz at exactly path, atomically. Returns path as a Path.

    The file is written under a temporary name in the same folder, flushed to disk and
    renamed into place, so it is always either the old file or the complete new one.
    ValueError for an array that is not plain numbers (an object array would need pickle)
    or a record that is not JSON data.
    """
    path = Path(path)
    entries = {name: _plain_array(name, array) for name, array in arrays.items()}
    table = {name: {"shape": list(array.shape), "dtype": array.dtype.name} for name, array in entries.items()}
    record = to_json_data({**record, "arrays": table}, "the record")
    entries = {META: np.frombuffer(as_json_text(record).encode("utf-8"), dtype=np.uint8), **entries}
    # a file object, not a name: np.savez would add ".npz" to a name without it
    write_atomically(path, lambda file: np.savez(file, allow_pickle=False, **entries))
    return path


def _plain_array(name: str, array: Any) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.name not in DTYPES:
        raise ValueError(f"cannot save {name!r}: dtype {array.dtype} is not a plain number type")
    # native byte order, as the reader expects
    return array.astype(array.dtype.newbyteorder("="), copy=False)


# ---------------------------------------------------------------- reading


class Archive:
    """An archive whose container and array table have been checked; arrays not yet read.

    record: the JSON record (format and version checked). table: entry name -> (shape,
    dtype) for every array, as listed and as the members' headers agree. read(name): that
    array, read now, writable, as the table says.
    """

    def __init__(self, zip_file: zipfile.ZipFile, record: dict[str, Any], members: dict[str, Any]) -> None:
        self._zip = zip_file
        self.record = record
        self._members = members
        self.table = {name: (member[1], member[2]) for name, member in members.items()}

    def nbytes(self, names: Any = None) -> int:
        """Bytes the named arrays (default: all) take once read."""
        names = self.table if names is None else names
        return sum(math.prod(self.table[n][0]) * self.table[n][1].itemsize for n in names)

    def read(self, name: str) -> np.ndarray:
        info, shape, dtype = self._members[name]
        with self._zip.open(info) as member:
            array = npy_format.read_array(member, allow_pickle=False)
        if array.shape != shape or array.dtype != dtype:  # checked already; a changed file would differ
            raise ValueError(f"array {short(name)} changed while it was being read")
        return array


def read_archive(path: PathLike, format_name: str, version: int, parse: Callable[[Archive], T]) -> T:
    """Open and check the archive at path (see the module's notes) and return parse(archive).

    Any problem with the content, found here or by parse, becomes a ValueError naming the
    file; a path that cannot be opened raises the usual OSError (IsADirectoryError for a
    folder), and one that is not a regular file a ValueError.
    """
    path = Path(path)
    with open_regular_file(path) as file:
        try:
            if file.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):
                raise ValueError(f"not a {format_name} file: not a zip archive (.npz)")
            with zipfile.ZipFile(file) as zip_file:
                return parse(_checked_archive(file, zip_file, format_name, version))
        except _BAD_FILE_ERRORS as error:
            reason = (
                str(error) if type(error) is ValueError else f"damaged file ({type(error).__name__}: {error})"
            )
            raise ValueError(f"cannot load {path}: {reason}") from error


def _checked_archive(file: IO[bytes], zip_file: zipfile.ZipFile, format_name: str, version: int) -> Archive:
    infos = _disjoint_members(file, zip_file, os.fstat(file.fileno()).st_size)
    if META not in infos:
        raise ValueError(f"not a {format_name} file: it has no {META} record")
    record = _read_record(zip_file, infos.pop(META), format_name, version)
    table = _array_table(record)
    if missing := sorted(table.keys() - infos.keys()):
        raise ValueError(f"arrays listed in the record are missing: {short(missing)}")
    if unexpected := sorted(infos.keys() - table.keys()):
        raise ValueError(f"arrays not listed in the record: {short(unexpected)}")
    members = {}
    for name, (shape, dtype) in table.items():
        found_shape, found_dtype = _npy_header(zip_file, infos[name], name)
        if found_dtype != dtype:
            raise ValueError(f"array {short(name)} has dtype {found_dtype} but the record says {dtype}")
        if found_shape != shape:
            raise ValueError(f"array {short(name)} has shape {found_shape} but the record says {shape}")
        members[name] = (infos[name], shape, dtype)
    return Archive(zip_file, record, members)


def _disjoint_members(
    file: IO[bytes], zip_file: zipfile.ZipFile, file_size: int
) -> dict[str, zipfile.ZipInfo]:
    """Entry name -> member, each a stored .npy lying inside the file, no two overlapping.

    A member spans its local header and its data; the spans are sorted by where they start
    and each must end before the next begins, and before the central directory.
    """
    members, spans = {}, []
    for info in zip_file.infolist():
        name = info.filename.removesuffix(".npy")
        if name == info.filename:
            raise ValueError(f"unexpected member {short(info.filename)}: an .npz holds only .npy files")
        if name in members:
            raise ValueError(f"the archive holds {short(name)} twice")
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            raise ValueError(f"{short(name)} is compressed or encrypted; dlscratch stores arrays as they are")
        if info.compress_size != info.file_size:
            raise ValueError(f"{short(name)} claims {info.file_size} bytes but stores {info.compress_size}")
        if not 0 <= info.header_offset < file_size:
            raise ValueError(f"{short(name)} starts outside the file")
        file.seek(info.header_offset)
        header = file.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            raise ValueError(f"{short(name)} has no local header where the directory says")
        *_, name_length, extra_length = _LOCAL_HEADER.unpack(header)
        end = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length + info.compress_size
        spans.append((info.header_offset, end, name))
        members[name] = info
    directory = getattr(zip_file, "start_dir", file_size)  # where the central directory begins
    spans.sort()
    for (_, end, name), (start, _, after) in zip(
        spans, [*spans[1:], (directory, 0, "the directory")], strict=True
    ):
        if end > start or end > file_size:
            raise ValueError(f"{short(name)} overlaps {short(after)} or runs past the end of the file")
    return members


def _read_record(zip_file: zipfile.ZipFile, info: zipfile.ZipInfo, format_name: str, version: int) -> dict:
    shape, dtype = _npy_header(zip_file, info, META)
    if dtype != np.uint8 or len(shape) != 1:
        raise ValueError(f"{META} must be a 1-D uint8 array of UTF-8 JSON, got {dtype} of shape {shape}")
    with zip_file.open(info) as member:
        text = npy_format.read_array(member, allow_pickle=False).tobytes().decode("utf-8")
    record = json.loads(text)
    if not isinstance(record, dict):
        raise ValueError(f"{META} must hold a JSON object, got {short(record)}")
    found = record.get("format")
    if found != format_name:
        raise ValueError(f"not a {format_name} file: its format is {short(found)}")
    found = record.get("version")
    if found != version or type(found) is not int:
        newer = (
            " (written by a newer dlscratch: upgrade to read it)"
            if type(found) is int and found > version
            else ""
        )
        raise ValueError(
            f"{format_name} version {short(found)} is not the version this dlscratch reads, {version}{newer}"
        )
    return record


def _array_table(record: dict[str, Any]) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Entry name -> (shape, dtype) from the record's "arrays" table, every value checked."""
    table = field(record, "arrays", dict, "the record")
    checked = {}
    for name, entry in table.items():
        where = f"the record of array {short(name)}"
        if name == META or not name:
            raise ValueError(f"{where}: not an array name")
        shape = field(entry, "shape", list, where)
        if len(shape) > _MAX_NDIM or not all(type(n) is int and n >= 0 for n in shape):
            raise ValueError(
                f"{where}: a shape is a list of at most {_MAX_NDIM} integers >= 0, got {short(shape)}"
            )
        dtype = field(entry, "dtype", str, where)
        if dtype not in DTYPES:
            raise ValueError(
                f"{where}: dtype {short(dtype)} is not allowed (only {', '.join(sorted(DTYPES))})"
            )
        checked[name] = (tuple(shape), np.dtype(dtype))
    return checked


def _npy_header(
    zip_file: zipfile.ZipFile, info: zipfile.ZipInfo, name: str
) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a member's .npy header, its size checked against the member's:
    an array is only read once the file is known to hold all its bytes."""
    with zip_file.open(info) as member:
        version = npy_format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = npy_format.read_array_header_2_0(member)
        else:
            raise ValueError(f"{short(name)} uses .npy format {version}, not 1.0 or 2.0")
        data_start = member.tell()
    if dtype.name not in DTYPES:
        raise ValueError(f"{short(name)} holds dtype {dtype}, not plain numbers (it would need pickle)")
    if data_start + math.prod(shape) * dtype.itemsize != info.file_size:
        raise ValueError(f"{short(name)} is truncated or padded: its header says shape {shape} of {dtype}")
    return shape, dtype
