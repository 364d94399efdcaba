"""The reference side's computations: the two-layer network by hand with NumPy alone.

``bench.loops.run_numpy`` runs the workload with these pieces.

No framework and no layer objects. Every array the loop writes is allocated once, before
the loop, and every operation writes into one of them (``out=`` or in place); the data
set stays uint8 and each batch (each evaluated chunk) is converted and scaled as it is
used; the first layer computes no input gradient; the learning rate is folded into the
output gradient, so the SGD update is one in-place subtraction per parameter.

It does the work the other two sides do (the same initial weights, the same batches,
the same evaluations, float32) and shows what NumPy itself reaches on this machine: a
reference beside dlscratch and PyTorch, never judged against the issue's targets.

After the loop the same process times ``lower_bound``: only the work no NumPy loop can
avoid (per step the index draw, the batch gather and scaling, the two first-layer matrix
products; per evaluation the uint8 -> float32 conversion and the first-layer product of
every evaluated image), extrapolated to the workload's steps and evaluations.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bench.workloads import Workload, evaluation_iterations

SCALE = np.float32(1 / 255)  # uint8 pixel -> [0, 1], as the dlscratch side's input_scale
EVAL_CHUNK = 1000  # images per forward pass when evaluating (the dlscratch side's size)
LOWER_BOUND_STEPS = 300  # steps timed for the lower bound (one evaluation is timed too) ...
LOWER_BOUND_BLOCKS = 3  # ... in this many blocks, the fastest one counting


class Params:
    """The network's parameters, float32: W1 (D, H), b1 (H,), W2 (H, C), b2 (C,)."""

    def __init__(self, W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: np.ndarray) -> None:
        self.W1, self.b1, self.W2, self.b2 = (np.array(a, np.float32) for a in (W1, b1, W2, b2))


class StepBuffers:
    """Every array one training step writes: batch B, inputs D, hidden H, classes C."""

    def __init__(self, B: int, D: int, H: int, C: int) -> None:
        self.x_u8 = np.empty((B, D), np.uint8)  # the gathered rows, as stored
        self.x = np.empty((B, D), np.float32)  # ... scaled to [0, 1]
        self.t = np.empty(B, np.int64)  # their labels
        self.h = np.empty((B, H), np.float32)  # hidden activations relu(x W1 + b1)
        self.active = np.empty((B, H), bool)  # where h > 0: the ReLU's gradient mask
        self.s = np.empty((B, C), np.float32)  # scores, then softmax, then dL/ds
        self.s_flat = self.s.reshape(-1)  # the same memory, for picking one score per row
        self.row_start = np.arange(B) * C  # flat index of each row's first score
        self.best = np.empty(B, np.intp)  # each row's argmax
        self.flat = np.empty(B, np.intp)  # flat indices of one score per row
        self.row_max = np.empty((B, 1), np.float32)
        self.row_sum = np.empty((B, 1), np.float32)
        self.picked = np.empty(B, np.float32)  # each row's shifted score of its label
        self.dh = np.empty((B, H), np.float32)
        self.dW1 = np.empty((D, H), np.float32)
        self.db1 = np.empty(H, np.float32)
        self.dW2 = np.empty((H, C), np.float32)
        self.db2 = np.empty(C, np.float32)


class EvalBuffers:
    """The arrays an evaluation writes: chunks of up to `chunk` images, D inputs, H hidden, C classes."""

    def __init__(self, chunk: int, D: int, H: int, C: int) -> None:
        self.x = np.empty((chunk, D), np.float32)
        self.h = np.empty((chunk, H), np.float32)
        self.s = np.empty((chunk, C), np.float32)
        self.predicted = np.empty(chunk, np.intp)
        self.hit = np.empty(chunk, bool)


def gather_batch(x_train: np.ndarray, t_train: np.ndarray, batch: np.ndarray, buf: StepBuffers) -> None:
    """buf.x (B, D) = x_train[batch] (uint8 (N, D)) scaled to [0, 1]; buf.t (B,) = t_train[batch]."""
    np.take(x_train, batch, axis=0, out=buf.x_u8)
    np.copyto(buf.x, buf.x_u8)  # exact: every uint8 is a float32
    buf.x *= SCALE
    np.take(t_train, batch, out=buf.t)


def train_step(p: Params, buf: StepBuffers, lr: float) -> float:
    """One SGD step on the batch in buf.x (B, D), buf.t (B,); returns its mean loss."""
    B = len(buf.x)
    # forward: h = relu(x W1 + b1) (B, H); s = h W2 + b2 (B, C)
    np.matmul(buf.x, p.W1, out=buf.h)
    buf.h += p.b1
    np.maximum(buf.h, 0, out=buf.h)
    np.greater(buf.h, 0, out=buf.active)
    np.matmul(buf.h, p.W2, out=buf.s)
    buf.s += p.b2
    # softmax cross-entropy, shifted by each row's maximum (read at its argmax: faster than
    # max(axis=1) on rows of 10): loss = mean over rows of log(sum(exp(s))) - s[t]
    np.argmax(buf.s, axis=1, out=buf.best)
    np.add(buf.row_start, buf.best, out=buf.flat)
    np.take(buf.s_flat, buf.flat, out=buf.row_max[:, 0])
    buf.s -= buf.row_max
    np.add(buf.row_start, buf.t, out=buf.flat)
    np.take(buf.s_flat, buf.flat, out=buf.picked)
    np.exp(buf.s, out=buf.s)
    np.sum(buf.s, axis=1, keepdims=True, out=buf.row_sum)
    buf.s /= buf.row_sum  # the softmax
    loss = float(np.log(buf.row_sum, out=buf.row_sum).sum() - buf.picked.sum()) / B
    # backward, the learning rate folded in: ds = lr * (softmax - onehot(t)) / B (B, C)
    buf.s_flat[buf.flat] -= 1  # the one-hot: flat still points at each row's label
    buf.s *= np.float32(lr / B)
    np.matmul(buf.h.T, buf.s, out=buf.dW2)  # lr dL/dW2 (H, C)
    np.sum(buf.s, axis=0, out=buf.db2)
    np.matmul(buf.s, p.W2.T, out=buf.dh)  # lr dL/dh (B, H), with W2 before its update
    np.multiply(buf.dh, buf.active, out=buf.dh)  # through the ReLU
    np.matmul(buf.x.T, buf.dh, out=buf.dW1)  # lr dL/dW1 (D, H); no gradient for x
    np.sum(buf.dh, axis=0, out=buf.db1)
    # SGD: W <- W - lr dL/dW, in place
    p.W1 -= buf.dW1
    p.b1 -= buf.db1
    p.W2 -= buf.dW2
    p.b2 -= buf.db2
    return loss


