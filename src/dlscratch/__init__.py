"""dlscratch: deep learning from scratch on NumPy, the way the book builds it.

The book's names are importable from here: the functions of chapters 3-4, the layers of
chapter 5 and later, TwoLayerNet and the other networks, numerical_gradient, load_mnist.
"""

from dlscratch.functions import (
    cross_entropy_error,
    identity_function,
    mean_squared_error,
    relu,
    relu_grad,
    sigmoid,
    sigmoid_grad,
    softmax,
    step_function,
    sum_squared_error,
)
from dlscratch.gradient import gradient_check, numerical_gradient
from dlscratch.layers import (
    AddLayer,
    Affine,
    LeakyRelu,
    MulLayer,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
    Tanh,
)
from dlscratch.nets import Sequential, TwoLayerNet
from dlscratch.optim import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop

__version__ = "0.1.0"

__all__ = [
    "SGD",
    "AdaGrad",
    "Adam",
    "AddLayer",
    "Affine",
    "LeakyRelu",
    "Momentum",
    "MulLayer",
    "Nesterov",
    "RMSprop",
    "Relu",
    "Sequential",
    "Sigmoid",
    "SoftmaxWithLoss",
    "Tanh",
    "TwoLayerNet",
    "cross_entropy_error",
    "gradient_check",
    "identity_function",
    "mean_squared_error",
    "numerical_gradient",
    "relu",
    "relu_grad",
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "step_function",
    "sum_squared_error",
]
