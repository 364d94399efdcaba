"""Optimizers of chapter 6: each updates the parameter arrays in place.

``update(params, grads)`` takes two dicts keyed alike. Updating in place keeps every
layer connected to the network's ``params``. ``state_dict()``/``load_state_dict()`` save
and restore what an optimizer remembers between steps (velocities, squared-gradient sums,
the step count), so training can resume exactly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dlscratch.kernels.parallel import chunks, parallel_map

__all__ = ["SGD", "AdaGrad", "Adam", "Momentum", "Nesterov", "Optimizer", "RMSprop", "get_optimizer"]

UPDATE_PIECE = 1 << 16  # elements per piece of a large parameter's update (see _update_array)


class Optimizer:
    """Shared bookkeeping: hyperparameters, per-parameter slots and the step count.

    Parameters
    ----------
    lr : float
        The learning rate, finite and > 0.

    Raises
    ------
    ValueError
        For an lr that is not a finite number > 0 (every optimizer's constructor).
    """

    slot_names: tuple[str, ...] = ()

    def __init__(self, lr: float) -> None:
        if not np.isfinite(lr) or lr <= 0:
            raise ValueError(f"{type(self).__name__} expected a learning rate lr > 0, got {lr!r}")
        self.lr = float(lr)
        self.step_count = 0
        # slot name -> parameter name -> array, created lazily on the first update
        self.slots: dict[str, dict[str, np.ndarray]] = {name: {} for name in self.slot_names}

    def update(self, params: dict[str, Any], grads: dict[str, Any]) -> None:
        """One step for every parameter in params: arrays in place, plain numbers in the dict.

        A value that is a number rather than an array (the book's optimizer_compare_naive
        moves a point {'x': -7.0, 'y': 2.0}) cannot change in place, so its new value is
        stored back into params.
        """
        missing = params.keys() - grads.keys()
        if missing:
            raise ValueError(f"{type(self).__name__}.update got no gradient for {sorted(missing)}")
        self.step_count += 1
        for key, param in params.items():
            if isinstance(param, np.ndarray):
                self._update_array(key, param, np.asarray(grads[key]))
            else:
                value = np.array(param, dtype=np.float64)
                self._update_array(key, value, np.asarray(grads[key], dtype=np.float64))
                params[key] = float(value)

    def _update_array(self, key: str, param: np.ndarray, grad: np.ndarray) -> None:
        """_step on one parameter array and its slots; a large one piece by piece.

        The pieces are flat runs of UPDATE_PIECE elements, spread over the fast kernels'
        threads: a piece's temporaries stay in the cache, and since every step is
        elementwise the numbers are those of one whole call, on any number of threads.
        """
        arrays = [param, grad, *(self._slot(name, key, param) for name in self.slot_names)]
        if param.size < 2 * UPDATE_PIECE or any(
            a.shape != param.shape or not a.flags.c_contiguous for a in arrays
        ):
            self._step(*arrays)
            return
        flat = [a.reshape(-1) for a in arrays]
        parallel_map(lambda part: self._step(*(a[part] for a in flat)), chunks(param.size, UPDATE_PIECE))

    def _step(self, param: np.ndarray, grad: np.ndarray, *slots: np.ndarray) -> None:
        """Update param (and the slot arrays, in slot_names' order) in place from grad.

        Every step is elementwise: update may call it on whole arrays or on matching pieces.
        """
        raise NotImplementedError

    def _slot(self, slot: str, key: str, like: np.ndarray) -> np.ndarray:
        """The slot array of one parameter, zeros on first use."""
        arrays = self.slots[slot]
        if key not in arrays:
            arrays[key] = np.zeros_like(like)
        return arrays[key]

    def hyperparameters(self) -> dict[str, float]:
        """The constructor's arguments, e.g. {'lr': 0.01, 'momentum': 0.9}."""
        return {"lr": self.lr}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: hyperparameters, step count, slots (copies)."""
        return {
            "type": type(self).__name__,
            "hyperparameters": self.hyperparameters(),
            "step_count": self.step_count,
            "slots": {s: {k: v.copy() for k, v in arrays.items()} for s, arrays in self.slots.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what state_dict() returned; the optimizer type must match."""
        if state.get("type") != type(self).__name__:
            raise ValueError(f"cannot load {state.get('type')!r} state into {type(self).__name__}")
        for name, value in state["hyperparameters"].items():
            setattr(self, name, float(value))
        self.step_count = int(state["step_count"])
        unknown = set(state["slots"]) - set(self.slot_names)
        if unknown:
            raise ValueError(f"{type(self).__name__} has no state named {sorted(unknown)}")
        self.slots = {
            s: {k: np.array(v) for k, v in state["slots"].get(s, {}).items()} for s in self.slot_names
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """W <- W - lr * dW.

    Parameters
    ----------
    lr : float, default 0.01
        The learning rate, > 0.
    """

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__(lr)

    def _step(self, param: np.ndarray, grad: np.ndarray) -> None:
        param -= self.lr * grad


class Momentum(Optimizer):
    """v <- momentum * v - lr * dW;  W <- W + v.

    Parameters
    ----------
    lr : float, default 0.01
        The learning rate, > 0.
    momentum : float, default 0.9
        How much of the velocity v (one per parameter, from zeros) each step keeps.
    """

    slot_names = ("v",)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        super().__init__(lr)
        self.momentum = float(momentum)

    def hyperparameters(self) -> dict[str, float]:
        return {"lr": self.lr, "momentum": self.momentum}

    def _step(self, param: np.ndarray, grad: np.ndarray, v: np.ndarray) -> None:
        v *= self.momentum
        v -= self.lr * grad
        param += v


class Nesterov(Momentum):
    """Nesterov's accelerated gradient in the book's form (the same steps as torch's).

    W <- W + momentum^2 * v - (1 + momentum) * lr * dW;  then v <- momentum * v - lr * dW.
    W moves with the velocity from before this step; updating v first, as some copies of
    the book's code do, takes a different step from torch's SGD(nesterov=True).

    Parameters
    ----------
    lr : float, default 0.01
        The learning rate, > 0.
    momentum : float, default 0.9
        The velocity's decay, as Momentum's.
    """

    def _step(self, param: np.ndarray, grad: np.ndarray, v: np.ndarray) -> None:
        param += self.momentum * self.momentum * v
        param -= (1 + self.momentum) * self.lr * grad
        v *= self.momentum
        v -= self.lr * grad


class AdaGrad(Optimizer):
    """h <- h + dW^2;  W <- W - lr * dW / (sqrt(h) + eps).

    Parameters
    ----------
    lr : float, default 0.01
        The learning rate, > 0.
    eps : float, default 1e-7
        Added to sqrt(h): keeps the step finite where h is 0 or tiny.
    """

    slot_names = ("h",)

    def __init__(self, lr: float = 0.01, eps: float = 1e-7) -> None:
        super().__init__(lr)
        self.eps = float(eps)

    def hyperparameters(self) -> dict[str, float]:
        return {"lr": self.lr, "eps": self.eps}

    def _step(self, param: np.ndarray, grad: np.ndarray, h: np.ndarray) -> None:
        h += grad * grad
        param -= self.lr * grad / (np.sqrt(h) + self.eps)


class RMSprop(Optimizer):
    """h <- decay_rate * h + (1 - decay_rate) * dW^2;  W <- W - lr * dW / (sqrt(h) + eps).

    Parameters
    ----------
    lr : float, default 0.01
        The learning rate, > 0.
    decay_rate : float, default 0.99
        How much of h, the running mean of dW^2, each step keeps.
    eps : float, default 1e-7
        Added to sqrt(h): keeps the step finite where h is 0 or tiny.
    """

    slot_names = ("h",)

    def __init__(self, lr: float = 0.01, decay_rate: float = 0.99, eps: float = 1e-7) -> None:
        super().__init__(lr)
        self.decay_rate = float(decay_rate)
        self.eps = float(eps)

    def hyperparameters(self) -> dict[str, float]:
        return {"lr": self.lr, "decay_rate": self.decay_rate, "eps": self.eps}

    def _step(self, param: np.ndarray, grad: np.ndarray, h: np.ndarray) -> None:
        h *= self.decay_rate
        h += (1 - self.decay_rate) * grad * grad
        param -= self.lr * grad / (np.sqrt(h) + self.eps)


class Adam(Optimizer):
    """Adam (Kingma & Ba), with bias correction as in the paper and torch.optim.Adam.

    m <- beta1 m + (1 - beta1) dW;  v <- beta2 v + (1 - beta2) dW^2;
    W <- W - lr * m_hat / (sqrt(v_hat) + eps), where m_hat = m / (1 - beta1^t),
    v_hat = v / (1 - beta2^t). (The book folds the corrections into lr and eps = 1e-7
    into sqrt(v); this form is the paper's.)

    Parameters
    ----------
    lr : float, default 0.001
        The learning rate, > 0.
    beta1 : float, default 0.9
        How much of m, the running mean of dW, each step keeps.
    beta2 : float, default 0.999
        How much of v, the running mean of dW^2, each step keeps.
    eps : float, default 1e-8
        Added to sqrt(v_hat): keeps the step finite where v is 0 or tiny.
    """

    slot_names = ("m", "v")

    def __init__(
        self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        super().__init__(lr)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def hyperparameters(self) -> dict[str, float]:
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def _step(self, param: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray) -> None:
        beta1, beta2, t = self.beta1, self.beta2, self.step_count
        m += (grad - m) * (1 - beta1)  # m <- beta1 m + (1 - beta1) dW
        v *= beta2
        v += grad * grad * (1 - beta2)  # v <- beta2 v + (1 - beta2) dW^2
        sqrt_v_hat = np.sqrt(v) / math.sqrt(1 - beta2**t)  # v_hat = v / (1 - beta2^t)
        lr_t = self.lr / (1 - beta1**t)  # m_hat = m / (1 - beta1^t): its divisor joins lr
        param -= m / (sqrt_v_hat + self.eps) * lr_t  # W <- W - lr m_hat / (sqrt(v_hat) + eps)


_BY_NAME = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": AdaGrad,
    "rmsprop": RMSprop,
    "rmsprpo": RMSprop,  # the book's Trainer spells it so
    "adam": Adam,
}


def get_optimizer(name: str | Optimizer, **hyperparameters: float) -> Optimizer:
    """An optimizer by case-insensitive name ('SGD', 'adam', ...) with its hyperparameters."""
    if isinstance(name, Optimizer):
        return name
    cls = _BY_NAME.get(str(name).lower())
    if cls is None:
        names = sorted({c.__name__ for c in _BY_NAME.values()})
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(names)}")
    try:
        return cls(**hyperparameters)
    except TypeError as error:
        raise ValueError(f"{cls.__name__}: {error}") from None
