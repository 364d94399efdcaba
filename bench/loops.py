"""The loops, dlscratch's, PyTorch's and the tuned NumPy reference's, and what each measures.

``run_side(side, workload, threads)`` runs one side in the current process and returns
its measurements; the harness calls it in a fresh subprocess per run (``bench.worker``),
so that each side gets its own thread settings and its own peak-memory count. The
"numpy" side (two-layer workloads only) is the hand-written loop of ``bench.numpy_loop``.
"""

from __future__ import annotations

import copy
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np

from bench import numpy_loop
from bench.workloads import ALL_SIDES, NUMPY_SIDE, Workload, evaluation_iterations, flops

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


# ----------------------------------------------------------------------------- the sides


SCALE = 1 / 255  # uint8 pixel -> [0, 1]: every side keeps uint8 images and scales each batch
FIRST_LOSSES = 50  # the losses of the first steps are kept in the result (same_steps of them compared)


def _load_data(workload: Workload) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fashion-MNIST as (N, 784) or (N, 1, 28, 28) uint8 pixels, and int labels."""
    from dlscratch.datasets import load_fashion_mnist

    (x_train, t_train), (x_test, t_test) = load_fashion_mnist(normalize=False, flatten=not workload.images)
    return x_train, t_train, x_test, t_test


def _data_mib(*arrays: Any) -> float:
    """The memory the stored data set takes: the arrays' bytes, MiB (numpy arrays or torch tensors)."""
    return sum(a.nbytes if hasattr(a, "nbytes") else a.element_size() * a.nelement() for a in arrays) / 2**20


def _build_dlscratch_net(workload: Workload) -> Any:
    """The workload's dlscratch network, float32, seeded: the initial weights every side starts from."""
    from dlscratch import DeepConvNet, SimpleConvNet, TwoLayerNet

    if workload.model == "two-layer":
        return TwoLayerNet(784, 50, 10, weight_init_std=0.01, seed=workload.seed, dtype=np.float32)
    if workload.model == "deep-conv":
        # the book's settings, with the inverted dropout torch's nn.Dropout computes
        return DeepConvNet(seed=workload.seed, dtype=np.float32, inverted_dropout=True)
    return SimpleConvNet(weight_init_std=0.01, seed=workload.seed, dtype=np.float32)


