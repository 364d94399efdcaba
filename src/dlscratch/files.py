"""Files written so that nobody ever sees half of one, and read only when they are files.

Writes go to a temporary file and a rename. Reads of anything a user names (model files,
checkpoints, pickles) open it without blocking and refuse what is not a regular file: a
FIFO named model.npz would otherwise wait forever for a writer.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, BinaryIO

__all__ = ["open_regular_file", "read_regular_file", "write_atomically"]


def write_atomically(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> None:
    """write(file) to a temporary file next to path, flush it to disk, rename it to path.

    On any error the temporary file is removed and whatever was at path stays as it was.
    """
    path = Path(path)
    mode = _file_mode(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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
