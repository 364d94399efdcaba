"""Networks: ordered stacks of layers with the book's predict/loss/accuracy/gradient."""

from dlscratch.nets.conv_nets import DeepConvNet, SimpleConvNet
from dlscratch.nets.multi_layer import MultiLayerNet, MultiLayerNetExtend
from dlscratch.nets.sequential import Sequential
from dlscratch.nets.two_layer import TwoLayerNet

__all__ = [
    "DeepConvNet",
    "MultiLayerNet",
    "MultiLayerNetExtend",
    "Sequential",
    "SimpleConvNet",
    "TwoLayerNet",
]
