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

from dlscratch.kernels.columns import with_bias
from dlscratch.kernels.epilogue import Epilogue, Grid
from dlscratch.kernels.geometry import ConvGeometry
from dlscratch.kernels.parallel import in_order_sum, parallel_map
from dlscratch.kernels.workspace import scratch

__all__ = ["ShiftedKernel", "ShiftedPlane"]


class ShiftedPlane:
    """Flattened padded image planes: (rows, cols) padded by (pad_h, pad_w), read by (FH, FW) windows.

    n images of `channels` channels are kept as (channels, n, flat): each plane flat,
    followed by FW - 1 zeros so the last window's slice stays in range.
    """

    def __init__(self, rows: int, cols: int, pad_h: int, pad_w: int, FH: int, FW: int) -> None:
        self.rows, self.cols, self.pad_h, self.pad_w = rows, cols, pad_h, pad_w
        self.Hp, self.Wp = rows + 2 * pad_h, cols + 2 * pad_w
        self.OH, self.OW = self.Hp - FH + 1, self.Wp - FW + 1
        self.G = self.OH * self.Wp  # grid positions computed per image (OW valid per row)
        self.flat = self.Hp * self.Wp + FW - 1
        self.offsets = [i * self.Wp + j for i in range(FH) for j in range(FW)]

    def fill(self, padded: Any, images: Any) -> None:
        """padded (channels, n, flat) = images (channels, n, rows, cols) with zero borders."""
        padded[...] = 0
        self.interior(padded)[...] = images

    def interior(self, padded: Any) -> Any:
        """The (channels, n, rows, cols) view of the images inside padded (channels, n, flat)."""
        inner = padded[:, :, : self.Hp * self.Wp].reshape(*padded.shape[:2], self.Hp, self.Wp)
        return inner[:, :, self.pad_h : self.pad_h + self.rows, self.pad_w : self.pad_w + self.cols]

    def columns(self, col: Any, padded: Any) -> None:
        """col (channels * FH * FW, n, G): row (c, i, j) is plane c shifted by offset (i, j)."""
        channels = padded.shape[0]
        by_offset = col.reshape(channels, len(self.offsets), *col.shape[1:])
        for q, offset in enumerate(self.offsets):
            by_offset[:, q] = padded[:, :, offset : offset + self.G]

    def valid(self, grid: Any) -> Any:
        """(F, n, G) grid values -> the (F, n, OH, OW) view of the real output positions."""
        F, n = grid.shape[:2]
        return grid.reshape(F, n, self.OH, self.Wp)[..., : self.OW]


