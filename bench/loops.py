"""The two loops, dlscratch's and PyTorch's, and what each measures about itself.

``run_side(side, workload, threads)`` runs one side in the current process and returns
its measurements; the harness calls it in a fresh subprocess per run (``bench.worker``),
so that each side gets its own thread settings and its own peak-memory count.
"""

from __future__ import annotations

import inspect
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np

from bench.workloads import SIDES, Workload, evaluation_iterations, flops

# ----------------------------------------------------------------------------- memory


def _status_kib(field: str) -> int | None:
    """A VmRSS/VmHWM line of /proc/self/status in KiB, or None where there is no /proc."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Set the peak resident size (VmHWM) back to the current size; False if the OS can't."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def rss_mib() -> float:
    """Resident memory now, MiB (VmRSS; the lifetime peak where /proc is missing)."""
    kib = _status_kib("VmRSS")
    if kib is None:
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // (1024 if sys.platform == "darwin" else 1)
    return kib / 1024


def peak_rss_mib() -> float:
    """Peak resident memory since the last reset_peak_rss(), MiB (VmHWM, or ru_maxrss)."""
    kib = _status_kib("VmHWM")
    if kib is None:
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // (1024 if sys.platform == "darwin" else 1)
    return kib / 1024


# ----------------------------------------------------------------------------- GEMM peak


def numpy_gemm_peak(size: int = 1024, repeats: int = 5) -> float:
    """Best float32 GFLOP/s of numpy's size x size matrix product (numpy's BLAS, this process)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty((size, size), np.float32)
    np.matmul(a, b, out=out)  # warm up: thread pool, caches
    best = min(_timed(lambda: np.matmul(a, b, out=out)) for _ in range(repeats))
    return 2.0 * size**3 / best / 1e9


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


# ----------------------------------------------------------------------------- the two sides


