"""Download one file from a list of mirrors, checked and written atomically.

Every mirror is tried in turn until one gives the whole file with the right checksum. Any
failure (HTTP error, no connection, timeout, redirect loop, short body, a body larger than
the file can be, a mirror too slow to finish within the deadline, wrong checksum) moves on
to the next mirror. The data goes to a temporary file in the destination folder, named
uniquely per process, and is renamed over the final name only once it is complete and
verified, so readers never see half a file and two processes downloading the same file at
once both end with a good one. The temporary file is removed on every failure, including
KeyboardInterrupt; one left by a process that was killed is removed by the next download
into that folder.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import http.client
import os
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from tqdm import tqdm

__all__ = ["DEFAULT_DEADLINE", "DEFAULT_TIMEOUT", "DownloadError", "download_file"]

#: Seconds any single network operation (connect, each read) may block.
DEFAULT_TIMEOUT = 30.0
#: Seconds one mirror may take to deliver the whole file (a trickle of bytes never ends it
#: by timeout alone): MNIST's largest file at 50 kB/s.
DEFAULT_DEADLINE = 600.0

_CHUNK = 1 << 16
_HEADERS = {"User-Agent": "dlscratch (https://pypi.org/project/dlscratch)"}
# Everything a mirror can do wrong. URLError, HTTPError and timeouts are OSErrors;
# ValueError covers malformed URLs and headers.
_MIRROR_ERRORS = (OSError, http.client.HTTPException, ValueError)


class DownloadError(OSError):
    """No mirror delivered a file.

    Parameters
    ----------
    name : str
        The file.
    dest_dir : Path
        The folder it was meant for.
    failures : list of (str, str)
        (url, reason), one per mirror tried, in order.
    """

    def __init__(self, name: str, dest_dir: Path, failures: list[tuple[str, str]]) -> None:
        self.name = name
        self.dest_dir = dest_dir
        self.failures = failures
        tried = "; ".join(f"{url}: {reason}" for url, reason in failures) or "no mirrors given"
        super().__init__(f"could not download {name} into {dest_dir} from any mirror ({tried})")


class _BadBodyError(Exception):
    """A mirror answered, but with a body that is not the file."""


def download_file(
    name: str,
    dest_dir: str | os.PathLike[str],
    mirrors: Sequence[str],
    md5: str | None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
    max_bytes: int | None = None,
    deadline: float = DEFAULT_DEADLINE,
) -> Path:
    """Fetch ``<mirror>/<name>`` from the first mirror that delivers it into ``dest_dir``.

    ``md5`` is the expected hex digest of the file (``None`` skips the check). ``timeout``
    bounds each connect and each read, in seconds; ``deadline`` the whole download from
    one mirror. ``max_bytes``: the most the file can hold; a mirror announcing or sending
    more is abandoned at once (``None``: no cap). ``progress`` shows a tqdm bar on stderr
    (``TQDM_DISABLE=1`` in the environment also hides it). Creates ``dest_dir`` if needed
    and returns the path of the file. Raises ``DownloadError`` listing every mirror and why
    it failed when none delivered; nothing is left behind in ``dest_dir`` then.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / name
    _remove_abandoned_temps(dest)
    tmp = _create_temp(dest)
    try:
        with open(tmp, "wb") as out:
            failures = []
            for mirror in mirrors:
                url = mirror.rstrip("/") + "/" + name
                out.seek(0)
                out.truncate()
                try:
                    limits = _Limits(timeout, max_bytes, time.monotonic() + deadline, deadline)
                    _fetch(url, out, md5, limits, progress=progress, desc=name)
                    break
                except (*_MIRROR_ERRORS, _BadBodyError) as e:
                    failures.append((url, _describe(e, timeout)))
            else:
                raise DownloadError(name, dest_dir, failures)
            out.flush()
            os.fsync(out.fileno())  # the bytes reach the disk before the name does
        os.replace(tmp, dest)
    finally:
        # After a successful os.replace there is nothing left to remove.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return dest


