"""The safe archive: what it writes reads back; a container that could expand, overlap or
lie is refused before anything is allocated from it.

The model-level refusals (records, networks) are in test_serialize.py; this file builds
hostile zip containers byte by byte.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from peak_memory import assert_refused_within_memory

from dlscratch.archive import META, Archive, read_archive, write_archive

FORMAT = "test-archive"


def read(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    def parse(archive: Archive) -> tuple[dict, dict[str, np.ndarray]]:
        return archive.record, {name: archive.read(name) for name in archive.table}

    return read_archive(path, FORMAT, 1, parse)


def test_written_arrays_and_record_read_back(tmp_path, rng):
    arrays = {
        "a": rng.standard_normal((3, 4)),
        "b/c": np.arange(5, dtype=np.uint8),
        "empty": np.zeros((0, 2), np.float32),
        "scalar": np.float16(2.5) * np.ones(()),
        "fortran": np.asfortranarray(rng.standard_normal((2, 3))),
    }
    path = write_archive(tmp_path / "x.npz", {"format": FORMAT, "version": 1, "note": [1, "two"]}, arrays)
    record, loaded = read(path)
    assert record["note"] == [1, "two"]
    assert record["arrays"]["b/c"] == {"shape": [5], "dtype": "uint8"}
    assert loaded.keys() == arrays.keys()
    for name, array in arrays.items():
        assert loaded[name].dtype == array.dtype and np.array_equal(loaded[name], array)
        assert loaded[name].flags.writeable


def test_write_refuses_object_arrays(tmp_path):
    with pytest.raises(ValueError, match="dtype object is not a plain number type"):
        write_archive(tmp_path / "x.npz", {}, {"a": np.array([{}], dtype=object)})


# ---------------------------------------------------------------- zips built by hand

_LOCAL = struct.Struct("<4s5H3L2H")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_END = struct.Struct("<4s4H2LH")


def npy(data: bytes) -> bytes:
    """A .npy file of data as a 1-D uint8 array."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": (len(data),)}
    )
    return header.getvalue() + data


def local_header(name: bytes, content: bytes) -> bytes:
    size = len(content)
    return _LOCAL.pack(b"PK\x03\x04", 20, 0, 0, 0, 0, zlib.crc32(content), size, size, len(name), 0) + name


def zip_bytes(members: list[tuple[bytes, bytes, int]], body: bytes) -> bytes:
    """body followed by a central directory listing members as (name, content, local header
    offset), wherever those offsets point."""
    directory = b"".join(
        _CENTRAL.pack(
            b"PK\x01\x02", 20, 20, 0, 0, 0, 0, zlib.crc32(content), len(content), len(content), len(name),
            0, 0, 0, 0, 0, offset,
        )
        + name
        for name, content, offset in members
    )  # fmt: skip
    end = _END.pack(b"PK\x05\x06", 0, 0, len(members), len(members), len(directory), len(body), 0)
    return body + directory + end


def overlapping_archive(path: Path, count: int, kernel: int = 1024) -> Path:
    """A model file whose stored members nest: member i's data holds member i+1 whole, local
    header and all, so the members' sizes add up quadratically (count**2 / 2 headers) while
    the file grows linearly: a "quadratic zip bomb". Its record lists every member as a
    uint8 array of its true size, so a reader that trusts each member reads them all."""
    names = [f"a{i}.npy".encode() for i in range(count)]
    contents, header_sizes = [b""] * count, [0] * count
    rest = bytes(kernel)
    for i in reversed(range(count)):
        contents[i] = npy(rest)
        header_sizes[i] = len(contents[i]) - len(rest)
        rest = local_header(names[i], contents[i]) + contents[i]
    record = {
        "format": "dlscratch-model",
        "version": 1,
        "network": {"class": "Sequential", "config": {}, "dtype": None, "param_layers": {}},
        "arrays": {
            f"a{i}": {"shape": [len(contents[i]) - header_sizes[i]], "dtype": "uint8"} for i in range(count)
        },
    }
    meta = npy(json.dumps(record).encode())
    head = local_header(f"{META}.npy".encode(), meta) + meta
    members, offset = [(f"{META}.npy".encode(), meta, 0)], len(head)
    for i in range(count):
        members.append((names[i], contents[i], offset))
        offset += len(local_header(names[i], contents[i])) + header_sizes[i]
    path.write_bytes(zip_bytes(members, head + rest))
    return path


def test_the_hand_made_bomb_is_what_it_claims(tmp_path):
    """The bomb is a valid zip whose members a trusting reader would read in full."""
    import zipfile

    path = overlapping_archive(tmp_path / "bomb.npz", count=50)
    with zipfile.ZipFile(path) as archive:
        sizes = [info.file_size for info in archive.infolist()]
        assert archive.read("a10.npy")[-1024:] == bytes(1024)  # its data really is there
    assert sum(sizes) > 10 * path.stat().st_size  # and adds up to far more than the file


def test_overlapping_members_are_refused(tmp_path):
    path = overlapping_archive(tmp_path / "bomb.npz", count=50)
    with pytest.raises(ValueError, match="'a0' overlaps 'a1'"):
        read(path)


def test_peak_memory_of_a_quadratic_zip_bomb_stays_near_its_size(tmp_path):
    path = overlapping_archive(tmp_path / "bomb.npz", count=1500)  # 0.4 MB holding 190 MB
    assert_refused_within_memory("dlscratch.serialize:load", path)


def test_a_member_beyond_the_end_of_the_file_is_refused(tmp_path):
    content = npy(b"abc")
    body = local_header(b"a.npy", content) + content
    path = tmp_path / "x.npz"
    path.write_bytes(zip_bytes([(b"a.npy", content, 10_000)], body))
    with pytest.raises(ValueError, match="cannot load"):
        read(path)


def test_a_member_overlapping_the_directory_is_refused(tmp_path):
    content = npy(b"abcdef")
    body = local_header(b"a.npy", content) + content
    path = tmp_path / "x.npz"
    # the directory claims the member is longer than the bytes before the directory
    data = bytearray(zip_bytes([(b"a.npy", content + b"\0" * 8, 0)], body))
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="cannot load"):
        read(path)
