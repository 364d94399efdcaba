"""The work every side does: network, data, optimizer, iterations, evaluation schedule.

A workload fixes the network, the data, the optimizer, the number of iterations, the
evaluation schedule and its target. Both sides (and, for the two-layer network, the
hand-tuned NumPy reference) keep the images as uint8 and scale each batch as it is used,
start from the same initial weights (PyTorch and the reference copy dlscratch's), draw
the same mini-batches (the same NumPy generator, sampling with replacement as the book
does), evaluate on the same samples at the same iterations (the untrained network, the
end of every epoch, the last iteration: what dlscratch's Trainer does), in float32
throughout, after the same warm-up on a network of their own that is then thrown away.

This module imports nothing heavy: the harness process reads it without loading a BLAS.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

SIDES = ("dlscratch", "pytorch")  # the two sides compared and judged against the targets
NUMPY_SIDE = "numpy"  # the hand-tuned NumPy loop: a reference shown beside them, never judged
ALL_SIDES = (*SIDES, NUMPY_SIDE)


@dataclass(frozen=True)
class Workload:
    """One benchmark: network, data, optimizer, iterations, evaluation schedule and target.

    eval_samples: samples of each split evaluated during the loop (None: all of them), as
    the Trainer's evaluate_sample_num_per_epoch. final_eval_samples: when not 0, after the
    loop both sides also evaluate this many test samples (None: all 10000), timed apart;
    otherwise "time per evaluation" is the mean of the evaluations in the loop. warmup:
    training steps (and one evaluation of eval_batch samples) each side runs first, on a
    network it then throws away, untimed. target: the ratio dlscratch / `versus` of the
    row `target_row` to meet, beside the memory and accuracy targets.
    """

    name: str
    title: str
    model: str  # "two-layer" (784-50-10), "simple-conv" or "deep-conv" (the book's conv nets)
    iters: int
    batch_size: int
    optimizer: str  # "sgd" or "adam"
    lr: float
    target: float
    target_row: str = "whole run"
    versus: str = "pytorch"  # or NUMPY_SIDE: the hand-tuned NumPy loop of the same run
    eval_samples: int | None = None
    final_eval_samples: int | None = 0
    eval_batch: int = 1000  # samples per forward pass in PyTorch's evaluation (its faster size)
    warmup: int = 20
    same_steps: int | None = None
    seed: int = 0

    @property
    def images(self) -> bool:
        """True when the network takes (N, 1, 28, 28) images instead of (N, 784) rows."""
        return self.model != "two-layer"

    @property
    def has_numpy_reference(self) -> bool:
        """True when the hand-tuned NumPy loop (the "numpy" side) can run this workload."""
        return self.model == "two-layer"

    @property
    def evaluation(self) -> str:
        """What "time per evaluation" times, in words."""
        if self.final_eval_samples == 0:
            n = "all" if self.eval_samples is None else self.eval_samples
            return f"train and test accuracy on {n} samples of each split, in the loop"
        n = 10000 if self.final_eval_samples is None else self.final_eval_samples
        return f"test accuracy on {n} test samples, after the loop"


def _as_train_convnet(
    name: str, title: str, model: str, iters: int, target: float, target_row: str, **extra: Any
) -> Workload:
    """A conv net trained as the book's train_convnet.py trains one.

    Batch 100, Adam lr 0.001, accuracy on 1000 samples of each split before and after the
    loop; then the whole test set, timed apart.
    """
    return Workload(
        name=name,
        title=title,
        model=model,
        iters=iters,
        batch_size=100,
        optimizer="adam",
        lr=0.001,
        target=target,
        target_row=target_row,
        eval_samples=1000,
        final_eval_samples=None,
        # PyTorch evaluates both conv nets faster in batches of 100 than of 1000: SimpleConvNet
        # twice as fast, DeepConvNet 1.2-2 times (measured at 2 threads)
        eval_batch=100,
        warmup=10,
        **extra,
    )


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
        target=1.10,  # of the hand-tuned NumPy loop's whole run
        versus=NUMPY_SIDE,
        warmup=100,
    ),
    "convnet-epoch": _as_train_convnet(
        name="convnet-epoch",
        title="SimpleConvNet (conv 30x5x5, ReLU, pool 2, 100, 10), one epoch: 600 iterations, batch 100, "
        "Adam lr 0.001, accuracy on 1000 samples before and after (the book's train_convnet.py), "
        "then on the whole test set, Fashion-MNIST, float32",
        model="simple-conv",
        iters=600,
        target=0.6,
        target_row="whole run",
    ),
    "deep-convnet": _as_train_convnet(
        name="deep-convnet",
        title="DeepConvNet (the book's chapter 8: conv 16, 16, pool, 32, 32, pool, 64, 64, pool, all 3x3, "
        "ReLUs; 50, ReLU, dropout 0.5, 10, dropout 0.5), 200 iterations, batch 100, Adam lr 0.001, "
        "accuracy on 1000 samples before and after, then on the whole test set, Fashion-MNIST, float32",
        model="deep-conv",
        iters=200,
        target=1.0,
        target_row="time per training step",
        # dropout 0.5 on the scores: after 200 steps the test accuracy of two runs that agree to
        # 1e-6 in every gradient of the first step differs by up to 10 points
        same_steps=10,
    ),
}


QUICK_ITERS = {"two-layer": 300, "simple-conv": 30, "deep-conv": 10}  # iterations of quick()
QUICK_EVAL = {"deep-conv": 200}  # samples per quick evaluation where 1000 would take long


def quick(workload: Workload) -> Workload:
    """A short version of a workload for smoke tests: few iterations, small evaluations, a short warm-up."""
    iters = QUICK_ITERS[workload.model]
    n_eval = QUICK_EVAL.get(workload.model, 1000)
    small = {"final_eval_samples": n_eval} if workload.final_eval_samples != 0 else {}
    title = f"{workload.title} [quick: {iters} iterations, small evaluations]"
    return replace(workload, iters=iters, eval_samples=n_eval, title=title, warmup=2, **small)


# ----------------------------------------------------------------------------- counting

# Each layer's forward matrix product for one sample, (m, k, n), first layer first: a
# convolution is (output positions, inputs per filter, filters) as im2col computes it, an
# affine layer (1, inputs, outputs).
PRODUCTS = {
    "two-layer": ((1, 784, 50), (1, 50, 10)),
    "simple-conv": (
        (24 * 24, 1 * 5 * 5, 30),  # 30 filters of 5x5 at 24x24 positions
        (1, 4320, 100),  # 30 x 12 x 12 pooled features
        (1, 100, 10),
    ),
    "deep-conv": (
        (28 * 28, 1 * 3 * 3, 16),  # 3x3 filters, padding 1: the image's size
        (28 * 28, 16 * 3 * 3, 16),  # then 2x2 pooling: 14x14
        (14 * 14, 16 * 3 * 3, 32),
        (16 * 16, 32 * 3 * 3, 32),  # padding 2: 16x16, then pooling: 8x8
        (8 * 8, 32 * 3 * 3, 64),
        (8 * 8, 64 * 3 * 3, 64),  # then pooling: 64 x 4 x 4
        (1, 1024, 50),
        (1, 50, 10),
    ),
}


def flops(workload: Workload) -> tuple[float, float]:
    """(floating-point operations per training step, per evaluated sample), matrix products only.

    A product of (m, k) by (k, n) counts 2 m k n. A step is the forward pass, the weight
    gradients and the input gradients of every layer but the first (nobody needs the
    gradient of the data). Elementwise work (ReLU, softmax, pooling, the optimizer) is
    left out: it is small next to the products.
    """
    per_layer = [2.0 * m * k * n for m, k, n in PRODUCTS[workload.model]]
    per_sample = sum(per_layer)
    # forward + weight gradient for the first layer; forward + weight + input gradient for the rest
    return workload.batch_size * (2 * per_layer[0] + 3 * sum(per_layer[1:])), per_sample


def evaluation_iterations(workload: Workload, train_size: int) -> list[int]:
    """Iterations after which both sides evaluate: 0, each epoch's end, the last (as Trainer)."""
    points = [0]
    for it in range(1, workload.iters + 1):
        epoch_ends = (it * workload.batch_size) // train_size > ((it - 1) * workload.batch_size) // train_size
        if epoch_ends or it == workload.iters:
            points.append(it)
    return points
