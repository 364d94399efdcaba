"""Convolution and Pooling against PyTorch CPU on the book's networks' shapes, float32.

    python bench/conv_layers.py [--reps 50] [--threads 2]

Times forward + backward of each layer and of its torch twin in one process, in
alternating blocks of calls with a pause between blocks (so neither side's idle threads
are still spinning when the other starts), and prints the median and best time per call
of each and the ratio ours / torch (below 1: we are faster). Batch 100. Shapes:
SimpleConvNet's conv (1, 28, 28) * (30, 1, 5, 5) as a network's first layer (no input
gradient), the same with the input gradient, its 2x2 max pooling on (30, 24, 24); and
DeepConvNet's 3x3 convolutions with their input gradients: 16 -> 16 channels at 28x28
(pad 1), 32 -> 32 at 14x14 (pad 2) and 64 -> 64 at 8x8 (pad 1). Then Convolution -> Relu
-> 2x2 max Pooling on SimpleConvNet's first layer and on DeepConvNet's 16 -> 16 layer,
run both as the fused step (layers/fused.py) and as the three layers, each against the
same torch twin: the pair of rows is what ConvReluPool.applies decides by.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from torch.nn import functional as nnf

from dlscratch.layers.activation import Relu
from dlscratch.layers.conv import Convolution
from dlscratch.layers.fused import ConvReluPool
from dlscratch.layers.pooling import Pooling


def cases(rng: np.random.Generator) -> dict[str, tuple[Callable[[], object], Callable[[], object]]]:
    """name -> (ours, torch's), each one forward and one backward pass."""
    x = rng.random((100, 1, 28, 28), dtype=np.float32)
    W = (0.1 * rng.standard_normal((30, 1, 5, 5))).astype(np.float32)
    b = np.zeros(30, np.float32)
    dconv = rng.standard_normal((100, 30, 24, 24)).astype(np.float32)
    a = np.maximum(rng.standard_normal((100, 30, 24, 24)).astype(np.float32), 0)
    dpool = rng.standard_normal((100, 30, 12, 12)).astype(np.float32)

    first = Convolution(W, b)
    inner = Convolution(W, b)
    pool = Pooling(2, 2, stride=2)
    tx, tx_grad = torch.tensor(x), torch.tensor(x, requires_grad=True)
    tW, tb = torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)
    ta, tdconv, tdpool = torch.tensor(a, requires_grad=True), torch.tensor(dconv), torch.tensor(dpool)

    def ours(layer: Convolution | Pooling, inp: np.ndarray, dout: np.ndarray) -> Callable[[], object]:
        return lambda: (layer.forward(inp), layer.backward(dout))

    runs = {
        "conv, first layer": (
            lambda: (first.forward(x), first.backward_params(dconv)),
            lambda: nnf.conv2d(tx, tW, tb).backward(tdconv),
        ),
        "conv, with dx": (ours(inner, x, dconv), lambda: nnf.conv2d(tx_grad, tW, tb).backward(tdconv)),
        "max pool 2x2": (ours(pool, a, dpool), lambda: nnf.max_pool2d(ta, 2, 2).backward(tdpool)),
    }
    for channels, size, pad in ((16, 28, 1), (32, 14, 2), (64, 8, 1)):
        runs[f"3x3 {channels}ch {size}x{size}"] = _deep_conv_case(rng, channels, size, pad)
    for label, (channels, filters, k, pad) in {"1x5x5": (1, 30, 5, 0), "16x3x3": (16, 16, 3, 1)}.items():
        fused, layers, theirs = _conv_relu_pool_cases(rng, channels, filters, k, pad)
        runs[f"{label}+relu+pool fused"] = (fused, theirs)
        runs[f"{label}+relu+pool layers"] = (layers, theirs)
    return runs


def _conv_relu_pool_cases(
    rng: np.random.Generator, channels: int, filters: int, k: int, pad: int
) -> tuple[Callable[[], object], Callable[[], object], Callable[[], object]]:
    """(fused step, the three layers, torch) for conv -> relu -> 2x2 pool on (100, channels, 28, 28).

    A single input channel is taken as a network's first layer (no input gradient).
    """
    x = rng.random((100, channels, 28, 28), dtype=np.float32)
    W = (rng.standard_normal((filters, channels, k, k)) / np.sqrt(k * k * channels)).astype(np.float32)
    b = np.zeros(filters, np.float32)
    conv, relu, pool = Convolution(W, b, pad=pad), Relu(), Pooling(2, 2, stride=2)
    fused = ConvReluPool(conv, relu, pool)
    fused_backward = fused.backward if channels > 1 else fused.backward_params
    conv_backward = conv.backward if channels > 1 else conv.backward_params
    dout = rng.standard_normal(fused.forward(x).shape).astype(np.float32)
    tx = torch.tensor(x, requires_grad=channels > 1)
    tW, tb = torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)
    tdout = torch.tensor(dout)

    def layers() -> object:
        pool.forward(relu.forward(conv.forward(x)))
        return conv_backward(relu.backward(pool.backward(dout)))

    return (
        lambda: (fused.forward(x), fused_backward(dout)),
        layers,
        lambda: nnf.max_pool2d(nnf.relu(nnf.conv2d(tx, tW, tb, padding=pad)), 2, 2).backward(tdout),
    )


def _deep_conv_case(
    rng: np.random.Generator, channels: int, size: int, pad: int
) -> tuple[Callable[[], object], Callable[[], object]]:
    """A DeepConvNet 3x3 convolution, channels -> channels, on (100, channels, size, size)."""
    x = rng.random((100, channels, size, size), dtype=np.float32)
    W = (rng.standard_normal((channels, channels, 3, 3)) / np.sqrt(9 * channels)).astype(np.float32)
    b = np.zeros(channels, np.float32)
    layer = Convolution(W, b, pad=pad)
    dout = rng.standard_normal(layer.forward(x).shape).astype(np.float32)
    tx, tW = torch.tensor(x, requires_grad=True), torch.tensor(W, requires_grad=True)
    tb, tdout = torch.tensor(b, requires_grad=True), torch.tensor(dout)
    return (
        lambda: (layer.forward(x), layer.backward(dout)),
        lambda: nnf.conv2d(tx, tW, tb, padding=pad).backward(tdout),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=50, help="timed calls of each case and side")
    parser.add_argument("--block", type=int, default=5, help="calls in a row before switching sides")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs = cases(np.random.default_rng(0))
    times: dict[tuple[str, int], list[float]] = {(name, side): [] for name in runs for side in (0, 1)}
    for pair in runs.values():  # warm up: buffers, caches, torch's kernels
        for fn in pair:
            for _ in range(5):
                fn()
    for _ in range(max(args.reps // args.block, 1)):
        for name, pair in runs.items():
            for side, fn in enumerate(pair):
                time.sleep(0.05)  # the other side's thread pool goes idle
                for _ in range(args.block):
                    start = time.perf_counter()
                    fn()
                    times[name, side].append(time.perf_counter() - start)
    print(f"float32, torch threads {args.threads}, {args.reps} reps; ms per forward + backward")
    print(f"{'case':26s} {'ours med':>9s} {'torch med':>9s} {'ours min':>9s} {'torch min':>9s} {'ratio':>6s}")
    for name in runs:
        ours, theirs = (np.array(times[name, side]) * 1e3 for side in (0, 1))
        ratio = np.median(ours) / np.median(theirs)
        print(
            f"{name:26s} {np.median(ours):9.3f} {np.median(theirs):9.3f} {ours.min():9.3f} "
            f"{theirs.min():9.3f} {ratio:6.2f}"
        )


if __name__ == "__main__":
    main()
