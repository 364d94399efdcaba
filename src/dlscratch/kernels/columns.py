"""Any convolution (every stride, pad and filter size) as im2col and one product, chunk by chunk.

The book's algorithm, laid out for the epilogue: the columns of n images are built as
(C FH FW + 1, n OH OW), filter offset by filter offset, with a last row of ones for the
bias, so one product [Wm | b] @ [col; ones] gives the chunk's outputs filter first. The
backward pass builds the columns again (cheaper than keeping every chunk's) and adds the
columns' gradient Wm^T @ dout back onto the pixels they came from, one offset at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlscratch.kernels.epilogue import Epilogue, Grid
from dlscratch.kernels.geometry import ConvGeometry
from dlscratch.kernels.parallel import in_order_sum, parallel_map
from dlscratch.kernels.workspace import scratch

__all__ = ["ColumnsKernel", "with_bias"]


class ColumnsKernel:
    """A convolution of any stride and its epilogue, by im2col, chunk by chunk over the batch."""

    name = "columns"

    @staticmethod
    def takes(geometry: ConvGeometry) -> bool:
        """Every geometry."""
        return True

    def __init__(self, geometry: ConvGeometry, epilogue: Epilogue, xp: Any = np) -> None:
        self.geo, self.epilogue, self.xp = geometry, epilogue, xp
        self._x: Any = None

    def _windows(self, images: Any, i: int, j: int) -> Any:
        """The (C, n, OH, OW) view of the pixels at offset (i, j) of every window of images (C, n, Hp, Wp)."""
        g, s = self.geo, self.geo.stride
        return images[:, :, i : i + s * (g.OH - 1) + 1 : s, j : j + s * (g.OW - 1) + 1 : s]

    def _columns(self, x: Any, n: int, dtype: Any) -> Any:
        """[col; ones] (K + 1, n OH OW) of the images x (n, C, H, W)."""
        xp, g = self.xp, self.geo
        padded = scratch("columns padded", (g.C, n, g.Hp, g.Wp), dtype, xp)
        padded[...] = 0
        padded[:, :, g.pad : g.pad + g.H, g.pad : g.pad + g.W] = x.transpose(1, 0, 2, 3)
        col = scratch("columns col", (g.K + 1, n, g.OH, g.OW), dtype, xp)
        by_offset = col[:-1].reshape(g.C, g.FH, g.FW, n, g.OH, g.OW)
        for i in range(g.FH):
            for j in range(g.FW):
                by_offset[:, i, j] = self._windows(padded, i, j)
        col[-1] = 1
        return col.reshape(g.K + 1, -1)

    def _chunks(self, itemsize: int) -> list[slice]:
        g = self.geo
        return g.chunks(g.C * g.Hp * g.Wp + (g.K + 1 + 2 * g.FN) * g.OH * g.OW, itemsize)

    def forward(self, x: Any, W: Any, b: Any) -> Any:
        """The epilogue's output for x (N, C, H, W)."""
        xp, g, epilogue = self.xp, self.geo, self.epilogue
        self._x, dtype = x, x.dtype
        weights = with_bias(W, b, dtype, xp)
        out = epilogue.start(g.out_shape, dtype)

        def run(chunk: slice) -> None:
            n = chunk.stop - chunk.start
            grid = scratch("columns grid", (g.FN, n * g.OH * g.OW), dtype, xp)
            xp.matmul(weights, self._columns(x[chunk], n, dtype), out=grid)
            epilogue.forward(chunk, Grid((g.OH, g.OW), whole=grid.reshape(g.FN, n, g.OH, g.OW)), out)

        parallel_map(run, self._chunks(x.itemsize))
        return out

    def backward(self, dout: Any, W: Any, with_dx: bool) -> tuple[Any, Any, Any]:
        """(dW like W, db (FN,), dx like x or None) for the epilogue's output gradient dout."""
        xp, g, epilogue = self.xp, self.geo, self.epilogue
        x, dtype = self._x, self._x.dtype
        W_t = xp.ascontiguousarray(W.reshape(g.FN, -1).T, dtype=dtype)  # (K, FN)
        dx = xp.empty(x.shape, dtype) if with_dx else None

        def run(chunk: slice) -> Any:
            n = chunk.stop - chunk.start
            dgrid = scratch("columns dgrid", (g.FN, n, g.OH, g.OW), dtype, xp)
            dgrid[...] = 0
            epilogue.backward(chunk, dout, Grid((g.OH, g.OW), whole=dgrid))
            dgrid = dgrid.reshape(g.FN, -1)
            # [dW | db].T = [col; ones] @ dout.T: every image of the chunk in one product
            grads = self._columns(x[chunk], n, dtype) @ dgrid.T
            if dx is not None:
                dcol = xp.matmul(W_t, dgrid, out=scratch("columns dcol", (g.K, n * g.OH * g.OW), dtype, xp))
                dcols = dcol.reshape(g.C, g.FH, g.FW, n, g.OH, g.OW)
                dpadded = scratch("columns dpadded", (g.C, n, g.Hp, g.Wp), dtype, xp)
                dpadded[...] = 0
                for i in range(g.FH):  # col2im: each column's gradient back onto its pixel
                    for j in range(g.FW):
                        self._windows(dpadded, i, j)[...] += dcols[:, i, j]
                inner = dpadded[:, :, g.pad : g.pad + g.H, g.pad : g.pad + g.W]
                dx[chunk].transpose(1, 0, 2, 3)[...] = inner
            return grads

        grads = in_order_sum(parallel_map(run, self._chunks(x.itemsize)))
        return grads[:-1].T.reshape(W.shape), grads[-1].copy(), dx


def with_bias(W: Any, b: Any, dtype: Any, xp: Any = np) -> Any:
    """[Wm | b] (FN, C FH FW + 1): the filters as rows with their bias appended.

    [Wm | b] @ [col; ones] = Wm @ col + b: with a row of ones under the columns, the bias
    rides along in the convolution's one matrix product.
    """
    weights = xp.empty((W.shape[0], W[0].size + 1), dtype=dtype)
    weights[:, :-1] = W.reshape(len(W), -1)
    weights[:, -1] = b
    return weights
