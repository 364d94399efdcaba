"""Files written so that nobody ever sees half of one, read only when they are files, and
folders one process writes at a time.

Writes go to a temporary file and a rename; temporaries a killed process left behind are
removed by the next one that holds the folder (remove_stale_temporaries). Reads of
anything a user names (model files, checkpoints, pickles) open it without blocking and
refuse what is not a regular file: a FIFO named model.npz would otherwise wait forever for
a writer. lock_folder makes a second process writing into the same folder stop with a
clear message instead of silently overwriting the first one's files.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, BinaryIO

try:
    import fcntl
except ImportError:  # Windows: folders are not locked
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".dlscratch.lock"

__all__ = [
    "FolderInUseError",
    "lock_folder",
    "open_regular_file",
    "read_regular_file",
    "remove_stale_temporaries",
    "write_atomically",
]


def write_atomically(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> None:
    """write(file) to a temporary file next to path, flush it to disk, rename it to path.

    On any error the temporary file is removed and whatever was at path stays as it was.
    """
    path = Path(path)
    mode = _file_mode(path)
    try:
        descriptor, temporary = tempfile.mkstemp(
            prefix=_temporary_prefix(path.name), suffix=".tmp", dir=path.parent
        )
    except FileNotFoundError:  # name the folder the user gave, not the temporary file
        raise FileNotFoundError(errno.ENOENT, "no such folder to write into", str(path.parent)) from None
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())  # the data is on disk before the rename makes it visible
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_folder(path.parent)


def _temporary_prefix(name: str) -> str:
    return f".{name}."


def remove_stale_temporaries(folder: str | os.PathLike[str], names: Iterable[str]) -> list[Path]:
    """Remove the temporary files write_atomically left in folder for these file names when
    its process was killed mid-write; returns what was removed.

    Call it only while no other process can be writing those names there (under
    lock_folder): a temporary being written looks the same as a stale one.
    """
    folder, removed = Path(folder), []
    for name in names:
        for stale in folder.glob(f"{glob.escape(_temporary_prefix(name))}*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
                removed.append(stale)
    return removed


class FolderInUseError(OSError):
    """Another process holds the folder (see lock_folder)."""


@contextmanager
def lock_folder(folder: str | os.PathLike[str]) -> Iterator[None]:
    """Hold folder for this process for the block: a second process (or a second lock in
    this one) gets FolderInUseError at once, naming the holder's pid.

    The lock is an advisory lock (flock) on folder/.dlscratch.lock, released when the block
    ends or the process dies, however it dies; the file itself stays. Where the system has
    no flock (Windows) the folder is not locked.
    """
    if fcntl is None:
        yield
        return
    path = Path(folder) / LOCK_NAME
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise FolderInUseError(
                f"{folder} is in use by another dlscratch process (pid {holder})"
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _file_mode(path: Path) -> int:
    """The replaced file's permissions, else a new file's usual ones (0o666 less the umask):
    mkstemp's private 0o600 would surprise whoever shares the folder."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(path.stat().st_mode)
    umask = os.umask(0)  # the only portable way to read the umask is to set it
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable too; not every system can open a folder, so best effort."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(descriptor)
    finally:
        os.close(descriptor)


def open_regular_file(path: str | os.PathLike[str]) -> BinaryIO:
    """path opened for binary reading, once it is known to be a regular file.

    The file is opened without blocking and checked through its descriptor, so neither a
    FIFO (which would block until a writer comes) nor a file swapped in after a check is
    read. IsADirectoryError for a folder and the usual OSError for a path that cannot be
    opened; ValueError naming path for a FIFO, socket or device.
    """
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
        if not stat.S_ISREG(mode):
            raise ValueError(f"{os.fspath(path)} is not a regular file (a FIFO, socket or device)")
        if hasattr(os, "set_blocking"):
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def read_regular_file(path: str | os.PathLike[str]) -> bytes:
    """The whole content of the regular file at path (see open_regular_file for errors)."""
    with open_regular_file(path) as file:
        return file.read()
