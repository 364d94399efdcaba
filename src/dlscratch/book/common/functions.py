"""The book's common/functions.py: dlscratch.functions under the book's names."""

import numpy as np

from dlscratch.functions import (
    cross_entropy_error,
    identity_function,
    relu,
    relu_grad,
    sigmoid,
    sigmoid_grad,
    softmax,
    softmax_loss,
    step_function,
    sum_squared_error,
)

# what ``from common.functions import *`` gives a book script, numpy's np included
__all__ = [
    "cross_entropy_error",
    "identity_function",
    "np",
    "relu",
    "relu_grad",
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "softmax_loss",
    "step_function",
    "sum_squared_error",
]
