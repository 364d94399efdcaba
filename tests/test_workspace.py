"""kernels.workspace.scratch: one block per name and thread, grown on demand, shared by every shape."""

from __future__ import annotations

import threading

import numpy as np

from dlscratch.kernels.workspace import scratch


def test_one_name_shares_its_memory_across_shapes_and_dtypes():
    big = scratch("test big", (4, 6), np.float64)
    small = scratch("test big", (3,), np.float32)
    assert (big.shape, big.dtype, small.shape, small.dtype) == ((4, 6), np.float64, (3,), np.float32)
    assert np.shares_memory(big, small)  # the largest layer's block serves the smaller ones
    assert np.shares_memory(scratch("test big", (4, 6), np.float64), big)


def test_a_larger_request_grows_the_block_and_other_names_are_apart():
    first = scratch("test grow", (2,), np.float32)
    grown = scratch("test grow", (100,), np.float32)
    assert not np.shares_memory(first, grown)
    assert np.shares_memory(scratch("test grow", (2,), np.float32), grown)
    assert not np.shares_memory(scratch("test other", (100,), np.float32), grown)
    grown[:] = 1.5  # the whole shape is usable memory
    assert grown.sum() == 150.0


def test_each_thread_has_its_own_blocks():
    here = scratch("test thread", (10,), np.float64)
    there = []
    worker = threading.Thread(target=lambda: there.append(scratch("test thread", (10,), np.float64)))
    worker.start()
    worker.join()
    assert not np.shares_memory(here, there[0])


def test_empty_shapes_work():
    assert scratch("test empty", (0, 5), np.float32).shape == (0, 5)
