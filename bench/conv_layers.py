"""The convolution kernels against PyTorch CPU, layer by layer, on the book's networks' shapes.

    python bench/conv_layers.py [--reps 40] [--threads 2] [--kernels shifted winograd]

Times forward + backward of each convolution step as the networks run it (Convolution ->
Relu, or Convolution -> Relu -> 2x2 max Pooling, as one kernel call, dlscratch.kernels)
and of its torch twin, in one process, in alternating blocks of calls with a pause
between blocks (so neither side's idle threads are still spinning when the other
starts), float32, batch 100. Prints the median and best milliseconds per call of each
side and the ratio ours / torch (below 1: we are faster). The first layer of each network
computes no input gradient, as in training. With --kernels, every layer runs on each
kernel named that can take it, one row each: this is what the selector
(dlscratch.kernels.conv_kernel) decides by.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from torch.nn import functional as nnf

from dlscratch.kernels import KERNELS, ConvGeometry, Epilogue, set_num_threads

# name: (channels, filters, filter size, image size, pad, pooled, first layer)
LAYERS = {
    "simple conv1 5x5+pool": (1, 30, 5, 28, 0, True, True),
    "deep conv1": (1, 16, 3, 28, 1, False, True),
    "deep conv2+pool": (16, 16, 3, 28, 1, True, False),
    "deep conv3": (16, 32, 3, 14, 1, False, False),
    "deep conv4+pool": (32, 32, 3, 14, 2, True, False),
    "deep conv5": (32, 64, 3, 8, 1, False, False),
    "deep conv6+pool": (64, 64, 3, 8, 1, True, False),
}


def cases(rng: np.random.Generator, kernels: list[str] | None) -> dict[str, tuple[Callable, Callable]]:
    """name -> (ours, torch's), each one forward and one backward pass."""
    runs = {}
    for name, (C, FN, k, size, pad, pooled, first) in LAYERS.items():
        x = rng.random((100, C, size, size), dtype=np.float32)
        W = (rng.standard_normal((FN, C, k, k)) / np.sqrt(k * k * C)).astype(np.float32)
        b = np.zeros(FN, np.float32)
        geometry = ConvGeometry(x.shape, W.shape, 1, pad)
        choices = [None] if kernels is None else [name for name in kernels if KERNELS[name].takes(geometry)]
        tx, tW = torch.tensor(x, requires_grad=not first), torch.tensor(W, requires_grad=True)
        tb = torch.tensor(b, requires_grad=True)

        def theirs(tx=tx, tW=tW, tb=tb, pad=pad, pooled=pooled) -> Callable[[], object]:
            out = nnf.relu(nnf.conv2d(tx, tW, tb, padding=pad))
            return nnf.max_pool2d(out, 2, 2) if pooled else out

        dout = torch.ones_like(theirs())
        for kernel in choices:
            ours = _ours(x, W, b, pad, pooled, first, kernel)
            label = name if kernel is None else f"{name} [{kernel}]"
            runs[label] = (ours, lambda theirs=theirs, dout=dout: theirs().backward(dout))
    return runs


def _ours(x, W, b, pad, pooled, first, kernel_name):
    from dlscratch.kernels import conv_kernel

    geometry = ConvGeometry(x.shape, W.shape, 1, pad)
    epilogue = Epilogue(True, pooled)
    chosen = conv_kernel if kernel_name is None else KERNELS[kernel_name]
    kernel = chosen(geometry, epilogue)
    dout = np.ones(epilogue.out_shape(geometry.out_shape), np.float32)
    return lambda: (kernel.forward(x, W, b), kernel.backward(dout, W, not first))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=40, help="timed calls of each case and side")
    parser.add_argument("--block", type=int, default=5, help="calls in a row before switching sides")
    parser.add_argument("--threads", type=int, default=2, help="threads of both sides")
    parser.add_argument("--kernels", nargs="+", choices=sorted(KERNELS), help="kernels to compare")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    set_num_threads(args.threads)
    runs = cases(np.random.default_rng(0), args.kernels)
    times: dict[tuple[str, int], list[float]] = {(name, side): [] for name in runs for side in (0, 1)}
    for pair in runs.values():  # warm up: buffers, caches, torch's kernels
        for fn in pair:
            for _ in range(3):
                fn()
    for _ in range(max(args.reps // args.block, 1)):
        for name, pair in runs.items():
            for side, fn in enumerate(pair):
                time.sleep(0.05)  # the other side's thread pool goes idle
                for _ in range(args.block):
                    start = time.perf_counter()
                    fn()
                    times[name, side].append(time.perf_counter() - start)
    print(f"float32, batch 100, {args.threads} thread(s), {args.reps} reps; ms per forward + backward")
    print(f"{'case':34s} {'ours med':>9s} {'torch med':>9s} {'ours min':>9s} {'torch min':>9s} {'ratio':>6s}")
    for name in runs:
        ours, theirs = (np.array(times[name, side]) * 1e3 for side in (0, 1))
        ratio = np.median(ours) / np.median(theirs)
        print(
            f"{name:34s} {np.median(ours):9.3f} {np.median(theirs):9.3f} {ours.min():9.3f} "
            f"{theirs.min():9.3f} {ratio:6.2f}"
        )


if __name__ == "__main__":
    main()