def run_dlscratch(workload: Workload) -> dict[str, Any]:
    """The loop as a dlscratch user writes it: a network, the Trainer, train()."""
    from dlscratch.train import Trainer

    peak = numpy_gemm_peak()
    reset_peak_rss()
    base = rss_mib()
    data = _load_data(workload)
    x_test, t_test = data[2:]

    def trainer_for(network: Any) -> Any:
        return Trainer(
            network,
            *data,  # x_train, t_train, x_test, t_test
            iters=workload.iters,
            mini_batch_size=workload.batch_size,
            optimizer=workload.optimizer,
            optimizer_param={"lr": workload.lr},
            evaluate_sample_num_per_epoch=workload.eval_samples,
            verbose=False,
            seed=workload.seed,
            input_scale=SCALE,  # uint8 pixels scaled batch by batch
        )

    warm = trainer_for(_build_dlscratch_net(workload))  # a network of its own, thrown away
    for _ in range(workload.warmup):
        warm.train_step()
    warm.accuracy(x_test[: workload.eval_batch], t_test[: workload.eval_batch])
    del warm
    network = _build_dlscratch_net(workload)
    trainer = trainer_for(network)
    eval_times: list[float] = []
    final: dict[str, float] = {}  # the Trainer's own whole-test evaluation after the loop, if it makes one
    accuracy = trainer.accuracy
    # an evaluation is every accuracy call between two steps (train and test split); the
    # callbacks, which follow each step and its evaluation, close it
    state = {"loop_over": False, "evaluating_s": 0.0}

    def timed_accuracy(x: np.ndarray, t: np.ndarray) -> float:
        started = time.perf_counter()
        result = accuracy(x, t)
        seconds = time.perf_counter() - started
        if state["loop_over"]:
            final.update(seconds=seconds, samples=len(x))
        else:
            state["evaluating_s"] += seconds
        return result

    def close_evaluation(trainer: Any) -> None:
        if state["evaluating_s"]:
            eval_times.append(state["evaluating_s"])
            state["evaluating_s"] = 0.0
        state["loop_over"] = trainer.current_iter == trainer.max_iter

    trainer.accuracy = timed_accuracy  # type: ignore[method-assign]
    trainer.callbacks.append(close_evaluation)
    load_peak, before_loop = peak_rss_mib(), rss_mib()
    loop_reset = reset_peak_rss()
    started = time.perf_counter()
    history = trainer.train()
    whole = time.perf_counter() - started
    result = {
        "whole_s": whole - final.get("seconds", 0.0),  # the other sides' whole runs end with the loop
        "loop_eval_times_s": eval_times,
        "train_acc": history.train_acc[-1],
        "test_acc": history.test_acc[-1],
        "final_loss": history.train_loss[-1],
        "losses": history.train_loss[:FIRST_LOSSES],
        "numpy_gemm_peak_gflops": peak,
    }
    if workload.final_eval_samples != 0:
        n = workload.final_eval_samples
        if final and final["samples"] == min(n or len(x_test), len(x_test)):  # the Trainer's own final pass
            result["test_acc"], result["final_eval_s"] = trainer.final_test_acc, final["seconds"]
        else:
            started = time.perf_counter()
            result["test_acc"] = accuracy(x_test[:n], t_test[:n])
            result["final_eval_s"] = time.perf_counter() - started
    result["memory"] = _memory(base, load_peak, before_loop, peak_rss_mib(), loop_reset, _data_mib(*data))
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
    # the same storage as dlscratch's: uint8 images, each batch scaled to float32 as it is used
    data = tuple(torch.from_numpy(array) for array in _load_data(workload))
    x_train, t_train, x_test, t_test = data

    def as_input(x: Any) -> Any:
        return x.to(torch.float32).mul_(SCALE)

    def train_and_evaluate(model: Any) -> tuple[Callable[[np.ndarray], float], Callable[[Any, Any], float]]:
        optimizer = (
            torch.optim.SGD(model.parameters(), lr=workload.lr)
            if workload.optimizer == "sgd"
            else torch.optim.Adam(model.parameters(), lr=workload.lr)
        )

        def accuracy(x: Any, t: Any) -> float:
            correct = 0
            model.eval()  # no dropout, as dlscratch's accuracy (train_flg=False)
            with torch.no_grad():
                for start in range(0, len(x), workload.eval_batch):
                    scores = model(as_input(x[start : start + workload.eval_batch]))
                    correct += int((scores.argmax(dim=1) == t[start : start + workload.eval_batch]).sum())
            model.train()
            return correct / len(x)

        def train_step(batch: np.ndarray) -> float:
            rows = torch.from_numpy(batch)
            loss = F.cross_entropy(model(as_input(x_train[rows])), t_train[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return loss.item()

        return train_step, accuracy

    warm_step, warm_accuracy = train_and_evaluate(_torch_twin(torch, nn, workload))  # thrown away
    rng = np.random.default_rng(workload.seed + 1)
    for _ in range(workload.warmup):
        warm_step(rng.integers(0, len(x_train), workload.batch_size))
    warm_accuracy(x_test[: workload.eval_batch], t_test[: workload.eval_batch])
    train_step, accuracy = train_and_evaluate(_torch_twin(torch, nn, workload))
    result = _timed_loop(workload, data, train_step, accuracy, base)
    result.update(torch_gemm_peak_gflops=peak, torch_version=torch.__version__)
    return result


def _timed_loop(
    workload: Workload,
    data: tuple[Any, Any, Any, Any],
    train_step: Callable[[np.ndarray], float],
    accuracy: Callable[[Any, Any], float],
    base: float,
) -> dict[str, Any]:
    """The loop of a side that is not dlscratch's Trainer, timed as the Trainer's is.

    data: (x_train, t_train, x_test, t_test) as the side stores them. train_step(batch)
    trains on the rows `batch` (indices, drawn as the Trainer draws them) and returns the
    loss as a float; accuracy(x, t) evaluates. base: resident MiB after the imports.
    """
    x_train, t_train, x_test, t_test = data
    rng = np.random.default_rng(workload.seed)  # the Trainer's sampler, seeded alike
    n_eval = workload.eval_samples
    eval_times: list[float] = []
    accuracies: list[tuple[float, float]] = []

    def evaluate() -> None:
        started = time.perf_counter()
        train_acc = accuracy(x_train[:n_eval], t_train[:n_eval])
        accuracies.append((train_acc, accuracy(x_test[:n_eval], t_test[:n_eval])))
        eval_times.append(time.perf_counter() - started)

    schedule = set(evaluation_iterations(workload, len(x_train)))
    losses: list[float] = []
    load_peak, before_loop = peak_rss_mib(), rss_mib()
    loop_reset = reset_peak_rss()
    started = time.perf_counter()
    evaluate()
    for it in range(1, workload.iters + 1):
        # the numbers choice(train_size, batch) draws, as the Trainer does
        losses.append(train_step(rng.integers(0, len(x_train), workload.batch_size)))
        if it in schedule:
            evaluate()
    result = {
        "whole_s": time.perf_counter() - started,
        "loop_eval_times_s": eval_times,
        "train_acc": accuracies[-1][0],
        "test_acc": accuracies[-1][1],
        "final_loss": losses[-1],  # recorded every iteration, as the Trainer does
        "losses": losses[:FIRST_LOSSES],
    }
    if workload.final_eval_samples != 0:
        n = workload.final_eval_samples
        started = time.perf_counter()
        result["test_acc"] = accuracy(x_test[:n], t_test[:n])
        result["final_eval_s"] = time.perf_counter() - started
    result["memory"] = _memory(base, load_peak, before_loop, peak_rss_mib(), loop_reset, _data_mib(*data))
    return result


def run_numpy(workload: Workload) -> dict[str, Any]:
    """The same run as a hand-tuned NumPy loop (bench.numpy_loop), then its lower bound."""
    if workload.model != "two-layer":
        raise ValueError(f"the {NUMPY_SIDE} side runs two-layer workloads only, not {workload.name}")
    # the loader and the network that give the data and the initial weights, imported
    # before the memory count starts, as the dlscratch side's are: library code does not count
    import dlscratch.datasets  # noqa: F401

    peak = numpy_gemm_peak()
    reset_peak_rss()
    base = rss_mib()
    data = _load_data(workload)
    x_train, t_train, x_test, t_test = data

    def train_and_evaluate() -> tuple[numpy_loop.Params, Any, Any]:
        reference = _build_dlscratch_net(workload)  # the same initial weights, copied
        p = numpy_loop.Params(*(reference.params[k] for k in ("W1", "b1", "W2", "b2")))
        (D, H), C = p.W1.shape, len(p.b2)
        step_buffers = numpy_loop.StepBuffers(workload.batch_size, D, H, C)
        eval_buffers = numpy_loop.EvalBuffers(numpy_loop.EVAL_CHUNK, D, H, C)

        def accuracy(x: np.ndarray, t: np.ndarray) -> float:
            return numpy_loop.accuracy(p, x, t, eval_buffers)

        def train_step(batch: np.ndarray) -> float:
            numpy_loop.gather_batch(x_train, t_train, batch, step_buffers)
            return numpy_loop.train_step(p, step_buffers, workload.lr)

        return p, train_step, accuracy

    _, warm_step, warm_accuracy = train_and_evaluate()  # thrown away
    rng = np.random.default_rng(workload.seed + 1)
    for _ in range(workload.warmup):
        warm_step(rng.integers(0, len(x_train), workload.batch_size))
    warm_accuracy(x_test[: workload.eval_batch], t_test[: workload.eval_batch])
    p, train_step, accuracy = train_and_evaluate()
    result = _timed_loop(workload, data, train_step, accuracy, base)
    result["numpy_gemm_peak_gflops"] = peak
    # after the memory count: the lower bound's few arrays are not the loop's
    result["lower_bound"] = numpy_loop.lower_bound(workload, p.W1, x_train, x_test)
    return result


def _torch_twin(torch: Any, nn: Any, workload: Workload) -> Any:
    """The workload's torch model with the dlscratch network's initial weights and dropout generators."""
    reference = _build_dlscratch_net(workload)
    generators = [
        copy.deepcopy(layer._rng) for layer in reference.layers.values() if type(layer).__name__ == "Dropout"
    ]
    model = torch_model(nn, workload, generators)
    _copy_weights(torch, reference, model)
    return model


def torch_model(nn: Any, workload: Workload, dropout_generators: list[Any] | None = None) -> Any:
    """The workload's network as idiomatic PyTorch: an nn.Sequential, in training mode.

    The same layers as dlscratch's network, in the same order; nn is torch.nn. DeepConvNet's
    two dropouts draw their masks from dropout_generators, copies of the NumPy generators of
    dlscratch's own Dropout layers (torch's nn.Dropout where none are given): both sides
    then drop the same units and train the same function, so their accuracies compare.
    """
    if workload.model == "two-layer":
        return nn.Sequential(nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 10))
    if workload.model == "simple-conv":
        return nn.Sequential(
            nn.Conv2d(1, 30, 5),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Flatten(),
            nn.Linear(4320, 100),
            nn.ReLU(),
            nn.Linear(100, 10),
        )
    return nn.Sequential(  # DeepConvNet: three times conv, ReLU, conv, ReLU, pool; then dense
        *_conv_relu(nn, 1, 16),
        *_conv_relu(nn, 16, 16),
        nn.MaxPool2d(2, 2),
        *_conv_relu(nn, 16, 32),
        *_conv_relu(nn, 32, 32, padding=2),
        nn.MaxPool2d(2, 2),
        *_conv_relu(nn, 32, 64),
        *_conv_relu(nn, 64, 64),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(1024, 50),
        nn.ReLU(),
        _dropout(nn, 0.5, dropout_generators, 0),
        nn.Linear(50, 10),
        _dropout(nn, 0.5, dropout_generators, 1),
    )


def _dropout(nn: Any, ratio: float, generators: list[Any] | None, index: int) -> Any:
    """nn.Dropout(ratio), or the same inverted dropout with its masks from generators[index]."""
    if generators is None:
        return nn.Dropout(ratio)
    generator = generators[index]

    class NumpyMaskDropout(nn.Module):
        """Inverted dropout with masks drawn from a NumPy generator as dlscratch's Dropout draws them."""

        def forward(self, x: Any) -> Any:
            if not self.training:
                return x
            import torch

            kept = torch.from_numpy(generator.random(tuple(x.shape)) > ratio)
            return x * kept * (1 / (1 - ratio))

    return NumpyMaskDropout()


def _conv_relu(nn: Any, channels: int, filters: int, padding: int = 1) -> tuple[Any, Any]:
    """A 3x3 convolution, stride 1, and its ReLU: DeepConvNet's building block."""
    return nn.Conv2d(channels, filters, 3, padding=padding), nn.ReLU()


def _copy_weights(torch: Any, reference: Any, model: Any) -> None:
    """Give the torch model the dlscratch network's initial weights (W1 b1 W2 b2 ...).

    dlscratch numbers its weighted layers in order, so W1, W2, ... are the model's
    convolutions and linear layers as they come.
    """
    params = reference.params
    weighted = [m for m in model if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    count = sum(key.startswith("W") for key in params)
    if len(weighted) != count:
        raise ValueError(f"expected {count} weighted torch layers for W1..W{count}, got {len(weighted)}")
    with torch.no_grad():
        for i, module in enumerate(weighted, start=1):
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
    base: float, load_peak: float, before_loop: float, loop_peak: float, reset_worked: bool, data: float
) -> dict[str, Any]:
    """Peak resident memory (VmHWM), MiB.

    peak_mib: the highest resident size from data loading to the end, minus the size after
    the imports: the libraries' code does not count; the data, the network, the optimizer
    state and every temporary do. data_mib: the stored data set's own arrays (part of the
    peak). loop_mib: the highest resident size during the loop and the final evaluation,
    minus the size just before the loop.
    """
    if not reset_worked:  # no per-phase counter (no /proc): only the lifetime peak is known
        return {
            "base_mib": base,
            "peak_mib": None,
            "loop_mib": None,
            "lifetime_peak_mib": loop_peak,
            "data_mib": data,
        }
    return {
        "base_mib": base,
        "peak_mib": max(load_peak, loop_peak) - base,
        "data_mib": data,
        "loop_mib": loop_peak - before_loop,
    }


def run_side(side: str, workload: Workload, threads: int) -> dict[str, Any]:
    """Run one side of a workload here and return its measurements plus the settings."""
    if side == "dlscratch":
        result = run_dlscratch(workload)
    elif side == "pytorch":
        result = run_pytorch(workload, threads)
    elif side == NUMPY_SIDE:
        result = run_numpy(workload)
    else:
        raise ValueError(f"unknown side {side!r}; choose one of {ALL_SIDES}")
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
    if workload.same_steps:
        result["first_loss_mean"] = float(np.mean(result["losses"][: workload.same_steps]))
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
