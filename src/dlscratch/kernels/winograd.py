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
columns), each flattened with its rows S = TW + 1 apart (geometry.PhaseSplit); then the
16 pixels of every tile are the same flat position in 16 shifted slices of the phases,
and B^T d B is a few whole-chunk operations on such slices (one extra column of tiles per
row is computed and thrown away). For small images the work arrays hold each position's
images side by side, so that every operation is one long run. The 2x2 output phases are
exactly where a following 2x2 pooling window's corners are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlscratch.kernels.epilogue import Epilogue, Grid
from dlscratch.kernels.geometry import ConvGeometry, PhaseSplit
from dlscratch.kernels.parallel import in_order_sum, parallel_map
from dlscratch.kernels.workspace import scratch

__all__ = ["WinogradKernel"]

B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)
# the output transform of a tile flattened row by row: tile = AA @ M (4 x 16)
AA = np.kron(A_T, A_T)
BIAS_POSITION = 5  # (row 1, column 1) of the transformed tile
# tile positions per image below which the work arrays hold a position's images side by side
IMAGES_LAST_BELOW = 100


def _b_transposed(xp: Any, d0: Any, d1: Any, d2: Any, d3: Any, out: Any) -> None:
    """out[0..3] = B^T @ (d0, d1, d2, d3): d0 - d2, d1 + d2, d2 - d1, d1 - d3 (any shapes alike)."""
    xp.subtract(d0, d2, out=out[0])
    xp.add(d1, d2, out=out[1])
    xp.subtract(d2, d1, out=out[2])
    xp.subtract(d1, d3, out=out[3])


def _b_back(xp: Any, d: Any, first: Any, second: Any, shift: int, name: str) -> None:
    """The transpose of _b_transposed over a shift: d (4, ..., m) -> first, second (..., m + shift).

    _b_transposed read pixels 0 and 2 from `first` at offsets 0 and `shift`, pixels 1 and 3
    from `second`; this writes back pixel 0 <- d0 and 2 <- d1 + d2 - d0 into first, pixel
    1 <- d1 - d2 + d3 and 3 <- -d3 into second (overwritten, zeros past the last pixel).
    """
    m = d.shape[-1]
    first[..., :m] = d[0]
    first[..., m:] = 0
    pixel2 = xp.add(d[1], d[2], out=scratch(name, d[0].shape, d.dtype, xp))
    pixel2 -= d[0]
    first[..., shift : shift + m] += pixel2
    xp.subtract(d[1], d[2], out=second[..., :m])
    second[..., :m] += d[3]
    second[..., m:] = 0
    second[..., shift : shift + m] -= d[3]


