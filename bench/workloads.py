"""The work both sides do: network, data, optimizer, iterations, evaluation schedule.

A workload fixes the network, the data, the optimizer, the number of iterations and the
evaluation schedule. Both sides start from the same initial weights (PyTorch copies
dlscratch's), draw the same mini-batches (the same NumPy generator, sampling with
replacement as the book does), evaluate on the same samples at the same iterations (the
untrained network, the end of every epoch, the last iteration: what dlscratch's Trainer
does), in float32 throughout.

This module imports nothing heavy: the harness process reads it without loading a BLAS.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

SIDES = ("dlscratch", "pytorch")


@dataclass(frozen=True)
class Workload:
    """One benchmark: network, data, optimizer, iterations and evaluation schedule.

    eval_samples: samples of each split evaluated during the loop (None: all of them), as
    the Trainer's evaluate_sample_num_per_epoch. final_eval_samples: when not 0, after the
    loop both sides also evaluate this many test samples (None: all 10000), timed apart;
    otherwise "time per evaluation" is the mean of the evaluations in the loop.
    """

    name: str
    title: str
    model: str  # "two-layer" (784-50-10) or "simple-conv" (the book's SimpleConvNet)
    iters: int
    batch_size: int
    optimizer: str  # "sgd" or "adam"
    lr: float
    eval_samples: int | None = None
    final_eval_samples: int | None = 0
    eval_batch: int = 1000  # samples per forward pass in PyTorch's evaluation (its faster size)
    seed: int = 0
    target: float = 1.0  # dlscratch/pytorch whole-run ratio the issue asks for

    @property
    def images(self) -> bool:
        """True when the network takes (N, 1, 28, 28) images instead of (N, 784) rows."""
        return self.model == "simple-conv"

    @property
    def evaluation(self) -> str:
        """What "time per evaluation" times, in words."""
        if self.final_eval_samples == 0:
            n = "all" if self.eval_samples is None else self.eval_samples
            return f"train and test accuracy on {n} samples of each split, in the loop"
        n = 10000 if self.final_eval_samples is None else self.final_eval_samples
        return f"test accuracy on {n} test samples, after the loop"


WORKLOADS = {
    "seed-run": Workload(
        name="seed-run",
        title="TwoLayerNet 784-50-10, batch 100, SGD lr 0.1, 10000 iterations, "
        "full train+test accuracy every epoch (600 iterations), Fashion-MNIST, float32",
        model="two-layer",
        iters=10000,
        batch_size=100,
        optimizer="sgd",
        lr=0.1,
        target=0.40,
    ),
    "convnet-epoch": Workload(
        name="convnet-epoch",
        title="SimpleConvNet (conv 30x5x5, ReLU, pool 2, 100, 10), one epoch: 600 iterations, batch 100, "
        "Adam lr 0.001, accuracy on 1000 samples before and after (the book's train_convnet.py), "
        "then on the whole test set, Fashion-MNIST, float32",
        model="simple-conv",
        iters=600,
        batch_size=100,
        optimizer="adam",
        lr=0.001,
        eval_samples=1000,
        final_eval_samples=None,
        eval_batch=100,  # PyTorch's convolution evaluates twice as fast in batches of 100 as of 1000
        target=0.85,
    ),
}


def quick(workload: Workload) -> Workload:
    """A short version of a workload for smoke tests: few iterations, small evaluations."""
    iters = 300 if workload.model == "two-layer" else 30
    small = {"final_eval_samples": 1000} if workload.final_eval_samples != 0 else {}
    title = f"{workload.title} [quick: {iters} iterations, small evaluations]"
    return replace(workload, iters=iters, eval_samples=1000, title=title, **small)


# ----------------------------------------------------------------------------- counting


def flops(workload: Workload) -> tuple[float, float]:
    """(floating-point operations per training step, per evaluated sample), matrix products only.

    A product of (m, k) by (k, n) counts 2 m k n. A step is the forward pass, the weight
    gradients and the input gradients of every layer but the first (nobody needs the
    gradient of the data). Elementwise work (ReLU, softmax, pooling, the optimizer) is
    left out: it is small next to the products.
    """
    b = workload.batch_size
    if workload.model == "two-layer":
        first, second = 784 * 50, 50 * 10
        per_sample = 2.0 * (first + second)
        return b * (2 * 2.0 * first + 3 * 2.0 * second), per_sample
    conv = 2.0 * 24 * 24 * 30 * 5 * 5  # 30 filters of 5x5 at 24x24 positions
    hidden, out = 2.0 * 4320 * 100, 2.0 * 100 * 10
    per_sample = conv + hidden + out
    return b * (2 * conv + 3 * hidden + 3 * out), per_sample


def evaluation_iterations(workload: Workload, train_size: int) -> list[int]:
    """Iterations after which both sides evaluate: 0, each epoch's end, the last (as Trainer)."""
    points = [0]
    for it in range(1, workload.iters + 1):
        epoch_ends = (it * workload.batch_size) // train_size > ((it - 1) * workload.batch_size) // train_size
        if epoch_ends or it == workload.iters:
            points.append(it)
    return points
