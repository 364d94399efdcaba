"""Any convolution (every stride, pad and filter size) as im2col and one product, chunk by chunk.

The book's algorithm, laid out for the epilogue: the columns of n images are built as
(C FH FW + 1, n positions), filter offset by filter offset, with a last row of ones for
the bias, so one product [Wm | b] @ [col; ones] gives the chunk's outputs filter first.
The backward pass adds the columns' gradient Wm^T @ dout back onto the pixels they came
from, one offset at a time (col2im).

Before a 2x2 pooling the columns are ordered by pooling corner: output pixel
(2 r + u, 2 s + v) is corner (u, v) of window (r, s), and the product writes each corner
of every window as one contiguous plane, where the pooling compares them side by side
("polyphase pooling planes"). Only the outputs some window reads are computed then.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlscratch.kernels.epilogue import Epilogue, Grid
from dlscratch.kernels.geometry import ConvGeometry
from dlscratch.kernels.parallel import in_order_sum, parallel_map
from dlscratch.kernels.workspace import scratch

__all__ = ["KEEP_COLUMNS_BYTES", "ColumnProduct", "ColumnsKernel", "weight_gradient", "with_bias"]

KEEP_COLUMNS_BYTES = 1 << 25  # forward keeps its columns for backward up to this size (32 MiB)


class ColumnProduct:
    """What the column kernels share: [Wm | b] @ [col; ones] chunk by chunk, then dW from the columns.

    A subclass says how its columns are built (`_columns`), how a chunk's values are seen
    (`_grid`), how many positions an image has and in blocks of how many they are summed
    (`positions`, `block`), how large its chunks are (`_chunks`) and how it computes the
    input's gradient (`_input_gradient`).
    """

    name = ""
    positions = block = 0

    def __init__(self, geometry: ConvGeometry, epilogue: Epilogue, xp: Any = np) -> None:
        self.geo, self.epilogue, self.xp = geometry, epilogue, xp
        self._x: Any = None
        self._col: list[Any] = []  # forward's columns, chunk by chunk, where kept

    def forward(self, x: Any, W: Any, b: Any, train: bool = True) -> Any:
        """The epilogue's output for x (N, C, H, W); train: keep what backward needs."""
        xp, g, epilogue = self.xp, self.geo, self.epilogue
        self._x, dtype = x, x.dtype
        weights = with_bias(W, b, dtype, xp)
        out = epilogue.start(g.out_shape, dtype)
        chunks = self._chunks(x.itemsize)
        # small columns (few input channels) are cheaper to keep than to build again
        keep = train and (g.K + 1) * self.positions * g.N * x.itemsize <= KEEP_COLUMNS_BYTES
        self._col = [None] * len(chunks)

        def run(k: int) -> None:
            chunk = chunks[k]
            n = chunk.stop - chunk.start
            grid = scratch(self.name + " grid", (g.FN, n * self.positions), dtype, xp)
            col = self._columns(x[chunk], n, keep)
            xp.matmul(weights, col, out=grid)
            epilogue.forward(chunk, self._grid(grid, n), out)
            if keep:
                self._col[k] = col

        parallel_map(run, range(len(chunks)))
        return out

    def backward(self, dout: Any, W: Any, with_dx: bool) -> tuple[Any, Any, Any]:
        """(dW like W, db (FN,), dx like x or None) for the epilogue's output gradient dout."""
        xp, g, epilogue = self.xp, self.geo, self.epilogue
        x, dtype = self._x, self._x.dtype
        dx = xp.empty(x.shape, dtype) if with_dx else None
        chunks = self._chunks(x.itemsize)

        def run(k: int) -> Any:
            chunk = chunks[k]
            n = chunk.stop - chunk.start
            dgrid = scratch(self.name + " dgrid", (g.FN, n * self.positions), dtype, xp)
            dgrid[...] = 0  # positions no output reads stay 0: they add nothing to dW
            epilogue.backward(chunk, dout, self._grid(dgrid, n))
            col = self._col[k] if self._col[k] is not None else self._columns(x[chunk], n)
            if dx is not None:
                self._input_gradient(W, dgrid, n, dx[chunk])
            return weight_gradient(col, dgrid, self.block, xp)

        grads = in_order_sum(parallel_map(run, range(len(chunks))))
        return grads[:-1].T.reshape(W.shape), grads[-1].copy(), dx

    def _columns(self, images: Any, n: int, keep: bool = False) -> Any:
        """[col; ones] (K + 1, n positions) of images (n, C, H, W); keep: in an array of its own."""
        raise NotImplementedError

    def _grid(self, values: Any, n: int) -> Grid:
        """The Grid of a chunk's (FN, n positions) values."""
        raise NotImplementedError

    def _chunks(self, itemsize: int) -> list[slice]:
        raise NotImplementedError

    def _input_gradient(self, W: Any, dgrid: Any, n: int, dx: Any) -> None:
        """dx (n, C, H, W) of a chunk from its output gradient dgrid (FN, n positions)."""
        raise NotImplementedError

    def _column_array(self, n: int, dtype: Any, keep: bool) -> Any:
        """The (K + 1, n positions) array the columns go in: its own (kept), or scratch."""
        shape = (self.geo.K + 1, n * self.positions)
        return self.xp.empty(shape, dtype) if keep else scratch(self.name + " col", shape, dtype, self.xp)


