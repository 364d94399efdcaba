"""What follows a convolution inside its kernel: ReLU, 2x2 max pooling, both, or nothing.

A kernel hands each chunk's convolution output to its epilogue while it is still in the
cache, as a ``Grid``: the (FN, n, OH, OW) values filter first, held whole or as its four
2x2 phases (phase (u, v) holds output pixels (2i + u, 2j + v)). The epilogue writes the
step's output and keeps what its backward pass needs; backward writes the convolution
output's gradient into a zeroed Grid the same way. So Convolution -> Relu -> Pooling(2, 2)
runs as one pass over the data, with the numbers the three layers compute:

- ReLU: y = max(v, 0); the gradient passes where v > 0.
- Pooling before ReLU: ReLU never changes which of two values is larger, so
  relu(max(window)) == max(relu(window)), and the gradient reaches the same position
  (a window whose maximum is <= 0 passes no gradient either way). ReLU then touches a
  quarter of the values.
- A window's four values are its four phases at one position: its maximum is
  max(max(top-left, top-right), max(bottom-left, bottom-right)), and three yes/no
  switches remember which one it was. On a tie the first in row-major order wins, as in
  Pooling and torch's max_pool2d. Rows or columns that no whole window covers are
  dropped, as Pooling does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlscratch.kernels.workspace import scratch

__all__ = ["PHASES", "Epilogue", "Grid"]

PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))


class Grid:
    """A chunk's convolution values, (FN, n, OH, OW) filter first.

    Held as one of ``whole`` or ``planes``; the other is None.

    Parameters
    ----------
    shape : (int, int)
        (OH, OW), the output's height and width.
    whole : array or None, default None
        The values as one (FN, n, OH, OW) view.
    planes : array or None, default None
        The values as an (4, FN, n, R, S) array whose plane k = 2 u + v holds output pixel
        (2 i + u, 2 j + v) at [k, :, :, i, j] for i < ceil((OH - u) / 2),
        j < ceil((OW - v) / 2) (the rest: values to ignore, or zeros to keep, as the
        kernel says).
    """

    def __init__(self, shape: tuple[int, int], whole: Any = None, planes: Any = None) -> None:
        self.OH, self.OW = shape
        self.whole, self.planes = whole, planes

    def phase(self, k: int) -> Any:
        """The (FN, n, ceil((OH - u) / 2), ceil((OW - v) / 2)) view of phase k = 2 u + v."""
        u, v = PHASES[k]
        if self.planes is None:
            return self.whole[:, :, u::2, v::2]
        return self.planes[k][:, :, : (self.OH - u + 1) // 2, : (self.OW - v + 1) // 2]

    def read(self, into: Any) -> None:
        """Copy the values into `into`, an (FN, n, OH, OW) array or view."""
        if self.planes is None:
            into[...] = self.whole
            return
        for k, (u, v) in enumerate(PHASES):
            into[:, :, u::2, v::2] = self.phase(k)

    def corners(self, PH: int, PW: int) -> list[Any]:
        """The four corners of the PH x PW pooling windows, (FN, n, R, S) each.

        With planes, whole planes (extra positions included, contiguous); else views.
        """
        if self.planes is not None:
            return list(self.planes)
        return [self.phase(k)[:, :, :PH, :PW] for k in range(4)]


class Epilogue:
    """ReLU (relu=True) and/or 2x2 max pooling with stride 2 (pool=True) after a convolution.

    start(conv_shape, dtype) begins a batch and returns its output array; forward(chunk,
    grid, out) writes out[chunk]; backward(chunk, dout, dgrid) writes the convolution
    output's gradient of those images into dgrid, which the kernel has zeroed. What
    forward keeps for backward (the output, the pooling switches of each chunk) is this
    object's; the kernel hands backward the chunks forward had.

    Parameters
    ----------
    relu : bool
        Apply ReLU, y = max(v, 0), to the convolution's output.
    pool : bool
        Apply 2x2 max pooling with stride 2: (N, FN, OH, OW) becomes
        (N, FN, OH // 2, OW // 2).
    xp : module, default numpy
        The array module of the output and the switches.
    """

    def __init__(self, relu: bool, pool: bool, xp: Any = np) -> None:
        self.relu, self.pool, self.xp = relu, pool, xp
        self._out: Any = None  # forward's output (its sign is ReLU's mask)
        self._switches: dict[int, list[Any]] = {}  # pooling: each chunk's three, see _pool_forward

    def out_shape(self, conv_shape: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        N, FN, OH, OW = conv_shape
        return (N, FN, OH // 2, OW // 2) if self.pool else conv_shape

    def start(self, conv_shape: tuple[int, int, int, int], dtype: Any) -> Any:
        """A new batch: the output array, filled chunk by chunk."""
        self._out = self.xp.empty(self.out_shape(conv_shape), dtype)
        self._switches = {}
        return self._out

    def forward(self, chunk: slice, grid: Grid, out: Any) -> None:
        target = out[chunk].transpose(1, 0, 2, 3)  # (FN, n, ...) like the grid
        if self.pool:
            self._pool_forward(chunk, grid, target)
        elif grid.whole is not None:
            self._activate(grid.whole, target)
        else:
            for k, (u, v) in enumerate(PHASES):
                self._activate(grid.phase(k), target[:, :, u::2, v::2])

    def _activate(self, values: Any, target: Any) -> None:
        if self.relu:
            self.xp.maximum(values, 0, out=target)
        else:
            target[...] = values

    def _pool_forward(self, chunk: slice, grid: Grid, target: Any) -> None:
        xp, (PH, PW) = self.xp, target.shape[2:]
        top_left, top_right, bottom_left, bottom_right = grid.corners(PH, PW)
        # laid out as the corners are (empty_like keeps their order in memory): every step one pass
        switches = self._switches[chunk.start] = [xp.empty_like(top_left, dtype=bool) for _ in range(3)]
        # switches: the left wins its pair (top, bottom), the top pair wins; ties go first
        xp.greater_equal(top_left, top_right, out=switches[0])
        xp.greater_equal(bottom_left, bottom_right, out=switches[1])
        top = xp.maximum(top_left, top_right, out=xp.empty_like(top_left))
        bottom = xp.maximum(bottom_left, bottom_right, out=xp.empty_like(top_left))
        xp.greater_equal(top, bottom, out=switches[2])
        pooled = xp.maximum(top, bottom, out=top)
        self._activate(pooled[:, :, :PH, :PW], target)

    def backward(self, chunk: slice, dout: Any, dgrid: Grid) -> None:
        xp, d = self.xp, dout[chunk].transpose(1, 0, 2, 3)  # (FN, n, ...)
        if self.relu:  # the gradient passes where the output is positive
            passes = xp.greater(
                self._out[chunk].transpose(1, 0, 2, 3), 0, out=scratch("relu passes", d.shape, bool, xp)
            )
            d = xp.multiply(d, passes, out=scratch("relu dout", d.shape, d.dtype, xp))
        if self.pool:
            self._pool_backward(chunk, d, dgrid)
        elif dgrid.whole is not None:
            dgrid.whole[...] = d
        else:
            for k, (u, v) in enumerate(PHASES):
                dgrid.phase(k)[...] = d[:, :, u::2, v::2]

    def _pool_backward(self, chunk: slice, d: Any, dgrid: Grid) -> None:
        """Each window's gradient to its winning pair, then to that pair's winning corner."""
        xp, (PH, PW) = self.xp, d.shape[2:]
        corners = dgrid.corners(PH, PW)
        switches = self._switches[chunk.start]
        if corners[0].shape[2:] != (PH, PW):  # planes: the window gradients laid out like them, zeros around
            spread = xp.zeros_like(corners[0])
            spread[:, :, :PH, :PW] = d
            d = spread
        d_top = xp.multiply(d, switches[2], out=xp.empty_like(corners[0]))
        d_bottom = xp.subtract(d, d_top, out=xp.empty_like(corners[0]))
        xp.multiply(d_top, switches[0], out=corners[0])
        xp.subtract(d_top, corners[0], out=corners[1])
        xp.multiply(d_bottom, switches[1], out=corners[2])
        xp.subtract(d_bottom, corners[2], out=corners[3])
