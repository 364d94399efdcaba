"""Stride-1 convolution as shifted slices of the padded image: the fast path of Convolution.

The idea. Lay each padded image out as one flat row per channel, Hp * Wp long. The pixel
at offset (i, j) of the window of output position (y, x) is padded pixel (y + i, x + j),
flat index (y Wp + x) + (i Wp + j): the same flat position g = y Wp + x, shifted by
i Wp + j. So for every offset the columns im2col would build are ONE contiguous slice of
the flat image, padded[:, i Wp + j : i Wp + j + G], with G = OH * Wp grid positions.
Computing the output at every grid position gives each output row Wp - OW extra values
that wrap into the next row; they are computed and thrown away (about 15% more
arithmetic on 28x28 images), which is far cheaper than the strided copies they save.

The gradients follow the same pattern, with dgrid = dout on the grid (0 at the extras):
    [dW | db] = sum over images of dgrid @ [col; ones].T
    dx: padded pixel h receives W[f, c, i, j] * dgrid[f, h - (i Wp + j)], again one
        contiguous slice of dgrid per offset (shifted the other way), so dx is one more
        matrix product instead of a scatter-add of every column.

Work is done a few images at a time, so that each chunk's work arrays stay in a core's
cache between being written and being used, and the batch is split into one part per
thread, each with single-threaded matrix products (see dlscratch._threads). What happens
to each chunk's output is the caller's: ``emit`` receives the (n, FN, OH, OW) output of
images [start, start + n), and ``spread`` writes their output gradient into such a view.
Convolution copies (layers/conv.py); ConvReluPool pools and applies ReLU while the chunk
is still in cache (layers/fused.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dlscratch._threads import run_parallel, single_threaded_blas, split_count

__all__ = ["ShiftedGeometry", "shifted_backward", "shifted_forward"]

_CACHE_BYTES = 1 << 22  # work arrays of a chunk: in L2/L3, and few chunks (Python costs per chunk)
_MIN_PART = 8  # fewer images than this per thread are not worth a thread

# emit(images, output): output is the (n, FN, OH, OW) convolution of x[images]
Emit = Callable[[slice, np.ndarray], None]
# spread(images, dgrid): write the output gradient of x[images] into dgrid (n, FN, OH, OW)
Spread = Callable[[slice, np.ndarray], None]


class ShiftedGeometry:
    """Sizes of a stride-1 convolution of (N, C, H, W) images by (FN, C, FH, FW) filters."""

    def __init__(self, x_shape: tuple[int, ...], w_shape: tuple[int, ...], pad: int) -> None:
        self.N, self.C, self.H, self.W = x_shape
        self.FN, _, self.FH, self.FW = w_shape
        self.pad = pad
        self.Hp, self.Wp = self.H + 2 * pad, self.W + 2 * pad  # the padded image
        self.OH, self.OW = self.Hp - self.FH + 1, self.Wp - self.FW + 1
        self.G = self.OH * self.Wp  # grid positions computed per image (OW valid per row)
        self.K = self.C * self.FH * self.FW  # column rows, ordered (channel, i, j) like W
        self.offsets = [i * self.Wp + j for i in range(self.FH) for j in range(self.FW)]
        # each flat image is followed by FW - 1 zeros, so the last offset's slice runs G long
        self.flat = self.Hp * self.Wp + self.FW - 1

    def parts(self) -> list[slice]:
        """The images cut into one contiguous range per thread (at least _MIN_PART each)."""
        count = max(1, min(split_count(), self.N // _MIN_PART))
        bounds = [self.N * i // count for i in range(count + 1)]
        return [slice(bounds[i], bounds[i + 1]) for i in range(count)]

    def chunks(self, images: slice, values_per_image: int, itemsize: int) -> list[slice]:
        """images cut into chunks whose work arrays (values_per_image each) fit _CACHE_BYTES."""
        step = max(1, _CACHE_BYTES // (values_per_image * itemsize))
        return [slice(s, min(s + step, images.stop)) for s in range(images.start, images.stop, step)]

    def pad_into(self, padded: np.ndarray, x: np.ndarray) -> None:
        """Write images x (n, C, H, W) into the interior of padded (>= n, C, flat); borders stay 0."""
        n, p = len(x), self.pad
        grid = padded[:n, :, : self.Hp * self.Wp].reshape(n, self.C, self.Hp, self.Wp)
        grid[:, :, p : p + self.H, p : p + self.W] = x

    def fill_columns(self, col: np.ndarray, padded: np.ndarray) -> None:
        """col (n, K + 1, G) = the columns of n padded images (its last row, the ones, untouched)."""
        n = len(col)
        by_offset = col[:, :-1].reshape(n, self.C, self.FH * self.FW, self.G)
        for q, offset in enumerate(self.offsets):
            by_offset[:, :, q] = padded[:n, :, offset : offset + self.G]

    def valid(self, grid: np.ndarray) -> np.ndarray:
        """(n, F, G) grid values -> the (n, F, OH, OW) view of the real output positions."""
        return grid.reshape(len(grid), -1, self.OH, self.Wp)[..., : self.OW]

    def work_arrays(self, n: int, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
        """(padded, col) for n images: zero borders, and the row of ones under the columns."""
        padded = np.zeros((n, self.C, self.flat), dtype=dtype)
        col = np.empty((n, self.K + 1, self.G), dtype=dtype)
        col[:, -1] = 1
        return padded, col


def _in_parallel(tasks: list[Callable[[], Any]]) -> list[Any]:
    """The tasks at once, one per thread, with single-threaded matrix products."""
    if len(tasks) == 1:
        return [tasks[0]()]
    with single_threaded_blas():
        return run_parallel(tasks)


def shifted_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, pad: int, emit: Emit) -> None:
    """The stride-1 convolution of x (N, C, H, W), handed to emit a chunk of images at a time."""
    geo = ShiftedGeometry(x.shape, W.shape, pad)
    # [Wm | b] @ [col; ones] = Wm @ col + b: the bias rides along in the product
    weights = np.empty((geo.FN, geo.K + 1), dtype=x.dtype)
    weights[:, :-1] = W.reshape(geo.FN, geo.K)
    weights[:, -1] = b

    def part(images: slice) -> None:
        chunks = geo.chunks(images, geo.C * geo.flat + (geo.K + 1 + geo.FN) * geo.G, x.itemsize)
        largest = max((c.stop - c.start for c in chunks), default=0)
        padded, col = geo.work_arrays(largest, x.dtype)
        grid = np.empty((largest, geo.FN, geo.G), dtype=x.dtype)
        for chunk in chunks:
            n = chunk.stop - chunk.start
            geo.pad_into(padded, x[chunk])
            geo.fill_columns(col[:n], padded)
            np.matmul(weights, col[:n], out=grid[:n])
            emit(chunk, geo.valid(grid[:n]))

    _in_parallel([lambda r=r: part(r) for r in geo.parts()])


def shifted_backward(
    x: np.ndarray, W: np.ndarray, pad: int, spread: Spread, needs_input_grad: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of the stride-1 convolution of x: (dW like W, db (FN,), dx like x or None).

    spread(images, dgrid) writes the output gradient of x[images]. Computed in x's dtype,
    like the forward pass.
    """
    geo = ShiftedGeometry(x.shape, W.shape, pad)
    Q, plane = geo.FH * geo.FW, geo.Hp * geo.Wp
    # dx[c, h] = sum over f, offsets q of W[f, c, q] * dgrid[f, h - q]: the filters with
    # channels and outputs swapped, each column of the matrix an (f, q) pair
    swapped = np.ascontiguousarray(W.transpose(1, 0, 2, 3).reshape(geo.C, geo.FN * Q), dtype=x.dtype)
    dx = np.empty(x.shape, dtype=x.dtype) if needs_input_grad else None
    margin = geo.offsets[-1]  # zeros before the grid, so every backward shift stays in range

    def part(images: slice) -> np.ndarray:
        per_image = geo.C * geo.flat + (geo.K + 1) * geo.G + geo.FN * (margin + plane)
        if dx is not None:
            per_image += (geo.FN * Q + geo.C) * plane
        chunks = geo.chunks(images, per_image, x.itemsize)
        largest = max((c.stop - c.start for c in chunks), default=0)
        padded, col = geo.work_arrays(largest, x.dtype)
        # the output gradient on the grid with `margin` zeros in front and zeros at the
        # extra positions, long enough for the last backward shift; only the valid
        # positions are ever written
        extended = np.zeros((largest, geo.FN, margin + plane), dtype=x.dtype)
        dgrid = extended[:, :, margin : margin + geo.G]
        shifted = np.empty((largest, geo.FN, Q, plane), dtype=x.dtype)
        dx_padded = np.empty((largest, geo.C, plane), dtype=x.dtype)
        grads = np.zeros((geo.K + 1, geo.FN), dtype=x.dtype)
        for chunk in chunks:
            n = chunk.stop - chunk.start
            spread(chunk, geo.valid(dgrid[:n]))
            geo.pad_into(padded, x[chunk])
            geo.fill_columns(col[:n], padded)
            # [dW | db].T = [col; ones] @ dgrid.T, summed over the chunk's images
            grads += np.matmul(col[:n], dgrid[:n].transpose(0, 2, 1)).sum(axis=0)
            if dx is None:
                continue
            for q, offset in enumerate(geo.offsets):
                shifted[:n, :, q] = extended[:n, :, margin - offset : margin - offset + plane]
            np.matmul(swapped, shifted[:n].reshape(n, geo.FN * Q, plane), out=dx_padded[:n])
            p = pad
            dx[chunk] = dx_padded[:n].reshape(n, geo.C, geo.Hp, geo.Wp)[:, :, p : p + geo.H, p : p + geo.W]
        return grads

    grads = sum(_in_parallel([lambda r=r: part(r) for r in geo.parts()]))
    return grads[:-1].T.reshape(W.shape), grads[-1], dx
