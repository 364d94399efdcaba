"""The book's common/gradient.py: dlscratch.gradient under the book's names."""

import numpy as np

from dlscratch.gradient import numerical_gradient, numerical_gradient_1d, numerical_gradient_2d

_numerical_gradient_1d = numerical_gradient_1d  # the book's (private) name

__all__ = ["np", "numerical_gradient", "numerical_gradient_2d"]