def _temp_name(dest: Path, pid: int, token: str) -> Path:
    return dest.with_name(f".{dest.name}.{pid}.{token}.part")


def _create_temp(dest: Path) -> Path:
    """Create an empty, uniquely named file next to ``dest``; returns its path.

    Unique per process and call, so concurrent downloads never share one. Created with
    O_EXCL and mode 0o666 so the umask decides the permissions, as for any other file
    (tempfile.mkstemp would force 0o600 and hide a shared cache from other users).
    """
    while True:
        tmp = _temp_name(dest, os.getpid(), secrets.token_hex(4))
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue


def _remove_abandoned_temps(dest: Path) -> None:
    """Remove the temporary files of downloads of ``dest`` whose process is gone (killed
    mid-download); those of live processes are theirs."""
    prefix = f".{dest.name}."
    for tmp in dest.parent.glob(f"{glob.escape(prefix)}*.part"):
        pid = tmp.name[len(prefix) :].split(".", 1)[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            with contextlib.suppress(OSError):
                tmp.unlink()


def _process_alive(pid: int) -> bool:
    """Whether a process with this id exists (on POSIX; elsewhere assumed alive, so kept)."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class _Limits:
    """What one mirror's download may take: per-read timeout, bytes, and a deadline."""

    def __init__(self, timeout: float, max_bytes: int | None, ends: float, deadline: float) -> None:
        self.timeout, self.max_bytes, self.ends, self.deadline = timeout, max_bytes, ends, deadline

    def check(self, received: int) -> None:
        if self.max_bytes is not None and received > self.max_bytes:
            raise _BadBodyError(f"too large: more than the {self.max_bytes} bytes the file has")
        if time.monotonic() > self.ends:
            raise _BadBodyError(f"not complete after {self.deadline:g} s (the deadline), {received} bytes in")


def _fetch(url: str, out: BinaryIO, md5: str | None, limits: _Limits, *, progress: bool, desc: str) -> None:
    """Stream ``url`` into ``out``; raise unless the body is complete, within the limits and
    matches ``md5``."""
    digest = hashlib.md5(usedforsecurity=False)
    received = 0
    with urlopen(Request(url, headers=_HEADERS), timeout=limits.timeout) as response:
        length = _content_length(response)
        if length is not None:
            limits.check(length)  # a mirror announcing too much is not read at all
        with tqdm(
            total=length,
            desc=desc,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=sys.stderr,
            disable=not progress,
        ) as bar:
            # read1: whatever one receive brings, so a trickle of bytes still meets the deadline
            while chunk := response.read1(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
                limits.check(received)
    if length is not None and received != length:
        raise _BadBodyError(f"truncated: expected {length} bytes (Content-Length), got {received}")
    if md5 is not None and digest.hexdigest() != md5.lower():
        raise _BadBodyError(
            f"checksum mismatch: expected md5 {md5.lower()}, got {digest.hexdigest()} ({received} bytes)"
        )


def _content_length(response: http.client.HTTPResponse) -> int | None:
    """The declared body size, or None when absent or unreadable."""
    try:
        return int(response.headers["Content-Length"])
    except (TypeError, ValueError):
        return None


def _describe(error: BaseException, timeout: float) -> str:
    """One line saying why a mirror failed."""
    if isinstance(error, HTTPError):
        # A redirect loop's message runs over several lines; the first says it all.
        reason = str(error.reason).splitlines()[0] if error.reason else ""
        return f"HTTP {error.code} {reason}".rstrip()
    if isinstance(error, URLError):
        error = error.reason if isinstance(error.reason, BaseException) else error
    if isinstance(error, TimeoutError):
        return f"timed out after {timeout:g} s"
    if isinstance(error, _BadBodyError):
        return str(error)
    return f"{type(error).__name__}: {error}"