class WinogradKernel:
    """A 3x3, stride-1 convolution and its epilogue by F(2x2, 3x3), chunk by chunk over the batch.

    forward(x, W, b, train) takes x (N, C, H, W), W (FN, C, 3, 3) and b (FN,) of the
    geometry's sizes and returns the epilogue's output; backward(dout, W, with_dx) returns
    (dW, db, dx or None).

    Parameters
    ----------
    geometry : ConvGeometry
        The convolution's sizes: 3x3 filters, stride 1, any pad.
    epilogue : Epilogue
        The ReLU and pooling applied to each chunk's output while it is in the cache.
    xp : module, default numpy
        The array module of the transforms and products.

    Raises
    ------
    ValueError
        For filters other than 3x3, or a stride other than 1.
    """

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
        # tile (r, s) starts at padded pixel (2 r, 2 s): its 16 pixels are shifts of the phases
        # small images (few tiles) keep each position's images side by side: longer runs
        images_last = self.TH * (self.TW + 1) < IMAGES_LAST_BELOW
        self.split = PhaseSplit(g.H, g.W, g.pad, self.TH + 1, self.TW + 1, (1, 1), images_last)
        self.S = self.split.width  # a phase's row: the tiles of a row and one thrown away
        self.L = self.TH * self.S  # tile positions per image
        self.offsets = [self.split.shift(i, j) for i in range(4) for j in range(4)]
        self._x: Any = None
        self._V: list[Any] = []
        self._U: Any = None

    def _chunks(self, per_image: int, itemsize: int) -> list[slice]:
        return self.geo.chunks(per_image, itemsize)

    def forward(self, x: Any, W: Any, b: Any, train: bool = True) -> Any:
        """The epilogue's output for x (N, C, H, W); train: keep what backward needs."""
        xp, g, L, epilogue = self.xp, self.geo, self.L, self.epilogue
        dtype = x.dtype
        self._x = x
        # U = G g G^T for every filter and channel: (16, FN, C)
        self._U = U = xp.asarray(np.einsum("ai,fcij,bj->abfc", G, W, G).reshape(16, g.FN, g.C), dtype=dtype)
        AAx = xp.asarray(AA, dtype=dtype)
        out = epilogue.start(g.out_shape, dtype)
        split = self.split
        per_image = 4 * g.C * self.split.flat + 32 * g.C * L + 20 * g.FN * L
        chunks = self._chunks(per_image, x.itemsize)
        self._V = [None] * len(chunks)

        def run(k: int) -> None:
            chunk = chunks[k]
            n = chunk.stop - chunk.start
            phases = scratch("winograd phases", (4, g.C, *split.positions(split.flat, n)), dtype, xp)
            split.split(x[chunk], phases)
            shape = (16, g.C, n * L)
            V = self._V[k] = xp.empty(shape, dtype) if train else scratch("winograd V", shape, dtype, xp)
            self._transform_input(phases, V, n)
            M = xp.matmul(U, V, out=scratch("winograd M", (16, g.FN, n * L), dtype, xp))
            M[BIAS_POSITION] += b.reshape(-1, 1)
            Y = xp.matmul(AAx, M.reshape(16, -1), out=scratch("winograd Y", (4, g.FN * n * L), dtype, xp))
            planes = split.planes(Y.reshape(4, g.FN, n * L), n, self.TH, self.S)
            epilogue.forward(chunk, Grid((g.OH, g.OW), planes=planes), out)

        parallel_map(run, range(len(chunks)))
        return out

    def _transform_input(self, phases: Any, V: Any, n: int) -> None:
        """V[a, b] = (B^T d B)[a, b] for every tile d of n images: phases (4, C, ...) -> V (16, C, n L).

        B^T d B is B^T applied down the tile's columns, then along its rows. B^T's rows take
        d0 - d2, d1 + d2, d2 - d1, d1 - d3 of four consecutive pixels; pixels 0 and 2 of every
        tile are one phase at two shifts (S apart down, 1 apart across), pixels 1 and 3 the
        other phase, so each step is four operations over the whole chunk.
        """
        xp, L, S, split = self.xp, self.L, self.S, self.split
        unit = n if split.images_last else 1  # a position's step along the last axis
        C = phases.shape[1]
        even, odd = phases.reshape(2, 2, C, *phases.shape[2:])  # even, odd rows: (column parity, C, ...)
        rows = scratch("winograd rows", (4, 2, C, *split.positions(L + 1, n)), phases.dtype, xp)
        top, bottom = slice(0, (L + 1) * unit), slice(S * unit, (S + L + 1) * unit)  # tile rows 0, 1 and 2, 3
        _b_transposed(xp, even[..., top], odd[..., top], even[..., bottom], odd[..., bottom], rows)
        left, right = rows[:, 0], rows[:, 1]  # (a, C, ...) of tile columns 0, 1 and, shifted, 2, 3
        by_row = V.reshape(4, 4, C, *split.positions(L, n))
        out = by_row.transpose(1, 0, *range(2, by_row.ndim))  # (b, a, C, ...)
        _b_transposed(
            xp, left[..., : L * unit], right[..., : L * unit], left[..., unit:], right[..., unit:], out
        )

    def _transform_back(self, dV: Any, dphases: Any, n: int) -> None:
        """dphases (4, C, ...) = every tile's B dV B^T added onto its 16 pixels; dV (16, C, n L).

        The transpose of _transform_input, step by step: each B^T output that read pixels
        (0, 2) or (1, 3) sends its gradient back to them, B's columns summing what each
        pixel gets: pixel 0 <- dV0, 1 <- dV1 - dV2 + dV3, 2 <- dV1 + dV2 - dV0, 3 <- -dV3.
        """
        xp, L, S, split = self.xp, self.L, self.S, self.split
        unit = n if split.images_last else 1
        C = dphases.shape[1]
        by_row = dV.reshape(4, 4, C, *split.positions(L, n))
        by_column = by_row.transpose(1, 0, *range(2, by_row.ndim))  # (b, a, C, ...)
        rows = scratch("winograd drows", (2, 4, C, *split.positions(L + 1, n)), dV.dtype, xp)
        _b_back(xp, by_column, rows[0], rows[1], unit, "winograd dcols")
        dphases[...] = 0
        even, odd = dphases.reshape(2, 2, C, *dphases.shape[2:])
        span = slice(0, (L + 1 + S) * unit)
        _b_back(
            xp,
            rows.transpose(1, 0, *range(2, rows.ndim)),
            even[..., span],
            odd[..., span],
            S * unit,
            "winograd dphase",
        )

    def backward(self, dout: Any, W: Any, with_dx: bool) -> tuple[Any, Any, Any]:
        """(dW like W, db (FN,), dx like x or None) for the epilogue's output gradient dout."""
        xp, g, L, epilogue = self.xp, self.geo, self.L, self.epilogue
        x, dtype, U = self._x, self._x.dtype, self._U
        AAt = xp.asarray(AA.T.copy(), dtype=dtype)
        Ut = xp.ascontiguousarray(U.transpose(0, 2, 1))
        dx = xp.empty(x.shape, dtype) if with_dx else None
        split = self.split
        per_image = 4 * g.C * self.split.flat + 32 * g.C * L + 20 * g.FN * L
        chunks = self._chunks(per_image, x.itemsize)

        def run(k: int) -> tuple[Any, Any]:
            chunk = chunks[k]
            n = chunk.stop - chunk.start
            dY = scratch("winograd dY", (4, g.FN, n * L), dtype, xp)
            dY[...] = 0
            epilogue.backward(chunk, dout, Grid((g.OH, g.OW), planes=split.planes(dY, n, self.TH, self.S)))
            dM = xp.matmul(AAt, dY.reshape(4, -1), out=scratch("winograd dM", (16, g.FN * n * L), dtype, xp))
            dM = dM.reshape(16, g.FN, n * L)
            dU = xp.matmul(dM, self._V[k].transpose(0, 2, 1))
            db = dM[BIAS_POSITION].sum(axis=1)
            if dx is not None:
                dV = xp.matmul(Ut, dM, out=scratch("winograd dV", (16, g.C, n * L), dtype, xp))
                dphases = scratch("winograd dphases", (4, g.C, *split.positions(split.flat, n)), dtype, xp)
                self._transform_back(dV, dphases, n)
                split.merge(dphases, dx[chunk])
            return dU, db

        parts = parallel_map(run, range(len(chunks)))
        dU, db = in_order_sum([dU for dU, _ in parts]), in_order_sum([db for _, db in parts])
        dW = np.einsum("ai,abfc,bj->fcij", G, np.asarray(dU, dtype=np.float64).reshape(4, 4, g.FN, g.C), G)
        return xp.asarray(dW, dtype=dtype), db, dx
