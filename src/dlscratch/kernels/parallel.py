"""How the fast kernels use several cores: a fixed partition of the batch, helper threads, one-thread BLAS.

A kernel cuts its batch into chunks whose sizes depend on the layer's geometry only,
never on the number of threads (``chunks``), and ``parallel_map`` runs one function per
chunk, spread over the threads, returning the results in chunk order. A kernel that adds
up per-chunk results (a weight gradient) adds them in that order, so its numbers are the
same bits on one thread and on four. NumPy releases the GIL inside its loops, so the
threads run at once.

While the chunks run, the BLAS (numpy's matrix products) is limited to one thread,
through threadpoolctl and only for that time: every core then works on its own chunk,
and a product's sums are computed the same way whatever the thread count.

How many threads: ``set_num_threads(n)``, or by default the BLAS's own thread count as
the process started (``OPENBLAS_NUM_THREADS`` and friends), read once.
"""

from __future__ import annotations

import atexit
import itertools
import operator
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache
from typing import Any, TypeVar

from threadpoolctl import ThreadpoolController

__all__ = ["chunks", "get_num_threads", "in_order_sum", "one_thread_blas", "parallel_map", "set_num_threads"]

T = TypeVar("T")


@cache
def _blas() -> ThreadpoolController:
    """The BLAS libraries loaded in this process (numpy's among them), found once."""
    return ThreadpoolController().select(user_api="blas")


@cache
def _blas_threads() -> int:
    """The BLAS's thread count as configured when first asked (1 when none is found)."""
    counts = [library["num_threads"] for library in _blas().info()]
    return max(min(counts), 1) if counts else 1


class _Workers:
    """The helper threads: made when first needed, shut down when their number changes or at exit."""

    def __init__(self) -> None:
        self.requested: int | None = None  # set_num_threads' value; None: the BLAS's count
        self._pool: ThreadPoolExecutor | None = None
        self._size = 0
        self._lock = threading.Lock()

    def count(self) -> int:
        return self.requested if self.requested is not None else _blas_threads()

    def pool(self, helpers: int) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None or self._size != helpers:
                self.shutdown()
                self._pool = ThreadPoolExecutor(max_workers=helpers, thread_name_prefix="dlscratch")
                self._size = helpers
            return self._pool

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


_WORKERS = _Workers()
atexit.register(_WORKERS.shutdown)


def set_num_threads(n: int | None) -> None:
    """Use n threads in dlscratch's fast kernels (None: the BLAS's configured count, the default).

    The results do not depend on n, only the time. ValueError unless n >= 1.
    """
    if n is not None:
        n = operator.index(n)
        if n < 1:
            raise ValueError(f"set_num_threads expected n >= 1 or None, got {n}")
    with _WORKERS._lock:
        _WORKERS.requested = n
        _WORKERS.shutdown()  # made again, with the new size, when next needed


def get_num_threads() -> int:
    """How many threads dlscratch's fast kernels use."""
    return _WORKERS.count()


@contextmanager
def one_thread_blas() -> Iterator[None]:
    """Matrix products on one thread inside the block; the BLAS's own setting again after it."""
    if _blas_threads() == 1:  # nothing to limit (and nothing to restore)
        yield
        return
    with _blas().limit(limits=1):
        yield


def chunks(n: int, size: int) -> list[slice]:
    """range(n) cut into consecutive slices of about `size` (at least 1) items, nearly equal."""
    count = max(1, -(-n // max(size, 1)))
    bounds = [n * i // count for i in range(count + 1)]
    return [slice(bounds[i], bounds[i + 1]) for i in range(count)]


def parallel_map(work: Callable[[T], Any], items: Sequence[T]) -> list[Any]:
    """[work(item) for item in items], the items spread over the threads; results in item order.

    Each thread takes the next item still to do, so uneven items balance out; the BLAS runs
    one thread meanwhile. An exception in any item is raised here.
    """
    threads = min(get_num_threads(), len(items))
    if threads <= 1:
        with one_thread_blas():
            return [work(item) for item in items]
    results: list[Any] = [None] * len(items)
    following = itertools.count()  # next() is atomic under the GIL: each index is taken once

    def drain() -> None:
        for index in iter(following.__next__, None):
            if index >= len(items):
                return
            results[index] = work(items[index])

    with one_thread_blas():
        helpers = [_WORKERS.pool(threads - 1).submit(drain) for _ in range(threads - 1)]
        try:
            drain()
        finally:  # the helpers finish (or fail) before the BLAS gets its threads back
            for helper in helpers:
                helper.result()
    return results


def in_order_sum(parts: Sequence[Any]) -> Any:
    """parts[0] + parts[1] + ... added left to right into a new array: the same bits on any thread count."""
    total = parts[0].copy()
    for part in parts[1:]:
        total += part
    return total
