"""How much memory a network needs for a batch, estimated from shapes before anything runs.

The command line asks before it allocates: a batch whose activations cannot fit, or a model
whose layers do not fit the data, is refused with one clear line instead of a MemoryError
(or an hour of swapping) halfway through. The estimate follows each layer's output shape
from one sample's shape, without running a layer:

- Affine (W of shape (D, M)): the sample flattened must have D values; output (M,).
- Convolution (W of shape (FN, C, FH, FW), stride, pad): input (C, H, W); output
  (FN, OH, OW), OH = (H + 2 pad - FH) // stride + 1; plus its column matrix, OH OW C FH FW
  values per sample (the im2col form, the largest a convolution here builds).
- Pooling: (C, OH, OW) likewise; every other layer keeps its input's shape.

The total counts every layer's output twice (the forward pass keeps it for backward, and
backward makes a gradient of the same size): an estimate of the order of magnitude, which
is all a refusal needs.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from dlscratch.layers import Affine, Convolution, Pooling

__all__ = ["available_memory", "batch_bytes", "format_bytes"]


def available_memory() -> int | None:
    """Bytes this machine can give a new allocation now: MemAvailable on Linux, else the
    physical memory; None where neither can be read."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def batch_bytes(network: Any, sample_shape: tuple[int, ...], batch_size: int, dtype: Any) -> int:
    """Bytes of activations (and their gradients) one batch of batch_size samples needs.

    ValueError naming the layer when a layer cannot take what the one before gives (the
    model does not fit the data).
    """
    itemsize = np.dtype(dtype).itemsize
    shape, per_sample = tuple(int(n) for n in sample_shape), 0
    for name, layer in network.layers.items():
        shape, scratch = _output_shape(name, layer, shape)
        per_sample += 2 * math.prod(shape) + scratch
    return per_sample * batch_size * itemsize


def _output_shape(name: str, layer: Any, shape: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
    """(one sample's output shape, values of scratch space per sample) for one layer."""
    if isinstance(layer, Affine):
        features, outputs = layer.W.shape
        if math.prod(shape) != features:
            raise ValueError(f"layer {name} expects {features} input features, it would get {shape}")
        return (outputs,), 0
    if isinstance(layer, (Convolution, Pooling)):
        if len(shape) != 3:
            raise ValueError(f"layer {name} expects (channels, height, width) samples, it would get {shape}")
        if isinstance(layer, Convolution):
            count, channels, height, width = layer.W.shape
            if shape[0] != channels:
                raise ValueError(f"layer {name} expects {channels} input channels, it would get {shape[0]}")
        else:
            count, channels, height, width = shape[0], 1, layer.pool_h, layer.pool_w
        rows = (shape[1] + 2 * layer.pad - height) // layer.stride + 1
        columns = (shape[2] + 2 * layer.pad - width) // layer.stride + 1
        if rows < 1 or columns < 1:
            raise ValueError(f"layer {name}'s window does not fit its {shape[1]}x{shape[2]} input")
        scratch = rows * columns * channels * height * width if isinstance(layer, Convolution) else 0
        return (count, rows, columns), scratch
    return shape, 0


def format_bytes(size: float) -> str:
    """1.5 GiB, 300.0 MiB, 12 bytes: a size as people read it."""
    units = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    power = 0
    while size >= 1024 and power < len(units) - 1:
        size /= 1024
        power += 1
    return f"{size:.0f} bytes" if power == 0 else f"{size:.1f} {units[power]}"
