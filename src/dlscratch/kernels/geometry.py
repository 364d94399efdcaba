"""The window geometry every kernel shares: sizes of a convolution over a batch, and its chunks."""

from __future__ import annotations

from dlscratch.kernels.parallel import chunks
from dlscratch.layers.conv import conv_output_size

__all__ = ["CACHE_BYTES", "ConvGeometry"]

# a chunk's work arrays should fit in a core's share of the caches: small enough to stay
# there between being written and read, large enough that Python's cost per chunk is small
CACHE_BYTES = 1 << 22


class ConvGeometry:
    """Sizes of an (FN, C, FH, FW) filter bank sliding over (N, C, H, W) images.

    OH, OW: the output size (floor, as conv_output_size); Hp, Wp: the padded input's size.
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
