"""dlscratch: deep learning from scratch on NumPy, the way the book builds it.

The book's names are importable from here: the functions of chapters 3-4, the layers of
chapter 5 and later, TwoLayerNet and the other networks, numerical_gradient, load_mnist.
"""

from dlscratch.checkpoint import checkpoint_callback, load_checkpoint, restore_checkpoint, save_checkpoint
from dlscratch.functions import (
    cross_entropy_error,
    identity_function,
    mean_squared_error,
    relu,
    relu_grad,
    sigmoid,
    sigmoid_grad,
    softmax,
    softmax_loss,
    step_function,
    sum_squared_error,
)
from dlscratch.gradient import gradient_check, numerical_gradient
from dlscratch.graph_picture import ComputationalGraph
from dlscratch.kernels import get_num_threads, set_num_threads
from dlscratch.layers import (
    AddLayer,
    Affine,
    BatchNormalization,
    Convolution,
    Dropout,
    LeakyRelu,
    MulLayer,
    Pooling,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
    Tanh,
    col2im,
    conv_output_size,
    im2col,
)
from dlscratch.nets import (
    DeepConvNet,
    MultiLayerNet,
    MultiLayerNetExtend,
    Sequential,
    SimpleConvNet,
    TwoLayerNet,
)
from dlscratch.optim import SGD, AdaGrad, Adam, Momentum, Nesterov, Optimizer, RMSprop, get_optimizer
from dlscratch.serialize import load, save
from dlscratch.train import DivergenceError, History, NonFiniteLossError, Trainer

__version__ = "0.1.0"

__all__ = [
    "SGD",
    "AdaGrad",
    "Adam",
    "AddLayer",
    "Affine",
    "BatchNormalization",
    "ComputationalGraph",
    "Convolution",
    "DeepConvNet",
    "DivergenceError",
    "Dropout",
    "History",
    "LeakyRelu",
    "Momentum",
    "MulLayer",
    "MultiLayerNet",
    "MultiLayerNetExtend",
    "Nesterov",
    "NonFiniteLossError",
    "Optimizer",
    "Pooling",
    "RMSprop",
    "Relu",
    "Sequential",
    "Sigmoid",
    "SimpleConvNet",
    "SoftmaxWithLoss",
    "Tanh",
    "Trainer",
    "TwoLayerNet",
    "checkpoint_callback",
    "col2im",
    "conv_output_size",
    "cross_entropy_error",
    "get_num_threads",
    "get_optimizer",
    "gradient_check",
    "identity_function",
    "im2col",
    "load",
    "load_checkpoint",
    "mean_squared_error",
    "numerical_gradient",
    "relu",
    "relu_grad",
    "restore_checkpoint",
    "save",
    "save_checkpoint",
    "set_num_threads",
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "softmax_loss",
    "step_function",
    "sum_squared_error",
]
