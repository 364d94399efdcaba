"""files.py: reads refuse what is not a regular file without blocking; writes are atomic."""

from __future__ import annotations

import os

import pytest

from dlscratch.files import read_regular_file, write_atomically


def test_a_regular_file_is_read(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"\x00\x01")
    assert read_regular_file(path) == b"\x00\x01"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_is_refused_at_once(tmp_path):
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)  # no writer: a plain open() would wait forever
    with pytest.raises(ValueError, match=r"model\.npz is not a regular file"):
        read_regular_file(fifo)


def test_a_folder_is_an_os_error(tmp_path):
    with pytest.raises(IsADirectoryError):
        read_regular_file(tmp_path)


def test_a_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_regular_file(tmp_path / "absent")


def test_write_replaces_the_file_or_leaves_it_alone(tmp_path):
    path = tmp_path / "out.txt"
    write_atomically(path, lambda file: file.write(b"first"))
    with pytest.raises(RuntimeError):
        write_atomically(path, lambda file: (file.write(b"half"), _fail()))
    assert path.read_bytes() == b"first"
    assert os.listdir(tmp_path) == ["out.txt"]  # no temporary file left behind


def _fail() -> None:
    raise RuntimeError("disk full, say")
