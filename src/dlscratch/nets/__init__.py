"""Networks: ordered stacks of layers with the book's predict/loss/accuracy/gradient."""

from dlscratch.nets.sequential import Sequential
from dlscratch.nets.two_layer import TwoLayerNet

__all__ = ["Sequential", "TwoLayerNet"]