def _load_data(workload: Workload, as_uint8: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fashion-MNIST as (N, 784) or (N, 1, 28, 28); uint8 pixels, or float32 in [0, 1]."""
    from dlscratch.datasets import load_fashion_mnist

    (x_train, t_train), (x_test, t_test) = load_fashion_mnist(
        normalize=not as_uint8, flatten=not workload.images
    )
    return x_train, t_train, x_test, t_test


def _build_dlscratch_net(workload: Workload) -> Any:
    from dlscratch import SimpleConvNet, TwoLayerNet

    if workload.model == "two-layer":
        return TwoLayerNet(784, 50, 10, weight_init_std=0.01, seed=workload.seed, dtype=np.float32)
    return SimpleConvNet(weight_init_std=0.01, seed=workload.seed, dtype=np.float32)


def run_dlscratch(workload: Workload) -> dict[str, Any]:
    """The loop as a dlscratch user writes it: a network, the Trainer, train()."""
    from dlscratch.train import Trainer

    peak = numpy_gemm_peak()
    reset_peak_rss()
    base = rss_mib()
    # uint8 pixels scaled batch by batch where the Trainer can (a quarter of the memory)
    scale_on_the_fly = "input_scale" in inspect.signature(Trainer).parameters
    x_train, t_train, x_test, t_test = _load_data(workload, as_uint8=scale_on_the_fly)
    network = _build_dlscratch_net(workload)
    extra = {"input_scale": 1 / 255} if scale_on_the_fly else {}
    trainer = Trainer(
        network,
        x_train,
        t_train,
        x_test,
        t_test,
        iters=workload.iters,
        mini_batch_size=workload.batch_size,
        optimizer=workload.optimizer,
        optimizer_param={"lr": workload.lr},
        evaluate_sample_num_per_epoch=workload.eval_samples,
        verbose=False,
        seed=workload.seed,
        **extra,
    )
    eval_times: list[float] = []
    evaluate = trainer.evaluate

    def timed_evaluate() -> tuple[float, float]:
        started = time.perf_counter()
        result = evaluate()
        eval_times.append(time.perf_counter() - started)
        return result

    trainer.evaluate = timed_evaluate  # type: ignore[method-assign]
    load_peak, before_loop = peak_rss_mib(), rss_mib()
    loop_reset = reset_peak_rss()
    started = time.perf_counter()
    history = trainer.train()
    whole = time.perf_counter() - started
    result = {
        "whole_s": whole,
        "loop_eval_times_s": eval_times,
        "train_acc": history.train_acc[-1],
        "test_acc": history.test_acc[-1],
        "final_loss": history.train_loss[-1],
        "numpy_gemm_peak_gflops": peak,
    }
    if workload.final_eval_samples != 0:
        n = workload.final_eval_samples
        accuracy = getattr(trainer, "accuracy", network.accuracy)
        started = time.perf_counter()
        result["test_acc"] = accuracy(x_test[:n], t_test[:n])
        result["final_eval_s"] = time.perf_counter() - started
    result["memory"] = _memory(base, load_peak, before_loop, peak_rss_mib(), loop_reset)
    return result


def run_pytorch(workload: Workload, threads: int) -> dict[str, Any]:
    """The same run written as idiomatic PyTorch: nn.Sequential, F.cross_entropy, torch.optim."""
    import torch
    import torch.nn.functional as F  # noqa: N812 (PyTorch's own idiom)
    from torch import nn

    torch.set_num_threads(threads)
    peak = _torch_gemm_peak(torch)
    reset_peak_rss()
    base = rss_mib()
    x_np, t_np, xt_np, tt_np = _load_data(workload, as_uint8=False)
    x_train, t_train = torch.from_numpy(x_np), torch.from_numpy(t_np)
    x_test, t_test = torch.from_numpy(xt_np), torch.from_numpy(tt_np)
    reference = _build_dlscratch_net(workload)  # the same initial weights, copied below
    if workload.model == "two-layer":
        model = nn.Sequential(nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 10))
        linears, convs = [model[0], model[2]], []
    else:
        model = nn.Sequential(
            nn.Conv2d(1, 30, 5),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Flatten(),
            nn.Linear(4320, 100),
            nn.ReLU(),
            nn.Linear(100, 10),
        )
        linears, convs = [model[4], model[6]], [model[0]]
    _copy_weights(torch, reference, convs, linears)
    del reference
    optimizer = (
        torch.optim.SGD(model.parameters(), lr=workload.lr)
        if workload.optimizer == "sgd"
        else torch.optim.Adam(model.parameters(), lr=workload.lr)
    )
    rng = np.random.default_rng(workload.seed)  # the Trainer's sampler, seeded alike
    n_eval = workload.eval_samples
    train_size = len(x_train)

    def accuracy(x: Any, t: Any) -> float:
        correct = 0
        with torch.no_grad():
            for start in range(0, len(x), workload.eval_batch):
                scores = model(x[start : start + workload.eval_batch])
                correct += int((scores.argmax(dim=1) == t[start : start + workload.eval_batch]).sum())
        return correct / len(x)

    eval_times: list[float] = []
    accuracies: list[tuple[float, float]] = []

    def evaluate() -> None:
        started = time.perf_counter()
        train_acc = accuracy(x_train[:n_eval], t_train[:n_eval])
        accuracies.append((train_acc, accuracy(x_test[:n_eval], t_test[:n_eval])))
        eval_times.append(time.perf_counter() - started)

    schedule = set(evaluation_iterations(workload, train_size))
    losses: list[float] = []
    load_peak, before_loop = peak_rss_mib(), rss_mib()
    loop_reset = reset_peak_rss()
    started = time.perf_counter()
    evaluate()
    for it in range(1, workload.iters + 1):
        # the numbers choice(train_size, batch) draws, as the Trainer does
        batch = torch.from_numpy(rng.integers(0, train_size, workload.batch_size))
        loss = F.cross_entropy(model(x_train[batch]), t_train[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())  # recorded every iteration, as the Trainer does
        if it in schedule:
            evaluate()
    whole = time.perf_counter() - started
    result = {
        "whole_s": whole,
        "loop_eval_times_s": eval_times,
        "train_acc": accuracies[-1][0],
        "test_acc": accuracies[-1][1],
        "final_loss": losses[-1],
        "torch_gemm_peak_gflops": peak,
        "torch_version": torch.__version__,
    }
    if workload.final_eval_samples != 0:
        n = workload.final_eval_samples
        started = time.perf_counter()
        result["test_acc"] = accuracy(x_test[:n], t_test[:n])
        result["final_eval_s"] = time.perf_counter() - started
    result["memory"] = _memory(base, load_peak, before_loop, peak_rss_mib(), loop_reset)
    return result


def _copy_weights(torch: Any, reference: Any, convs: list[Any], linears: list[Any]) -> None:
    """Give the torch modules the dlscratch network's initial weights (W1 b1 W2 b2 ...)."""
    params = reference.params
    with torch.no_grad():
        for i, module in enumerate([*convs, *linears], start=1):
            W = params[f"W{i}"]
            # torch's Linear keeps weight as (out, in), dlscratch's Affine as (in, out)
            module.weight.copy_(torch.from_numpy(W if W.ndim == 4 else np.ascontiguousarray(W.T)))
            module.bias.copy_(torch.from_numpy(params[f"b{i}"]))


def _torch_gemm_peak(torch: Any, size: int = 1024, repeats: int = 5) -> float:
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    out = torch.empty(size, size)
    torch.mm(a, b, out=out)
    best = min(_timed(lambda: torch.mm(a, b, out=out)) for _ in range(repeats))
    return 2.0 * size**3 / best / 1e9


def _memory(
    base: float, load_peak: float, before_loop: float, loop_peak: float, reset_worked: bool
) -> dict[str, Any]:
    """Peak resident memory (VmHWM), MiB.

    peak_mib: the highest resident size from data loading to the end, minus the size after
    the imports: the libraries' code does not count; the data, the network, the optimizer
    state and every temporary do. loop_mib: the highest resident size during the loop and
    the final evaluation, minus the size just before the loop.
    """
    if not reset_worked:  # no per-phase counter (no /proc): only the lifetime peak is known
        return {"base_mib": base, "peak_mib": None, "loop_mib": None, "lifetime_peak_mib": loop_peak}
    return {
        "base_mib": base,
        "peak_mib": max(load_peak, loop_peak) - base,
        "loop_mib": loop_peak - before_loop,
    }


def run_side(side: str, workload: Workload, threads: int) -> dict[str, Any]:
    """Run one side of a workload here and return its measurements plus the settings."""
    if side == "dlscratch":
        result = run_dlscratch(workload)
    elif side == "pytorch":
        result = run_pytorch(workload, threads)
    else:
        raise ValueError(f"unknown side {side!r}; choose one of {SIDES}")
    step_flops, sample_flops = flops(workload)
    loop_evals = result["loop_eval_times_s"]
    steps_s = result["whole_s"] - sum(loop_evals)
    if "final_eval_s" in result:
        eval_s = result["final_eval_s"]
        n = workload.final_eval_samples
        eval_samples = 10000 if n is None else min(n, 10000)
    else:
        eval_s = float(np.mean(loop_evals))
        n = workload.eval_samples
        eval_samples = 70000 if n is None else 2 * n
    result.update(
        side=side,
        workload=asdict(workload),
        threads=threads,
        env_threads={
            k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
        },
        numpy_version=np.__version__,
        step_s=steps_s / workload.iters,
        eval_s=eval_s,
        eval_samples=eval_samples,
        step_gflops=step_flops * workload.iters / steps_s / 1e9,
        eval_gflops=sample_flops * eval_samples / eval_s / 1e9,
    )
    return result
