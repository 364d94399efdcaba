"""files.py: reads refuse what is not a regular file without blocking; writes are atomic;
a folder is held by one process at a time; stale temporaries go."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dlscratch.files import (
    FolderInUseError,
    lock_folder,
    read_regular_file,
    remove_stale_temporaries,
    write_atomically,
)


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


def test_stale_temporaries_of_the_named_files_are_removed(tmp_path):
    stale = [tmp_path / ".model.npz.ab12.tmp", tmp_path / ".curves.png.x.tmp"]
    kept = [tmp_path / "model.npz", tmp_path / ".other.txt.ab.tmp", tmp_path / "model.npz.tmp"]
    for path in stale + kept:
        path.write_bytes(b"x")
    assert sorted(remove_stale_temporaries(tmp_path, ["model.npz", "curves.png"])) == sorted(stale)
    assert sorted(tmp_path.iterdir()) == sorted(kept)


@pytest.mark.skipif(os.name != "posix", reason="folders are locked with flock")
def test_a_locked_folder_refuses_a_second_holder_naming_the_first(tmp_path):
    with (
        lock_folder(tmp_path),
        pytest.raises(FolderInUseError, match=rf"in use by another dlscratch process \(pid {os.getpid()}\)"),
        lock_folder(tmp_path),
    ):
        pass
    with lock_folder(tmp_path):  # released: taken again
        pass


@pytest.mark.skipif(os.name != "posix", reason="folders are locked with flock")
def test_a_folder_lock_dies_with_its_process(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from dlscratch.files import lock_folder\n"
         "with lock_folder(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderInUseError, match=f"pid {holder.pid}"), lock_folder(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()
    with lock_folder(tmp_path):  # a killed holder holds nothing
        pass


def test_writing_into_a_missing_folder_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no such folder to write into: '.*absent'$"):
        write_atomically(tmp_path / "absent" / "model.npz", lambda file: file.write(b"x"))
