"""Batch normalization (Ioffe & Szegedy, 2015), the layer of chapter 6."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlscratch.layers.base import Layer, check_float, check_ndim, check_same_shape


class BatchNormalization(Layer):
    """y = gamma * xhat + beta, where xhat = (x - mean) / sqrt(var + eps).

    x: (N, D), normalised per feature over N; or (N, C, H, W), normalised per channel over
    N, H and W, like torch's BatchNorm2d (the book flattens images to (N, C*H*W), which
    normalises every pixel on its own). gamma, beta: (D,) or (C,). Returns x's shape.

    forward(x, train_flg=True) uses the batch's mean and (biased) variance and updates
        running = momentum * running + (1 - momentum) * batch statistic    (the book's rule;
        torch's momentum is 1 - ours). The variance folded into running_var is the unbiased
        m / (m - 1) * var, m the values per feature (N, or N*H*W): the estimate the paper's
        inference step uses, and what torch stores.
    forward(x, train_flg=False) normalises with running_mean and running_var instead.
    """

    uses_train_flag = True

    def __init__(
        self,
        gamma: np.ndarray,
        beta: np.ndarray,
        momentum: float = 0.9,
        running_mean: np.ndarray | None = None,
        running_var: np.ndarray | None = None,
        eps: float = 1e-7,
    ) -> None:
        super().__init__()
        gamma, beta = np.asarray(gamma), np.asarray(beta)
        if gamma.ndim != 1 or beta.shape != gamma.shape:
            raise ValueError(
                f"BatchNormalization expected gamma and beta of the same shape (D,), "
                f"got {gamma.shape} and {beta.shape}"
            )
        if not 0 <= momentum <= 1:
            raise ValueError(f"BatchNormalization expected 0 <= momentum <= 1, got {momentum!r}")
        if not eps > 0:
            raise ValueError(f"BatchNormalization expected eps > 0, got {eps!r}")
        self._set_params(gamma=gamma, beta=beta)
        self.momentum, self.eps = float(momentum), float(eps)
        # running_var starts at ones, as in torch, not the book's zeros: an untrained layer in
        # test mode is then the identity instead of scaling its input by 1 / sqrt(eps) (~3162)
        for name, start, given in (("running_mean", 0, running_mean), ("running_var", 1, running_var)):
            value = np.full_like(gamma, start) if given is None else np.asarray(given, dtype=gamma.dtype)
            if value.shape != gamma.shape:
                raise ValueError(
                    f"BatchNormalization expected {name} of shape {gamma.shape}, got {value.shape}"
                )
            self.buffers[name] = value
        self._cache: tuple[Any, ...] | None = None

    # the book's attribute names, kept for learners
    gamma = property(lambda self: self.params["gamma"])
    beta = property(lambda self: self.params["beta"])
    dgamma = property(lambda self: self.grads["gamma"])
    dbeta = property(lambda self: self.grads["beta"])
    running_mean = property(lambda self: self.buffers["running_mean"])
    running_var = property(lambda self: self.buffers["running_var"])

    def config(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "eps": self.eps}

    def forward(self, x: np.ndarray, train_flg: bool = True) -> np.ndarray:
        x = check_float(self, x)
        check_ndim(self, x, (2, 4), "input of shape (N, D) or (N, C, H, W)")
        features = len(self.gamma)
        if x.shape[1] != features:
            raise ValueError(
                f"BatchNormalization expected {features} features on axis 1, got {x.shape[1]} "
                f"(input shape {x.shape})"
            )
        axes = (0,) if x.ndim == 2 else (0, 2, 3)  # everything but the feature axis
        shape = (1, features) + (1,) * (x.ndim - 2)  # gamma & co. broadcast against x
        m = x.size // features
        if train_flg:
            if m < 2:
                raise ValueError(
                    f"BatchNormalization expected more than 1 value per feature when training, "
                    f"got input shape {x.shape} (use a larger batch, or train_flg=False)"
                )
            mean = x.mean(axis=axes, keepdims=True)
            xc = x - mean
            var = np.mean(xc * xc, axis=axes, keepdims=True)
            self._update_running("running_mean", mean)
            self._update_running("running_var", var * (m / (m - 1)))
        else:
            mean, var = self.running_mean.reshape(shape), self.running_var.reshape(shape)
            xc = x - mean
        inv_std = 1 / np.sqrt(var + self.eps)
        xhat = xc * inv_std
        self._cache = (xhat, inv_std, axes, shape, m, train_flg)
        return self.gamma.reshape(shape) * xhat + self.beta.reshape(shape)

    def _update_running(self, name: str, batch_stat: np.ndarray) -> None:
        # in place: a network's or serializer's reference to the buffer stays valid
        running = self.buffers[name]
        running[...] = self.momentum * running + (1 - self.momentum) * batch_stat.reshape(running.shape)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dx, with dgamma = sum(dout * xhat) and dbeta = sum(dout) over the non-feature axes.

        Training: mean and var depend on x too, which gives the compact form
        dx = gamma / sqrt(var + eps) * (dout - (dbeta + xhat * dgamma) / m).
        Test: the statistics are constants, so dx = gamma / sqrt(var + eps) * dout.
        """
        xhat, inv_std, axes, shape, m, train_flg = self._cache
        check_same_shape(self, dout, xhat.shape)
        # written in place: the network's grads dict and the optimizer hold these arrays
        np.sum(dout, axis=axes, out=self.grads["beta"])
        np.sum(dout * xhat, axis=axes, out=self.grads["gamma"])
        scale = self.gamma.reshape(shape) * inv_std
        if not train_flg:
            return scale * dout
        dbeta, dgamma = self.dbeta.reshape(shape), self.dgamma.reshape(shape)
        return scale * (dout - (dbeta + xhat * dgamma) / m)
