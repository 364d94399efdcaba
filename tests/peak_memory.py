"""Peak memory of one loader call on one file, measured in a child process.

A hostile file must be refused without allocating from its claims. The only honest way to
see what a call allocated (NumPy, zlib and the pickle machine allocate outside Python's
tracemalloc) is the process's peak resident size, so each measurement runs in a fresh
interpreter: the loader is imported and warmed up on a junk file, the peak is read, the
call is made, and the peak is read again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MiB = 1 << 20
# What the interpreter may add while running any call at all (imports already done): its
# own buffers, NumPy's first allocations, zlib's window. Hostile files asked for gigabytes.
SLACK = 24 * MiB

_CHILD = """
import json, resource, sys
from pathlib import Path
module, function, path, junk = sys.argv[1:]
loader = getattr(__import__(module, fromlist=[function]), function)

def attempt(target):
    try:
        loader(target)
        return "returned"
    except BaseException as error:
        return type(error).__name__

attempt(junk)  # imports everything the loader uses lazily
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
outcome = attempt(path)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
print(json.dumps({"outcome": outcome, "growth": (after - before) * scale}))
"""


def peak_growth(loader: str, path: Path) -> tuple[str, int]:
    """(outcome, bytes) of calling loader ("module:function", a module of dlscratch or of
    the tests folder) on path in a fresh interpreter.

    outcome is the exception's class name, or "returned"; bytes is how much the call raised
    the process's peak resident size.
    """
    module, function = loader.split(":")
    junk = path.with_name(path.name + ".junk")
    junk.write_bytes(b"not a file of any kind")
    # this checkout's dlscratch, as the tests import it, and the tests' own helper modules
    folders = [
        str(Path(__file__).parents[1] / "src"),
        str(Path(__file__).parent),
        os.environ.get("PYTHONPATH"),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, folders))}
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, module, function, str(path), str(junk)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    )
    report = json.loads(result.stdout.splitlines()[-1])
    return report["outcome"], report["growth"]


def assert_refused_within_memory(loader: str, path: Path, multiple: int = 4) -> None:
    """loader refuses path with ValueError, raising peak memory by at most multiple times the
    file's size plus SLACK."""
    if sys.platform == "win32":
        pytest.skip("peak memory is read with the POSIX resource module")
    outcome, growth = peak_growth(loader, path)
    size = path.stat().st_size
    assert outcome == "ValueError", f"{loader} on {path.name}: {outcome}"
    assert growth <= multiple * size + SLACK, (
        f"{loader} on {path.name} ({size} bytes) raised peak memory by {growth / MiB:.1f} MiB"
    )
