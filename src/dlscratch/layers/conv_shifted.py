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
to each chunk's output is the caller's: ``emit`` receives the output of images
[start, start + n) filter first, (FN, n, OH, OW), and ``spread`` writes their output
gradient into such a view (Convolution copies them from and to its (N, FN, OH, OW)
arrays, layers/conv.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from dlscratch._threads import run_parallel, single_threaded_blas, split_count

__all__ = ["ShiftedGeometry", "shifted_backward", "shifted_forward", "weights_with_bias"]

_CACHE_BYTES = 1 << 22  # work arrays of a chunk: in L2/L3, and few chunks (Python costs per chunk)
_MIN_PART = 8  # fewer images than this per thread are not worth a thread

# emit(images, output): output is the convolution of x[images], filter first: (FN, n, OH, OW)
Emit = Callable[[slice, np.ndarray], None]
# spread(images, dgrid): write the output gradient of x[images] into dgrid (FN, n, OH, OW)
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
        """Write images x (n, C, H, W) into padded (C, n, flat), channel first; borders stay 0."""
        n, p = len(x), self.pad
        grid = padded[:, :, : self.Hp * self.Wp].reshape(self.C, n, self.Hp, self.Wp)
        grid[:, :, p : p + self.H, p : p + self.W] = x.transpose(1, 0, 2, 3)

    def fill_columns(self, col: np.ndarray, padded: np.ndarray) -> None:
        """col (K + 1, n, G) = the columns of the padded images (C, n, flat), then a row of ones."""
        by_offset = col[:-1].reshape(self.C, self.FH * self.FW, *col.shape[1:])
        for q, offset in enumerate(self.offsets):
            by_offset[:, q] = padded[:, :, offset : offset + self.G]
        col[-1] = 1

    def valid(self, grid: np.ndarray) -> np.ndarray:
        """(F, n, G) grid values -> the (F, n, OH, OW) view of the real output positions."""
        F, n = grid.shape[:2]
        return grid.reshape(F, n, self.OH, self.Wp)[..., : self.OW]


class _WorkArrays:
    """One thread's work arrays, made once per chunk size (a part has at most two sizes).

    Each chunk's arrays are channel (or filter) first and then image, (F, n, ...), so that
    one matrix product covers all the images of a chunk. Arrays named in `zeroed` start
    as zeros (their borders are never written); the others are always overwritten.
    """

    def __init__(self, shapes: dict[str, tuple[int, ...]], zeroed: set[str], dtype: Any) -> None:
        self.shapes, self.zeroed, self.dtype = shapes, zeroed, dtype
        self._made: dict[int, dict[str, np.ndarray]] = {}

    def __call__(self, n: int) -> dict[str, np.ndarray]:
        """name -> array of shape (shape[0], n, *shape[1:])."""
        if n not in self._made:
            self._made[n] = {
                name: (np.zeros if name in self.zeroed else np.empty)((shape[0], n, *shape[1:]), self.dtype)
                for name, shape in self.shapes.items()
            }
        return self._made[n]


def weights_with_bias(W: np.ndarray, b: np.ndarray, dtype: Any) -> np.ndarray:
    """[Wm | b] (FN, C FH FW + 1): the filters as rows with their bias appended.

    [Wm | b] @ [col; ones] = Wm @ col + b: with a row of ones under the columns, the bias
    rides along in the convolution's one matrix product.
    """
    weights = np.empty((W.shape[0], W[0].size + 1), dtype=dtype)
    weights[:, :-1] = W.reshape(len(W), -1)
    weights[:, -1] = b
    return weights


def _in_parallel(tasks: list[Callable[[], Any]]) -> list[Any]:
    """The tasks at once, one per thread, with single-threaded matrix products."""
    if len(tasks) == 1:
        return [tasks[0]()]
    with single_threaded_blas():
        return run_parallel(tasks)


def shifted_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, pad: int, emit: Emit) -> None:
    """The stride-1 convolution of x (N, C, H, W), handed to emit a chunk of images at a time."""
    geo = ShiftedGeometry(x.shape, W.shape, pad)
    weights = weights_with_bias(W, b, x.dtype)

    def part(images: slice) -> None:
        work = _WorkArrays({"padded": (geo.C, geo.flat), "col": (geo.K + 1, geo.G)}, {"padded"}, x.dtype)
        for chunk in geo.chunks(images, geo.C * geo.flat + (geo.K + 1 + geo.FN) * geo.G, x.itemsize):
            n = chunk.stop - chunk.start
            arrays = work(n)
            geo.pad_into(arrays["padded"], x[chunk])
            geo.fill_columns(arrays["col"], arrays["padded"])
            grid = weights @ arrays["col"].reshape(geo.K + 1, n * geo.G)  # (FN, n G)
            emit(chunk, geo.valid(grid.reshape(geo.FN, n, geo.G)))

    _in_parallel([lambda r=r: part(r) for r in geo.parts()])


def shifted_backward(
    x: np.ndarray, W: np.ndarray, pad: int, spread: Spread, with_dx: bool
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
    dx = np.empty(x.shape, dtype=x.dtype) if with_dx else None
    margin = geo.offsets[-1]  # zeros before the grid, so every backward shift stays in range

    def part(images: slice) -> np.ndarray:
        shapes = {
            "padded": (geo.C, geo.flat),
            "col": (geo.K + 1, geo.G),
            "dgrid": (geo.FN, geo.G),  # the output gradient on the grid, 0 at the extras
            # ... again with `margin` zeros in front of each image, long enough for the last
            # backward shift
            "extended": (geo.FN, margin + plane),
        }
        if dx is not None:
            shapes.update(shifted=(geo.FN * Q, plane), dx_padded=(geo.C, plane))
        work = _WorkArrays(shapes, {"padded", "dgrid", "extended"}, x.dtype)
        per_image = sum(math.prod(shape) for shape in shapes.values())
        grads = np.zeros((geo.K + 1, geo.FN), dtype=x.dtype)
        for chunk in geo.chunks(images, per_image, x.itemsize):
            n = chunk.stop - chunk.start
            arrays = work(n)
            dgrid = arrays["dgrid"]
            spread(chunk, geo.valid(dgrid))  # writes every valid position; the extras stay 0
            geo.pad_into(arrays["padded"], x[chunk])
            geo.fill_columns(arrays["col"], arrays["padded"])
            # [dW | db].T = [col; ones] @ dgrid.T, all the chunk's images in one product
            grads += arrays["col"].reshape(geo.K + 1, -1) @ dgrid.reshape(geo.FN, -1).T
            if dx is None:
                continue
            extended, shifted = arrays["extended"], arrays["shifted"].reshape(geo.FN, Q, n, plane)
            extended[:, :, margin : margin + geo.G] = dgrid
            for q, offset in enumerate(geo.offsets):
                shifted[:, q] = extended[:, :, margin - offset : margin - offset + plane]
            dx_padded = arrays["dx_padded"]
            np.matmul(
                swapped, arrays["shifted"].reshape(geo.FN * Q, n * plane), out=dx_padded.reshape(geo.C, -1)
            )
            p = pad
            padded_images = dx_padded.reshape(geo.C, n, geo.Hp, geo.Wp)
            dx[chunk].transpose(1, 0, 2, 3)[...] = padded_images[:, :, p : p + geo.H, p : p + geo.W]
        return grads

    grads = sum(_in_parallel([lambda r=r: part(r) for r in geo.parts()]))
    return grads[:-1].T.reshape(W.shape), grads[-1], dx
