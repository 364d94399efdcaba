"""Layers: objects with forward() and backward(), the building blocks of every network."""

from dlscratch.layers.activation import LeakyRelu, Relu, Sigmoid, Tanh
from dlscratch.layers.affine import Affine
from dlscratch.layers.base import Layer
from dlscratch.layers.conv import Convolution, col2im, conv_output_size, im2col
from dlscratch.layers.dropout import Dropout
from dlscratch.layers.graph import AddLayer, MulLayer
from dlscratch.layers.loss import SoftmaxWithLoss
from dlscratch.layers.normalization import BatchNormalization
from dlscratch.layers.pooling import Pooling

__all__ = [
    "AddLayer",
    "Affine",
    "BatchNormalization",
    "Convolution",
    "Dropout",
    "Layer",
    "LeakyRelu",
    "MulLayer",
    "Pooling",
    "Relu",
    "Sigmoid",
    "SoftmaxWithLoss",
    "Tanh",
    "col2im",
    "conv_output_size",
    "im2col",
]
