"""dlscratch.kernels.parallel: the thread count, the parallel map, the scoped BLAS limit, the pool.

The last test trains in two fresh processes, one with one BLAS thread and one with two,
and compares the weights bit for bit: the kernels' fixed partition of the batch and fixed
order of sums make the arithmetic independent of the thread count.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from threadpoolctl import threadpool_info

import dlscratch
from dlscratch.kernels import parallel
from dlscratch.kernels.parallel import chunks, get_num_threads, in_order_sum, one_thread_blas, parallel_map


@pytest.fixture
def threads():
    """set_num_threads for one test, put back to the default after it."""
    yield dlscratch.set_num_threads
    dlscratch.set_num_threads(None)


def _blas_threads() -> list[int]:
    return [library["num_threads"] for library in threadpool_info() if library["user_api"] == "blas"]


def test_the_thread_count_is_the_blas_count_unless_set(threads):
    assert get_num_threads() == parallel._blas_threads() >= 1
    threads(3)
    assert get_num_threads() == dlscratch.get_num_threads() == 3
    threads(None)
    assert get_num_threads() == parallel._blas_threads()
    for bad in (0, -1):
        with pytest.raises(ValueError, match="set_num_threads expected n >= 1 or None"):
            threads(bad)
    with pytest.raises(TypeError):
        threads(1.5)


def test_parallel_map_returns_the_results_in_order_and_uses_every_thread(threads):
    threads(2)
    seen = set()

    def work(item):
        seen.add(threading.get_ident())
        time.sleep(0.01)  # long enough that one thread cannot take every item
        return item * item

    assert parallel_map(work, list(range(8))) == [item * item for item in range(8)]
    assert len(seen) == 2 and threading.get_ident() in seen
    threads(1)
    seen.clear()
    assert parallel_map(work, [3, 4]) == [9, 16] and seen == {threading.get_ident()}


def test_parallel_map_raises_what_an_item_raised_after_the_others_finish(threads):
    threads(2)
    finished = []

    def work(item):
        if item == 1:
            raise KeyError("item 1")
        time.sleep(0.02)
        finished.append(item)

    with pytest.raises(KeyError, match="item 1"):
        parallel_map(work, [0, 1, 2, 3])
    assert sorted(finished) == [0, 2, 3]


def test_the_blas_is_limited_inside_the_map_only(threads):
    threads(2)
    before = _blas_threads()
    inside = parallel_map(lambda item: _blas_threads(), [0, 1])
    assert inside == [[1] * len(before)] * 2
    assert _blas_threads() == before
    with one_thread_blas():
        assert _blas_threads() == [1] * len(before)
    assert _blas_threads() == before


def test_the_pool_is_shut_down_when_the_count_changes(threads):
    threads(3)
    parallel_map(lambda item: item, [0, 1, 2])
    old = parallel._WORKERS._pool
    assert old is not None
    threads(2)
    assert parallel._WORKERS._pool is None and old._shutdown
    parallel_map(lambda item: item, [0, 1])
    assert parallel._WORKERS._size == 1


def test_chunks_depend_on_the_sizes_only():
    assert chunks(100, 10) == [slice(10 * i, 10 * i + 10) for i in range(10)]
    assert chunks(10, 4) == [slice(0, 3), slice(3, 6), slice(6, 10)]  # nearly equal
    assert chunks(3, 100) == [slice(0, 3)] and chunks(5, 0) == [slice(i, i + 1) for i in range(5)]
    assert chunks(0, 4) == [slice(0, 0)]


def test_in_order_sum_adds_left_to_right_into_a_new_array():
    import numpy as np

    parts = [np.array([1e16], dtype=np.float64), np.array([1.0]), np.array([-1e16])]
    total = in_order_sum(parts)
    assert total[0] == 0.0 and total is not parts[0] and parts[0][0] == 1e16  # (1e16 + 1) - 1e16


TRAIN = textwrap.dedent(
    """
    import hashlib, numpy as np
    from dlscratch import Adam, DeepConvNet, SimpleConvNet, get_num_threads
    wide = {"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1}
    networks = [
        DeepConvNet((1, 12, 12), *[wide] * 6, hidden_size=20, output_size=5, seed=0, dtype=np.float32),
        # 8 x 12 x 12 features into 64: an Affine large enough to be cut in pieces (AffineStep)
        SimpleConvNet((1, 28, 28), {"filter_num": 8, "filter_size": 5, "pad": 0, "stride": 1}, 64, 5,
                      seed=0, dtype=np.float32),
        SimpleConvNet((2, 13, 13), {"filter_num": 8, "filter_size": 3, "pad": 1, "stride": 2}, 20, 5,
                      seed=0, dtype=np.float64),
    ]
    rng = np.random.default_rng(0)
    digest = hashlib.sha256()
    for network in networks:
        optimizer = Adam(lr=0.01)
        shape = network.config()["input_dim"]
        for _ in range(3):
            x, t = rng.random((64, *shape)), rng.integers(0, 5, 64)
            loss, grads = network.loss_and_gradient(x, t)
            optimizer.update(network.params, grads)
            digest.update(np.float64(loss).tobytes())
        for value in network.params.values():
            digest.update(value.tobytes())
        digest.update(np.float64(network.accuracy(x, t)).tobytes())
    from dlscratch.kernels import AffineStep, plan_steps
    assert any(isinstance(step, AffineStep) for step in plan_steps(list(networks[1].layers.values())))
    print(get_num_threads(), digest.hexdigest())
    """
)


@pytest.mark.slow
def test_training_gives_the_same_bits_on_one_blas_thread_and_on_two():
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    outputs = []
    for count in ("1", "2"):
        env = {
            **os.environ,
            "OPENBLAS_NUM_THREADS": count,
            "OMP_NUM_THREADS": count,
            "MKL_NUM_THREADS": count,
        }
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        done = subprocess.run(
            [sys.executable, "-c", TRAIN], env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout.split())
    (one, first), (two, second) = outputs
    assert (one, two) == ("1", "2")  # the kernels followed the BLAS's setting
    assert first == second