def accuracy(p: Params, x: np.ndarray, t: np.ndarray, buf: EvalBuffers) -> float:
    """Fraction of the rows of x (uint8 (N, D)) whose highest score is their label t (N,).

    Runs in chunks of len(buf.x) rows, each converted to float32 as it is used.
    """
    correct, chunk = 0, len(buf.x)
    for start in range(0, len(x), chunk):
        n = min(chunk, len(x) - start)
        xc, h, s, predicted, hit = buf.x[:n], buf.h[:n], buf.s[:n], buf.predicted[:n], buf.hit[:n]
        np.copyto(xc, x[start : start + n])  # the chunk as float32 in [0, 1]
        xc *= SCALE
        np.matmul(xc, p.W1, out=h)  # h = relu(x W1 + b1) (n, H)
        h += p.b1
        np.maximum(h, 0, out=h)
        np.matmul(h, p.W2, out=s)  # s = h W2 + b2 (n, C)
        s += p.b2
        np.argmax(s, axis=1, out=predicted)
        np.equal(predicted, t[start : start + n], out=hit)
        correct += int(np.count_nonzero(hit))
    return correct / len(x)


def lower_bound(
    workload: Workload,
    W1: np.ndarray,
    x_train: np.ndarray,
    x_test: np.ndarray,
    steps: int = LOWER_BOUND_STEPS,
) -> dict[str, Any]:
    """Seconds of the unavoidable work alone, timed over `steps` steps and one evaluation.

    Per step (the fastest of LOWER_BOUND_BLOCKS blocks of steps): the index draw, the
    batch gather and scaling (B, D), x W1 (B, D) @ (D, H) and x.T dh (D, B) @ (B, H).
    Per evaluation: the uint8 -> float32 conversion and x W1 of every evaluated image of
    both splits, in chunks of EVAL_CHUNK. whole_s = iters * step_s + evaluations * eval_s.
    W1: (D, H) float32; x_train, x_test: uint8 (N, D).
    """
    step_s = _first_layer_step_s(workload, W1, x_train, steps)
    eval_s = _first_layer_eval_s(workload, W1, x_train, x_test)
    evaluations = len(evaluation_iterations(workload, len(x_train)))
    return {
        "whole_s": workload.iters * step_s + evaluations * eval_s,
        "step_s": step_s,
        "eval_s": eval_s,
        "steps_timed": steps,
        "evaluations": evaluations,
    }


def _first_layer_step_s(workload: Workload, W1: np.ndarray, x_train: np.ndarray, steps: int) -> float:
    """Seconds per step of the draw, the gather and scaling, x W1 and x.T dh (W1: (D, H)).

    The fastest of LOWER_BOUND_BLOCKS blocks of steps: it is a bound, so a block that the
    machine slowed down does not count.
    """
    B, (D, H) = workload.batch_size, W1.shape
    rng = np.random.default_rng(workload.seed + 1)  # other rows than the loop's, as random
    x_u8, x = np.empty((B, D), np.uint8), np.empty((B, D), np.float32)
    h, dW1 = np.empty((B, H), np.float32), np.empty((D, H), np.float32)
    dh = rng.standard_normal((B, H), dtype=np.float32)  # stands for the backward pass's
    block = max(steps // LOWER_BOUND_BLOCKS, 1)
    fastest = float("inf")
    for _ in range(max(steps // block, 1)):
        started = time.perf_counter()
        for _ in range(block):
            batch = rng.integers(0, len(x_train), B)
            np.take(x_train, batch, axis=0, out=x_u8)
            np.copyto(x, x_u8)
            x *= SCALE
            np.matmul(x, W1, out=h)
            np.matmul(x.T, dh, out=dW1)
        fastest = min(fastest, time.perf_counter() - started)
    return fastest / block


def _first_layer_eval_s(workload: Workload, W1: np.ndarray, x_train: np.ndarray, x_test: np.ndarray) -> float:
    """Seconds of one evaluation's conversion and x W1 over the evaluated images of both splits."""
    n, (D, H) = workload.eval_samples, W1.shape
    x, h = np.empty((EVAL_CHUNK, D), np.float32), np.empty((EVAL_CHUNK, H), np.float32)
    started = time.perf_counter()
    for split in (x_train[:n], x_test[:n]):
        for start in range(0, len(split), EVAL_CHUNK):
            k = min(EVAL_CHUNK, len(split) - start)
            np.copyto(x[:k], split[start : start + k])
            x[:k] *= SCALE
            np.matmul(x[:k], W1, out=h[:k])
    return time.perf_counter() - started
