"""Stride-1 convolution as shifted slices of the flattened padded image.

The idea. Lay each padded image out as one flat row per channel, Hp * Wp long. The pixel
at offset (i, j) of the window of output position (y, x) is padded pixel (y + i, x + j),
flat index (y Wp + x) + (i Wp + j): the same flat position g = y Wp + x, shifted by
i Wp + j. So for every offset the columns im2col would build are ONE contiguous slice of
the flat image, padded[:, i Wp + j : i Wp + j + G], with G = OH * Wp grid positions.
Computing the output at every grid position gives each output row Wp - OW extra values
that wrap into the next row; they are computed and thrown away, which is far cheaper
than the strided copies they save.

    forward:  out = [Wm | b] @ [col; ones]                      (FN, n G)
    dW, db:   [dW | db] = dgrid @ [col; ones].T, summed over chunks in order
    dx:       the same kind of product again: dx is the convolution of the output
              gradient, padded by FH - 1 - pad, with the filters flipped and their
              channels and outputs swapped, so its columns are shifted slices too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlscratch.kernels.columns import ColumnProduct
from dlscratch.kernels.epilogue import PHASES, Epilogue, Grid
from dlscratch.kernels.geometry import ConvGeometry, PhaseSplit, ShiftedPlane
from dlscratch.kernels.workspace import scratch

__all__ = ["ShiftedKernel"]


class _ImageOrder:
    """Outputs in image order: grid position y Wp + x of the shifted plane, (FN, n, G) per chunk."""

    def __init__(self, g: ConvGeometry) -> None:
        self.plane = plane = ShiftedPlane(g.H, g.W, g.pad, g.pad, g.FH, g.FW)
        self.shape = (g.OH, g.OW)
        self.positions, self.input_values = plane.G, g.C * plane.flat
        self.block = plane.G  # positions of one image

    def columns(self, images: Any, col: Any, xp: Any) -> None:
        """col (C FH FW, n, G) of images (n, C, H, W)."""
        n, C = images.shape[:2]
        padded = scratch("shifted padded", (C, n, self.plane.flat), col.dtype, xp)
        self.plane.fill(padded, images.transpose(1, 0, 2, 3))
        self.plane.columns(col.reshape(len(col), n, -1), padded)

    def grid(self, values: Any, n: int) -> Grid:
        """The Grid of a chunk's (F, n G) values."""
        return Grid(self.shape, whole=self.plane.valid(values.reshape(len(values), n, self.plane.G)))


