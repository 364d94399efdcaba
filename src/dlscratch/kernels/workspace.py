"""Scratch arrays that the kernels reuse from call to call, one set per thread.

A kernel's work arrays for one chunk (the columns, the transformed tiles, ...) are
written and read within that chunk, so each thread can keep one of each and reuse it for
every chunk, layer and step: fresh multi-megabyte arrays on every call would cost more
in page faults than the arithmetic, and reused ones stay in the core's cache. Arrays a
kernel keeps from its forward pass for its backward pass are its own, never scratch.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

__all__ = ["scratch"]

_local = threading.local()


def scratch(name: str, shape: tuple[int, ...], dtype: Any, xp: Any = np) -> Any:
    """This thread's work array `name` of this shape (a tuple) and dtype (contents undefined).

    The same (name, shape, dtype) returns the same array again in this thread, so two
    arrays used at once need two names; another shape or dtype gets an array of its own.
    """
    try:
        arrays = _local.arrays
    except AttributeError:
        arrays = _local.arrays = {}
    key = (name, shape, dtype, xp)
    array = arrays.get(key)
    if array is None:
        array = arrays[key] = xp.empty(shape, dtype=dtype)
    return array
