"""The book's common/util.py: dlscratch.util, with conv_output_size computed as the book's."""

import numpy as np

from dlscratch.util import col2im, im2col, shuffle_dataset, smooth_curve

__all__ = ["col2im", "conv_output_size", "im2col", "np", "shuffle_dataset", "smooth_curve"]


def conv_output_size(input_size: int, filter_size: int, stride: int = 1, pad: int = 0) -> float:
    """(input_size + 2 pad - filter_size) / stride + 1, a float as the book's (24.0 for 28, 5).

    dlscratch.util.conv_output_size gives the whole number of windows (the floor) instead.
    """
    return (input_size + 2 * pad - filter_size) / stride + 1