class _PhaseOrder:
    """Outputs by 2x2 phase, for a pooling epilogue: (FN, 4, n, R, width) per chunk.

    Output pixel (2 r + u, 2 s + v) reads padded pixel (2 r + u + i, 2 s + v + j) for filter
    offset (i, j): with the input split into phases (geometry.PhaseSplit), the columns of
    every output phase are again shifted slices, and the product writes each phase as
    one contiguous plane, where the pooling windows' four corners sit side by side.
    """

    def __init__(self, g: ConvGeometry) -> None:
        self.R, columns = -(-g.OH // 2), -(-g.OW // 2)  # an output phase's rows and columns
        split = PhaseSplit(g.H, g.W, g.pad, self.R + g.FH // 2, columns + g.FW // 2, (g.FH // 2, g.FW // 2))
        self.split, self.shape = split, (g.OH, g.OW)
        self.L = self.R * split.width  # positions of one phase of one image
        self.positions, self.input_values = 4 * self.L, 4 * g.C * split.flat
        self.block = self.L  # positions of one phase of one image
        self.shifts = [
            [split.shift(u + i, v + j) for i in range(g.FH) for j in range(g.FW)] for u, v in PHASES
        ]

    def columns(self, images: Any, col: Any, xp: Any) -> None:
        """col (C FH FW, 4, n, L) of images (n, C, H, W)."""
        n, C = images.shape[:2]
        phases = scratch("shifted phases", (4, C, n, self.split.flat), col.dtype, xp)
        self.split.split(images, phases)
        by_offset = col.reshape(C, -1, 4, n, self.L)
        for k, shifts in enumerate(self.shifts):
            for q, (phase, shift) in enumerate(shifts):
                by_offset[:, q, k] = phases[phase][:, :, shift : shift + self.L]

    def grid(self, values: Any, n: int) -> Grid:
        """The Grid of a chunk's (F, 4 n L) values."""
        planes = values.reshape(len(values), 4, n, self.R, self.split.width).transpose(1, 0, 2, 3, 4)
        return Grid(self.shape, planes=planes)


class ShiftedKernel(ColumnProduct):
    """A stride-1 convolution and its epilogue, chunk by chunk over the batch.

    The outputs are computed in image order, or by 2x2 phase when the epilogue pools.
    forward(x, W, b, train): x (N, C, H, W), W (FN, C, FH, FW), b (FN,) in, the
    epilogue's output out; backward(dout, W, with_dx) -> (dW, db, dx or None).

    Parameters
    ----------
    geometry : ConvGeometry
        The convolution's sizes: any filter size and pad, stride 1.
    epilogue : Epilogue
        What follows the convolution (ReLU, 2x2 max pooling), applied to each chunk's output.
    xp : module, default numpy
        The array module the columns and products use.

    Raises
    ------
    ValueError
        For a stride other than 1.
    """

    name = "shifted"

    @staticmethod
    def takes(geometry: ConvGeometry) -> bool:
        """Stride 1."""
        return geometry.stride == 1

    def __init__(self, geometry: ConvGeometry, epilogue: Epilogue, xp: Any = np) -> None:
        if not self.takes(geometry):
            raise ValueError(f"the shifted kernel needs stride 1, got {geometry.stride}")
        super().__init__(geometry, epilogue, xp)
        g = geometry
        self.order = _PhaseOrder(g) if epilogue.pool else _ImageOrder(g)
        self.positions, self.block = self.order.positions, self.order.block
        # dx: the output gradient padded by FH - 1 - pad (FW - 1 - pad across); where pad
        # is larger, padded by 0 and the result cropped by the difference
        q_h, q_w = g.FH - 1 - g.pad, g.FW - 1 - g.pad
        self.crop = (max(-q_h, 0), max(-q_w, 0))
        self.back_plane = ShiftedPlane(g.OH, g.OW, max(q_h, 0), max(q_w, 0), g.FH, g.FW)

    def _columns(self, images: Any, n: int, keep: bool = False) -> Any:
        col = self._column_array(n, images.dtype, keep)
        self.order.columns(images, col[:-1], self.xp)
        col[-1] = 1
        return col

    def _grid(self, values: Any, n: int) -> Grid:
        return self.order.grid(values, n)

    def _chunks(self, itemsize: int) -> list[slice]:
        g, order, back = self.geo, self.order, self.back_plane
        per_image = order.input_values + (g.K + 1 + g.FN) * order.positions
        per_image += g.FN * back.flat + (g.FN * g.FH * g.FW + g.C) * back.G  # the input's gradient
        return g.chunks(per_image, itemsize)

    def _input_gradient(self, W: Any, dgrid: Any, n: int, dx: Any) -> None:
        """dx[c] = sum over f, (i, j) of W[f, c, FH-1-i, FW-1-j] * dpadded[f] shifted by (i, j)."""
        xp, g, back, dtype = self.xp, self.geo, self.back_plane, dgrid.dtype
        flipped = W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).reshape(g.C, -1).astype(dtype, copy=False)
        dpadded = scratch("shifted dpadded", (g.FN, n, back.flat), dtype, xp)
        dpadded[...] = 0
        self.order.grid(dgrid, n).read(into=back.interior(dpadded))
        dcol = scratch("shifted dcol", (g.FN * g.FH * g.FW, n, back.G), dtype, xp)
        back.columns(dcol, dpadded)
        dgrid_x = xp.matmul(
            flipped, dcol.reshape(len(dcol), -1), out=scratch("shifted dx grid", (g.C, n * back.G), dtype, xp)
        )
        (crop_h, crop_w), (H, W_) = self.crop, dx.shape[2:]
        values = back.valid(dgrid_x.reshape(g.C, n, back.G))
        dx.transpose(1, 0, 2, 3)[...] = values[:, :, crop_h : crop_h + H, crop_w : crop_w + W_]
