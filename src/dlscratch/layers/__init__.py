"""Layers: objects with forward() and backward(), the building blocks of every network."""

from dlscratch.layers.activation import LeakyRelu, Relu, Sigmoid, Tanh
from dlscratch.layers.affine import Affine
from dlscratch.layers.base import Layer
from dlscratch.layers.graph import AddLayer, MulLayer
from dlscratch.layers.loss import SoftmaxWithLoss

__all__ = [
    "AddLayer",
    "Affine",
    "Layer",
    "LeakyRelu",
    "MulLayer",
    "Relu",
    "Sigmoid",
    "SoftmaxWithLoss",
    "Tanh",
]
