"""Using several cores from NumPy code: BLAS threads, and work split across Python threads.

numpy's matrix products run on its BLAS's thread pool (OPENBLAS_NUM_THREADS, read once
at import); everything else NumPy does runs in the calling thread. For the convolution
step and the optimizer's large updates dlscratch does better by splitting the work itself
(by images, or by elements) across Python threads - NumPy releases the GIL inside its
loops - with single-threaded products: each core then works on its own data, and no
thread waits for a BLAS pool that another thread holds.

- ``split_count()``: how many threads such work may use: the BLAS's thread count, as
  configured (1 where it cannot be read).
- ``single_threaded_blas()``: a ``with`` block during which products use one thread.
- ``run_parallel(tasks)``: call the functions at once, one per thread, and return
  their results in order.

The BLAS thread count is read and set through the OpenBLAS that numpy's wheels bundle
(or a system OpenBLAS). With another BLAS (MKL, Apple Accelerate) ``split_count`` is 1,
nothing is changed, and all work runs in the calling thread, as plain NumPy code would.
"""

from __future__ import annotations

import ctypes
import glob
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["run_parallel", "single_threaded_blas", "split_count"]

_SYMBOLS = (  # (get, set) function names, numpy's own wheels first
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
)
_controls: Any = False  # (get, set) once looked up; None when there is no OpenBLAS to talk to
_configured: int | None = None  # the thread count while single_threaded_blas has set it to 1
_pool: ThreadPoolExecutor | None = None  # the helper threads, made on first use
_pool_size = 0


def _candidate_libraries() -> list[str]:
    """Files that may be numpy's OpenBLAS: its wheel's bundled copy, or what the process mapped."""
    numpy_dir = os.path.dirname(np.__file__)
    paths = glob.glob(os.path.join(numpy_dir + ".libs", "*openblas*"))  # Linux and Windows wheels
    paths += glob.glob(os.path.join(numpy_dir, ".dylibs", "*openblas*"))  # macOS wheels
    try:
        with open("/proc/self/maps") as maps:
            paths += sorted({line.split()[-1] for line in maps if "openblas" in line and "/" in line})
    except OSError:
        pass
    return paths


def _blas_controls() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    global _controls
    if _controls is False:
        _controls = None
        for path in _candidate_libraries():
            try:
                library = ctypes.CDLL(path)
            except OSError:
                continue
            found = [(getattr(library, g, None), getattr(library, s, None)) for g, s in _SYMBOLS]
            found = [(g, s) for g, s in found if g is not None and s is not None]
            if found:
                get, set_ = found[0]
                get.restype, set_.argtypes = ctypes.c_int, [ctypes.c_int]
                _controls = (get, set_)
                break
    return _controls


def split_count() -> int:
    """How many threads split work may use: the BLAS's configured thread count (1 if unknown)."""
    if _configured is not None:
        return _configured
    controls = _blas_controls()
    return max(int(controls[0]()), 1) if controls else 1


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the block with one-thread matrix products, then restore the thread count.

    Nested blocks are free. Not meant for several Python threads of a program at once:
    the last one out restores the count for all.
    """
    global _configured
    controls = _blas_controls()
    if controls is None or _configured is not None:
        yield
        return
    get, set_ = controls
    _configured = get()
    set_(1)
    try:
        yield
    finally:
        set_(_configured)
        _configured = None


def run_parallel(tasks: Sequence[Callable[[], Any]]) -> list[Any]:
    """Call the tasks at once - the first in this thread, the others in helper threads - and
    return their results in order (an exception in any task is raised here)."""
    if len(tasks) == 1:
        return [tasks[0]()]
    global _pool, _pool_size
    if _pool is None or _pool_size < len(tasks) - 1:
        _pool_size = len(tasks) - 1
        _pool = ThreadPoolExecutor(max_workers=_pool_size, thread_name_prefix="dlscratch")
    futures = [_pool.submit(task) for task in tasks[1:]]
    first = tasks[0]()
    return [first, *(future.result() for future in futures)]
