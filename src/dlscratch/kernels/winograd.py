"""3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3).

Each 2x2 block of outputs (a "tile") depends on a 4x4 block d of the padded input. With
the constant matrices below,

    tile = A^T [ (G g G^T) * (B^T d B) ] A      (* elementwise; g the 3x3 filter)

computes the 2x2 outputs with 16 multiplications instead of 36. Summed over input
channels, the 16 products become 16 matrix products (one per position of the 4x4
transformed tile): M[k] = U[k] @ V[k] with U = G g G^T (FN, C) and V = B^T d B (C, tiles),
2.25 times fewer operations than the direct convolution's one product. The gradients
follow by the chain rule through the same linear maps:

    dM = A dtile A^T,   dU = dM @ V.T  ->  dW = G^T dU G,   dV = U.T @ dM  ->  dd = B dV B^T

and every tile's dd is added back onto the 16 input pixels it came from (tiles overlap by
two pixels). The bias rides on M[5] (row 1, column 1 of the tile): A^T e_11 A is all ones.

The layout. The padded input is split into its four 2x2 phases (even/odd rows and
columns), each flattened with its rows S = TW + 1 apart; then the 16 pixels of every tile
are the same flat position in 16 shifted slices of the phases, contiguous copies (as in
the shifted kernel), and one extra column of tiles per row is computed and thrown away.
The 2x2 output phases are exactly where a following 2x2 pooling window's corners are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlscratch.kernels.epilogue import PHASES, Epilogue, Grid
from dlscratch.kernels.geometry import ConvGeometry
from dlscratch.kernels.parallel import in_order_sum, parallel_map
from dlscratch.kernels.workspace import scratch

__all__ = ["WinogradKernel"]

B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)
# the transforms of a tile flattened row by row: V = BB @ d (16 x 16), tile = AA @ M (4 x 16)
BB = np.kron(B_T, B_T)
AA = np.kron(A_T, A_T)
BIAS_POSITION = 5  # (row 1, column 1) of the transformed tile


def _b_transposed(xp: Any, d0: Any, d1: Any, d2: Any, d3: Any, out: Any) -> None:
    """out[0..3] = B^T @ (d0, d1, d2, d3): d0 - d2, d1 + d2, d2 - d1, d1 - d3."""
    xp.subtract(d0, d2, out=out[0])
    xp.add(d1, d2, out=out[1])
    xp.subtract(d2, d1, out=out[2])
    xp.subtract(d1, d3, out=out[3])


class WinogradKernel:
    """A 3x3, stride-1 convolution and its epilogue by F(2x2, 3x3), chunk by chunk over the batch."""

    name = "winograd"

    @staticmethod
    def takes(geometry: ConvGeometry) -> bool:
        """3x3 filters, stride 1."""
        return (geometry.FH, geometry.FW, geometry.stride) == (3, 3, 1)

    def __init__(self, geometry: ConvGeometry, epilogue: Epilogue, xp: Any = np) -> None:
        g = geometry
        if not self.takes(g):
            raise ValueError(
                f"the Winograd kernel needs 3x3 filters and stride 1, got {g.FH}x{g.FW}, stride {g.stride}"
            )
        self.geo, self.epilogue, self.xp = g, epilogue, xp
        self.TH, self.TW = -(-g.OH // 2), -(-g.OW // 2)  # tiles down and across
        self.S = self.TW + 1  # a phase's row length: the tiles of a row and one thrown away
        self.L = self.TH * self.S  # tile positions per image
        self.flat = (self.TH + 1) * self.S + 1  # a flat phase: the last tile's shifts stay in range
        # tile pixel (i, j) lies in phase (i % 2, j % 2), shifted by (i // 2) rows, (j // 2) columns
        self.offsets = [(2 * (i % 2) + j % 2, (i // 2) * self.S + j // 2) for i in range(4) for j in range(4)]
        self._x: Any = None
        self._V: list[Any] = []
        self._U: Any = None

    def _phase_slices(self, p: int, q: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
        """Where input pixels fall in phase (p, q): (rows, columns) of the phase, then of x."""
        g = self.geo
        places = []
        for parity, size in ((p, g.H), (q, g.W)):
            first = (g.pad - parity + 1) // 2  # first phase index holding an input pixel
            start = 2 * first + parity - g.pad  # ... which is input pixel `start`
            count = len(range(start, size, 2))
            places.append((slice(first, first + count), slice(start, size, 2)))
        (rows, x_rows), (cols, x_cols) = places
        return (rows, cols), (x_rows, x_cols)

    def _phases(self, images: Any) -> list[tuple[tuple[slice, slice], tuple[slice, slice]]]:
        return [self._phase_slices(p, q) for p, q in PHASES]

    def _chunks(self, per_image: int, itemsize: int) -> list[slice]:
        return self.geo.chunks(per_image, itemsize)

    def forward(self, x: Any, W: Any, b: Any) -> Any:
        """The epilogue's output for x (N, C, H, W)."""
        xp, g, L, epilogue = self.xp, self.geo, self.L, self.epilogue
        dtype = x.dtype
        self._x = x
        # U = G g G^T for every filter and channel: (16, FN, C)
        self._U = U = xp.asarray(np.einsum("ai,fcij,bj->abfc", G, W, G).reshape(16, g.FN, g.C), dtype=dtype)
        AAx = xp.asarray(AA, dtype=dtype)
        out = epilogue.start(g.out_shape, dtype, planes=(self.TH, self.S))
        places = self._phases(x)
        per_image = 4 * g.C * self.flat + 32 * g.C * L + 20 * g.FN * L
        chunks = self._chunks(per_image, x.itemsize)
        self._V = [None] * len(chunks)

        def run(k: int) -> None:
            chunk = chunks[k]
            n = chunk.stop - chunk.start
            phases = self._split(x[chunk], places, "winograd phases", dtype)
            V = self._V[k] = xp.empty((16, g.C, n * L), dtype)
            self._transform_input(phases, V.reshape(4, 4, g.C, n, L))
            M = xp.matmul(U, V, out=scratch("winograd M", (16, g.FN, n * L), dtype, xp))
            M[BIAS_POSITION] += b.reshape(-1, 1)
            Y = xp.matmul(AAx, M.reshape(16, -1), out=scratch("winograd Y", (4, g.FN * n * L), dtype, xp))
            epilogue.forward(chunk, Grid((g.OH, g.OW), planes=Y.reshape(4, g.FN, n, self.TH, self.S)), out)

        parallel_map(run, range(len(chunks)))
        return out

    def _transform_input(self, phases: Any, V: Any) -> None:
        """V[a, b] = (B^T d B)[a, b] for every tile d: phases (4, C, n, flat) -> V (4, 4, C, n, L).

        B^T d B is B^T applied to the tile's columns, then to its rows. B^T's rows pick
        d0 - d2, d1 + d2, d2 - d1, d1 - d3 out of four consecutive pixels; pixels 0 and 2 of
        every tile are one phase at two shifts (1 apart across, S apart down), pixels 1 and
        3 the other phase: each of the eight, then sixteen, results is one contiguous
        operation over the whole chunk.
        """
        xp, L, S = self.xp, self.L, self.S
        C, n = phases.shape[1:3]
        rows = scratch("winograd rows", (4, 2, C, n, L + 1), phases.dtype, xp)  # B^T down the columns
        for q in (0, 1):
            first, second = phases[q], phases[2 + q]  # even, odd padded rows of column phase q
            d0, d2 = first[..., : L + 1], first[..., S : S + L + 1]
            d1, d3 = second[..., : L + 1], second[..., S : S + L + 1]
            _b_transposed(xp, d0, d1, d2, d3, rows[:, q])
        for a in range(4):
            d0, d2 = rows[a, 0][..., :L], rows[a, 0][..., 1 : L + 1]
            d1, d3 = rows[a, 1][..., :L], rows[a, 1][..., 1 : L + 1]
            _b_transposed(xp, d0, d1, d2, d3, V[a])

    def _split(self, images: Any, places: list[Any], name: str, dtype: Any) -> Any:
        """images (n, C, H, W) padded and split into the four flat phases (4, C, n, flat)."""
        n, C = images.shape[:2]
        phases = scratch(name, (4, C, n, self.flat), dtype, self.xp)
        phases[...] = 0
        grids = phases[:, :, :, : (self.TH + 1) * self.S].reshape(4, C, n, self.TH + 1, self.S)
        for k, ((rows, cols), (x_rows, x_cols)) in enumerate(places):
            grids[k][:, :, rows, cols] = images[:, :, x_rows, x_cols].transpose(1, 0, 2, 3)
        return phases

    def backward(self, dout: Any, W: Any, with_dx: bool) -> tuple[Any, Any, Any]:
        """(dW like W, db (FN,), dx like x or None) for the epilogue's output gradient dout."""
        xp, g, L, epilogue = self.xp, self.geo, self.L, self.epilogue
        x, dtype, U = self._x, self._x.dtype, self._U
        AAt, BBt = xp.asarray(AA.T.copy(), dtype=dtype), xp.asarray(BB.T.copy(), dtype=dtype)
        Ut = xp.ascontiguousarray(U.transpose(0, 2, 1))
        dx = xp.empty(x.shape, dtype) if with_dx else None
        places = self._phases(x)
        per_image = 4 * g.C * self.flat + 32 * g.C * L + 20 * g.FN * L
        chunks = self._chunks(per_image, x.itemsize)

        def run(k: int) -> tuple[Any, Any]:
            chunk = chunks[k]
            n = chunk.stop - chunk.start
            dY = scratch("winograd dY", (4, g.FN, n, self.TH, self.S), dtype, xp)
            dY[...] = 0
            epilogue.backward(chunk, dout, Grid((g.OH, g.OW), planes=dY))
            dM = xp.matmul(AAt, dY.reshape(4, -1), out=scratch("winograd dM", (16, g.FN * n * L), dtype, xp))
            dM = dM.reshape(16, g.FN, n * L)
            dU = xp.matmul(dM, self._V[k].transpose(0, 2, 1))
            db = dM[BIAS_POSITION].sum(axis=1)
            if dx is not None:
                dV = xp.matmul(Ut, dM, out=scratch("winograd dV", (16, g.C, n * L), dtype, xp))
                dtiles = xp.matmul(
                    BBt, dV.reshape(16, -1), out=scratch("winograd dtiles", (16, g.C * n * L), dtype, xp)
                )
                dtiles = dtiles.reshape(16, g.C, n, L)
                dphases = scratch("winograd dphases", (4, g.C, n, self.flat), dtype, xp)
                dphases[...] = 0
                for t, (phase, offset) in enumerate(self.offsets):
                    dphases[phase][:, :, offset : offset + L] += dtiles[t]
                grids = dphases[:, :, :, : (self.TH + 1) * self.S].reshape(4, g.C, n, self.TH + 1, self.S)
                target = dx[chunk]
                for p, ((rows, cols), (x_rows, x_cols)) in enumerate(places):
                    target[:, :, x_rows, x_cols] = grids[p][:, :, rows, cols].transpose(1, 0, 2, 3)
            return dU, db

        parts = parallel_map(run, range(len(chunks)))
        dU, db = in_order_sum([dU for dU, _ in parts]), in_order_sum([db for _, db in parts])
        dW = np.einsum("ai,abfc,bj->fcij", G, np.asarray(dU, dtype=np.float64).reshape(4, 4, g.FN, g.C), G)
        return xp.asarray(dW, dtype=dtype), db, dx
