"""Scratch arrays that the kernels reuse from call to call, one set per thread.

A kernel's work arrays for one chunk (the columns, the transformed tiles, ...) are
written and read within that chunk, so each thread can keep one of each and reuse it for
every chunk, layer and step: fresh multi-megabyte arrays on every call would cost more
in page faults than the arithmetic, and reused ones stay in the core's cache. Arrays a
kernel keeps from its forward pass for its backward pass are its own, never scratch.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

__all__ = ["scratch"]

_local = threading.local()


def scratch(name: str, shape: tuple[int, ...], dtype: Any, xp: Any = np) -> Any:
    """This thread's work array `name`, of this shape (a tuple) and dtype (contents undefined).

    Each thread keeps one block of memory per name, grown when a larger array is asked
    for, and returns its start as an array of the shape asked: every layer's kernel shares
    the same few blocks, so the memory held is that of the largest layer, not of all of
    them. Two arrays used at once therefore need two names.
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    try:
        blocks = _local.blocks
    except AttributeError:
        blocks = _local.blocks = {}
    block = blocks.get((name, xp))
    if block is None or block.size < nbytes:
        block = blocks[name, xp] = xp.empty(nbytes, dtype=np.uint8)
    return block[:nbytes].view(dtype).reshape(shape)
