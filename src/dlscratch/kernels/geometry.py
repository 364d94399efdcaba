"""The window geometry the kernels share: a convolution's sizes and chunks, and two layouts of padded images.

ConvGeometry: the sizes of a filter bank sliding over a batch, and the batch's chunks.
PhaseSplit: a padded image as its four 2x2 phases, flattened (Winograd's tiles, outputs by phase).
ShiftedPlane: a padded image flattened, every filter offset one contiguous slice.
"""

from __future__ import annotations

from typing import Any

from dlscratch.kernels.parallel import chunks
from dlscratch.layers.conv import conv_output_size

__all__ = ["CACHE_BYTES", "ConvGeometry", "PhaseSplit", "ShiftedPlane"]

# a chunk's work arrays should fit in a core's share of the caches: small enough to stay
# there between being written and read, large enough that Python's cost per chunk is small
CACHE_BYTES = 1 << 22


class ConvGeometry:
    """Sizes of an (FN, C, FH, FW) filter bank sliding over (N, C, H, W) images.

    OH, OW: the output size (floor, as conv_output_size); Hp, Wp: the padded input's size;
    K = C * FH * FW, the inputs of each output value. Nothing is checked here: ConvStep
    makes one from a Convolution and an input that it has checked.

    Parameters
    ----------
    x_shape : (int, int, int, int)
        (N, C, H, W), the images' shape.
    w_shape : (int, int, int, int)
        (FN, C, FH, FW), the filters' shape.
    stride : int
        The step between two windows.
    pad : int
        The zeros on every side of each image.
    """

    def __init__(self, x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: int, pad: int) -> None:
        self.N, self.C, self.H, self.W = x_shape
        self.FN, _, self.FH, self.FW = w_shape
        self.stride, self.pad = stride, pad
        self.OH = conv_output_size(self.H, self.FH, stride, pad)
        self.OW = conv_output_size(self.W, self.FW, stride, pad)
        self.Hp, self.Wp = self.H + 2 * pad, self.W + 2 * pad
        self.K = self.C * self.FH * self.FW  # inputs per output value

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.FN, self.OH, self.OW)

    def chunks(self, values_per_image: int, itemsize: int) -> list[slice]:
        """The batch cut into chunks whose work arrays (values_per_image each) fit CACHE_BYTES.

        Depends on the sizes only, never on the thread count: the kernels' sums over
        chunks then come out the same on any number of threads.
        """
        return chunks(self.N, CACHE_BYTES // max(values_per_image * itemsize, 1))

    def key(self) -> tuple[int, ...]:
        """The sizes that decide every work array's shape (the batch excepted)."""
        return (self.C, self.H, self.W, self.FN, self.FH, self.FW, self.stride, self.pad)


class PhaseSplit:
    """A padded image held as its four 2x2 phases, each flattened, for outputs computed by 2x2 phase.

    Phase (p, q) = 2 p + q holds padded pixel (2 r + p, 2 s + q) at flat index r * width + s
    of a (rows, width) grid, zeros beyond the image. Then padded pixel (2 r + i, 2 s + j),
    for a window or tile anchored at (2 r, 2 s), is phase (i % 2, j % 2) shifted by
    ``shift(i, j)`` = (i // 2) * width + j // 2: for every (i, j) one contiguous slice of a
    phase covers every anchor of an image at once (the anchors past a row's end wrap into
    the next row: values to throw away, as in the shifted kernel).

    n images of C channels are kept as (4, C, n, flat), or with images_last as (4, C,
    flat * n), the images of each position side by side: a shift by k positions is then a
    shift by k n along the last axis, and every slice is one run over all n images, long
    even for small images.

    H, W: the image; pad: its zero border; rows, width: the phase grid, enough for every
    anchor plus the largest shift (the caller's sizes); flat adds room for the last
    anchor's largest shift.
    """

    def __init__(
        self,
        H: int,
        W: int,
        pad: int,
        rows: int,
        width: int,
        max_shift: tuple[int, int],
        images_last: bool = False,
    ) -> None:
        self.H, self.W, self.pad = H, W, pad
        self.rows, self.width, self.images_last = rows, width, images_last
        self.flat = rows * width + max_shift[1] + 1
        # where the image's pixels land in each phase: (phase rows, phase columns), (image rows, columns)
        self.places = []
        for p, q in ((0, 0), (0, 1), (1, 0), (1, 1)):
            place = []
            for parity, size, length in ((p, H, rows), (q, W, width)):
                first = (pad - parity + 1) // 2  # the first phase index holding an image pixel
                start = 2 * first + parity - pad  # ... which is image pixel `start`
                count = min(len(range(start, size, 2)), length - first)
                place.append((slice(first, first + count), slice(start, start + 2 * count, 2)))
            self.places.append(tuple(zip(*place, strict=True)))

    def shift(self, i: int, j: int) -> tuple[int, int]:
        """(phase, flat shift) of padded pixel (2 r + i, 2 s + j) from anchor (r, s)."""
        return 2 * (i % 2) + j % 2, (i // 2) * self.width + j // 2

    def positions(self, length: int, n: int) -> tuple[int, ...]:
        """The trailing shape of `length` positions of n images: (n, length), or (length n,)."""
        return (length * n,) if self.images_last else (n, length)

    def planes(self, values: Any, n: int, rows: int, width: int) -> Any:
        """(..., F, n, rows, width) view of values (..., F, positions of n images), rows * width each."""
        lead = values.shape[:-1]
        if self.images_last:
            grid = values.reshape(*lead, rows, width, n)
            return grid.transpose(*range(len(lead)), -1, -3, -2)
        return values.reshape(*lead, n, rows, width)

    def _grids(self, phases: Any, n: int) -> Any:
        """(4, C, n, rows, width) view of phases (4, C, *positions(flat, n))."""
        grid = self.rows * self.width
        if self.images_last:
            return phases[..., : grid * n].reshape(4, -1, self.rows, self.width, n).transpose(0, 1, 4, 2, 3)
        return phases[..., :grid].reshape(4, -1, n, self.rows, self.width)

    def split(self, images: Any, phases: Any) -> None:
        """phases (4, C, *positions(flat, n)) = the padded images (n, C, H, W) by phase, zeros elsewhere."""
        phases[...] = 0
        grids = self._grids(phases, len(images))
        for k, (inside, image) in enumerate(self.places):
            grids[k][(..., *inside)] = images[(..., *image)].transpose(1, 0, 2, 3)

    def merge(self, phases: Any, images: Any) -> None:
        """images (n, C, H, W) = the image pixels of phases (4, C, *positions(flat, n)), as split put them."""
        grids = self._grids(phases, len(images))
        for k, (inside, image) in enumerate(self.places):
            images[(..., *image)] = grids[k][(..., *inside)].transpose(1, 0, 2, 3)


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