class ShiftedKernel:
    """A stride-1 convolution and its epilogue, chunk by chunk over the batch."""

    name = "shifted"

    @staticmethod
    def takes(geometry: ConvGeometry) -> bool:
        """Stride 1."""
        return geometry.stride == 1

    def __init__(self, geometry: ConvGeometry, epilogue: Epilogue, xp: Any = np) -> None:
        if not self.takes(geometry):
            raise ValueError(f"the shifted kernel needs stride 1, got {geometry.stride}")
        self.geo, self.epilogue, self.xp = geometry, epilogue, xp
        g = geometry
        self.plane = ShiftedPlane(g.H, g.W, g.pad, g.pad, g.FH, g.FW)
        # dx: the output gradient padded by FH - 1 - pad (FW - 1 - pad across); where pad
        # is larger, padded by 0 and the result cropped by the difference
        q_h, q_w = g.FH - 1 - g.pad, g.FW - 1 - g.pad
        self.crop = (max(-q_h, 0), max(-q_w, 0))
        self.back_plane = ShiftedPlane(g.OH, g.OW, max(q_h, 0), max(q_w, 0), g.FH, g.FW)
        self._x: Any = None

    def _chunks(self, per_image: int, itemsize: int) -> list[slice]:
        return self.geo.chunks(per_image, itemsize)

    def forward(self, x: Any, W: Any, b: Any) -> Any:
        """The epilogue's output for x (N, C, H, W)."""
        xp, g, plane, epilogue = self.xp, self.geo, self.plane, self.epilogue
        self._x, dtype = x, x.dtype
        weights = with_bias(W, b, dtype, xp)
        out = epilogue.start(g.out_shape, dtype)
        per_image = g.C * plane.flat + (g.K + 1 + g.FN) * plane.G

        def run(chunk: slice) -> None:
            n = chunk.stop - chunk.start
            padded = scratch("shifted padded", (g.C, n, plane.flat), dtype, xp)
            col = scratch("shifted col", (g.K + 1, n, plane.G), dtype, xp)
            grid = scratch("shifted grid", (g.FN, n * plane.G), dtype, xp)
            plane.fill(padded, x[chunk].transpose(1, 0, 2, 3))
            plane.columns(col[:-1], padded)
            col[-1] = 1
            xp.matmul(weights, col.reshape(g.K + 1, -1), out=grid)
            epilogue.forward(
                chunk, Grid((g.OH, g.OW), whole=plane.valid(grid.reshape(g.FN, n, plane.G))), out
            )

        parallel_map(run, self._chunks(per_image, x.itemsize))
        return out

    def backward(self, dout: Any, W: Any, with_dx: bool) -> tuple[Any, Any, Any]:
        """(dW like W, db (FN,), dx like x or None) for the epilogue's output gradient dout."""
        xp, g, plane, back, epilogue = self.xp, self.geo, self.plane, self.back_plane, self.epilogue
        x, dtype = self._x, self._x.dtype
        # dx[c] = sum over f, (i, j) of W[f, c, FH-1-i, FW-1-j] * dpadded[f] shifted by (i, j)
        flipped = xp.ascontiguousarray(
            W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).reshape(g.C, -1), dtype=dtype
        )
        dx = xp.empty(x.shape, dtype) if with_dx else None
        (crop_h, crop_w), (H, W_) = self.crop, x.shape[2:]
        per_image = g.C * plane.flat + (g.K + 1) * plane.G + g.FN * (plane.G + back.flat)
        if with_dx:
            per_image += g.FN * g.FH * g.FW * back.G + g.C * back.G

        def run(chunk: slice) -> Any:
            n = chunk.stop - chunk.start
            dgrid = scratch("shifted dgrid", (g.FN, n, plane.G), dtype, xp)
            dpadded = scratch("shifted dpadded", (g.FN, n, back.flat), dtype, xp)
            dpadded[...] = 0
            dconv = back.interior(dpadded)
            epilogue.backward(chunk, dout, Grid((g.OH, g.OW), whole=dconv))
            dgrid[...] = 0
            plane.valid(dgrid)[...] = dconv
            padded = scratch("shifted padded", (g.C, n, plane.flat), dtype, xp)
            col = scratch("shifted col", (g.K + 1, n, plane.G), dtype, xp)
            plane.fill(padded, x[chunk].transpose(1, 0, 2, 3))
            plane.columns(col[:-1], padded)
            col[-1] = 1
            # [dW | db].T = [col; ones] @ dgrid.T: every image of the chunk in one product
            grads = col.reshape(g.K + 1, -1) @ dgrid.reshape(g.FN, -1).T
            if dx is not None:
                dcol = scratch("shifted dcol", (g.FN * g.FH * g.FW, n, back.G), dtype, xp)
                back.columns(dcol, dpadded)
                dgrid_x = scratch("shifted dx grid", (g.C, n * back.G), dtype, xp)
                xp.matmul(flipped, dcol.reshape(len(dcol), -1), out=dgrid_x)
                values = back.valid(dgrid_x.reshape(g.C, n, back.G))
                dx[chunk].transpose(1, 0, 2, 3)[...] = values[:, :, crop_h : crop_h + H, crop_w : crop_w + W_]
            return grads

        grads = in_order_sum(parallel_map(run, self._chunks(per_image, x.itemsize)))
        return grads[:-1].T.reshape(W.shape), grads[-1].copy(), dx
