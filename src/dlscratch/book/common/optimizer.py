"""The book's common/optimizer.py: dlscratch's optimizers, with the book's form of Adam."""

import numpy as np

from dlscratch import optim as _optim
from dlscratch.optim import SGD, AdaGrad, Momentum, Nesterov, RMSprop

__all__ = ["SGD", "AdaGrad", "Adam", "Momentum", "Nesterov", "RMSprop", "np"]


class Adam(_optim.Adam):
    """Adam as the book writes it: the bias corrections folded into the step size.

    lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t);  m += (1 - beta1)(dW - m);
    v += (1 - beta2)(dW^2 - v);  W -= lr_t * m / (sqrt(v) + 1e-7).
    The same as dlscratch's Adam but for where eps sits (here it is not bias-corrected).

    Parameters
    ----------
    lr : float, default 0.001
        The learning rate before the corrections fold into it, > 0.
    beta1, beta2 : float
        The decay rates of m (the running mean of dW) and of v (of dW^2); 0.9 and 0.999.
    """

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999) -> None:
        super().__init__(lr, beta1, beta2, eps=1e-7)

    def _step(self, param: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray) -> None:
        t = self.step_count
        lr_t = self.lr * np.sqrt(1.0 - self.beta2**t) / (1.0 - self.beta1**t)
        m += (1 - self.beta1) * (grad - m)
        v += (1 - self.beta2) * (grad**2 - v)
        param -= lr_t * m / (np.sqrt(v) + self.eps)
