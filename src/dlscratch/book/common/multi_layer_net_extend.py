"""The book's common/multi_layer_net_extend.py: dlscratch's net with the book's loss and batch norm."""

from dlscratch import nets as _nets
from dlscratch.book.common.layers import BatchNormalization, SoftmaxWithLoss

__all__ = ["MultiLayerNetExtend"]


class MultiLayerNetExtend(_nets.MultiLayerNetExtend):
    """dlscratch's MultiLayerNetExtend (the book's signature) with the book's SoftmaxWithLoss
    and BatchNormalization arithmetic."""

    loss_layer_class = SoftmaxWithLoss
    batch_norm_class = BatchNormalization
