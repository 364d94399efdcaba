"""The book's common/multi_layer_net.py: dlscratch's MultiLayerNet with the book's loss arithmetic."""

from dlscratch import nets as _nets
from dlscratch.book.common.layers import SoftmaxWithLoss

__all__ = ["MultiLayerNet"]


class MultiLayerNet(_nets.MultiLayerNet):
    """dlscratch's MultiLayerNet (the book's signature) whose loss adds the book's 1e-7."""

    loss_layer_class = SoftmaxWithLoss