class ColumnsKernel(ColumnProduct):
    """A convolution of any stride and its epilogue, by im2col, chunk by chunk over the batch.

    Its forward and backward take and give the shapes the other kernels do: x (N, C, H, W)
    in, the epilogue's output out; (dW, db, dx or None) back.

    Parameters
    ----------
    geometry : ConvGeometry
        The convolution's sizes; every one is taken.
    epilogue : Epilogue
        ReLU and/or pooling after the convolution; with pooling, only the outputs a 2x2
        window reads are computed.
    xp : module, default numpy
        The array module of the columns and their product.
    """

    name = "columns"

    @staticmethod
    def takes(geometry: ConvGeometry) -> bool:
        """Every geometry."""
        return True

    def __init__(self, geometry: ConvGeometry, epilogue: Epilogue, xp: Any = np) -> None:
        super().__init__(geometry, epilogue, xp)
        g = geometry
        self.by_corner = epilogue.pool
        # the outputs computed: all, or the ones a 2x2 pooling window reads
        self.rows, self.cols = (2 * (g.OH // 2), 2 * (g.OW // 2)) if self.by_corner else (g.OH, g.OW)
        self.positions = self.rows * self.cols
        self.block = self.positions // (4 if self.by_corner else 1)  # positions of an image (corner)

    def _windows(self, images: Any, i: int, j: int) -> Any:
        """The pixels at offset (i, j) of every window of images (C, n, Hp, Wp), laid out as the columns.

        (C, n, rows, cols) in image order; (C, 2, 2, n, rows / 2, cols / 2) by corner.
        """
        s, rows, cols = self.geo.stride, self.rows, self.cols
        view = images[:, :, i : i + s * (rows - 1) + 1 : s, j : j + s * (cols - 1) + 1 : s]
        if not self.by_corner:
            return view
        C, n = view.shape[:2]
        return view.reshape(C, n, rows // 2, 2, cols // 2, 2).transpose(0, 3, 5, 1, 2, 4)

    def _layout(self, n: int) -> tuple[int, ...]:
        """The shape of one offset's columns (per channel) for n images."""
        if self.by_corner:
            return (2, 2, n, self.rows // 2, self.cols // 2)
        return (n, self.rows, self.cols)

    def _columns(self, images: Any, n: int, keep: bool = False) -> Any:
        xp, g, dtype = self.xp, self.geo, images.dtype
        padded = scratch("columns padded", (g.C, n, g.Hp, g.Wp), dtype, xp)
        padded[...] = 0
        padded[:, :, g.pad : g.pad + g.H, g.pad : g.pad + g.W] = images.transpose(1, 0, 2, 3)
        col = self._column_array(n, dtype, keep)
        by_offset = col[:-1].reshape(g.C, g.FH, g.FW, *self._layout(n))
        for i in range(g.FH):
            for j in range(g.FW):
                by_offset[:, i, j] = self._windows(padded, i, j)
        col[-1] = 1
        return col

    def _grid(self, values: Any, n: int) -> Grid:
        if self.by_corner:
            corners = values.reshape(len(values), 4, n, self.rows // 2, self.cols // 2)
            return Grid((self.rows, self.cols), planes=corners.transpose(1, 0, 2, 3, 4))
        return Grid((self.rows, self.cols), whole=values.reshape(len(values), n, self.rows, self.cols))

    def _chunks(self, itemsize: int) -> list[slice]:
        g = self.geo
        return g.chunks(g.C * g.Hp * g.Wp + (g.K + 1 + 2 * g.FN) * self.positions, itemsize)

    def _input_gradient(self, W: Any, dgrid: Any, n: int, dx: Any) -> None:
        """col2im of Wm^T @ dout: each column's gradient added back onto the pixel it came from."""
        xp, g, dtype = self.xp, self.geo, dgrid.dtype
        W_t = W.reshape(g.FN, -1).T.astype(dtype, copy=False)  # (K, FN)
        dcol = xp.matmul(W_t, dgrid, out=scratch("columns dcol", (g.K, n * self.positions), dtype, xp))
        dcols = dcol.reshape(g.C, g.FH, g.FW, *self._layout(n))
        dpadded = scratch("columns dpadded", (g.C, n, g.Hp, g.Wp), dtype, xp)
        dpadded[...] = 0
        for i in range(g.FH):
            for j in range(g.FW):
                self._windows(dpadded, i, j)[...] += dcols[:, i, j]
        dx.transpose(1, 0, 2, 3)[...] = dpadded[:, :, g.pad : g.pad + g.H, g.pad : g.pad + g.W]


def weight_gradient(col: Any, dgrid: Any, block: int, xp: Any = np) -> Any:
    """[dW | db].T (K + 1, F) = [col; ones] (K + 1, M) @ dgrid (F, M).T, M a whole number of blocks.

    Summed block by block (an image, or one phase of one image): many small products and
    one sum are faster than one product with a very long sum (OpenBLAS, small K and F).
    """
    blocks = col.shape[1] // block
    per_block = xp.matmul(
        col.reshape(len(col), blocks, block).transpose(1, 0, 2),
        dgrid.reshape(len(dgrid), blocks, block).transpose(1, 2, 0),
    )
    return per_block.sum(axis=0)


def with_bias(W: Any, b: Any, dtype: Any, xp: Any = np) -> Any:
    """[Wm | b] (FN, C FH FW + 1): the filters as rows with their bias appended.

    [Wm | b] @ [col; ones] = Wm @ col + b: with a row of ones under the columns, the bias
    rides along in the convolution's one matrix product.
    """
    weights = xp.empty((W.shape[0], W[0].size + 1), dtype=dtype)
    weights[:, :-1] = W.reshape(len(W), -1)
    weights[:, -1] = b
    return weights
