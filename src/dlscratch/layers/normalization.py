"""Batch normalization (Ioffe & Szegedy, 2015), the layer of chapter 6."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlscratch.layers.base import Layer, check_ndim, check_same_shape, in_param_dtype


class BatchNormalization(Layer):
    """y = gamma * xhat + beta, where xhat = (x - mean) / sqrt(var + eps).

    x: (N, D), normalised per feature over N; or (N, C, H, W), normalised per channel over
    N, H and W when gamma has C entries (like torch's BatchNorm2d), or per pixel over N
    when gamma has C * H * W entries (the book flattens images so). gamma, beta: (D,),
    (C,) or (C * H * W,). Returns x's shape, in gamma's dtype.

    forward(x, train_flg=True) uses the batch's mean and (biased) variance and updates
        running = momentum * running + (1 - momentum) * batch statistic    (the book's rule;
        torch's momentum is 1 - ours). By default the variance folded into running_var is
        the unbiased m / (m - 1) * var, m the values per feature (N, or N*H*W): the
        estimate the paper's inference step uses, and what torch stores; running_var
        starts at ones, so an untrained layer in test mode is the identity (with the
        book's zeros it scales its input by 1 / sqrt(eps)). A batch with one value per
        feature has no unbiased variance: it adds its (zero) variance, as the book does.
        book_statistics=True: running_var starts at zeros and follows the biased
        variance, as the book's layer (whose eps is 1e-6).
    forward(x, train_flg=False) normalises with running_mean and running_var instead.

    Parameters
    ----------
    gamma, beta : ndarray, shape (D,), (C,) or (C * H * W,)
        The scale and shift, floating point, of the same shape.
    momentum : float, default 0.9
        How much of the running statistics each training batch keeps, in [0, 1].
    running_mean, running_var : ndarray or None, default None
        Starting statistics of gamma's shape; None starts at zeros and ones (zeros and
        zeros with book_statistics).
    eps : float, default 1e-7
        Added to the variance before the square root, > 0.
    book_statistics : bool, default False
        Keep the book's running statistics (see above).
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
        *,
        book_statistics: bool = False,
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
        self.book_statistics = bool(book_statistics)
        starts = {"running_mean": 0, "running_var": 0 if self.book_statistics else 1}
        for name, given in (("running_mean", running_mean), ("running_var", running_var)):
            start = starts[name]
            value = np.full_like(gamma, start) if given is None else np.asarray(given, dtype=gamma.dtype)
            if value.shape != gamma.shape:
                raise ValueError(
                    f"BatchNormalization expected {name} of shape {gamma.shape}, got {value.shape}"
                )
            self.buffers[name] = value
        self._cache: tuple[Any, ...] | None = None
        self._input_shape: tuple[int, ...] = ()

    # the book's attribute names, kept for learners
    gamma = property(lambda self: self.params["gamma"])
    beta = property(lambda self: self.params["beta"])
    dgamma = property(lambda self: self.grads["gamma"])
    dbeta = property(lambda self: self.grads["beta"])
    running_mean = property(lambda self: self.buffers["running_mean"])
    running_var = property(lambda self: self.buffers["running_var"])

    def config(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "eps": self.eps, "book_statistics": self.book_statistics}

    def forward(self, x: np.ndarray, train_flg: bool = True) -> np.ndarray:
        x = in_param_dtype(self, x)
        check_ndim(self, x, (2, 4), "input of shape (N, D) or (N, C, H, W)")
        self._input_shape = x.shape
        features = len(self.gamma)
        if x.ndim == 4 and x[0].size == features != x.shape[1]:
            x = x.reshape(len(x), features)  # one feature per pixel, as the book
        if x.shape[1] != features:
            raise ValueError(
                f"BatchNormalization expected {features} features on axis 1 (or C * H * W pixels), "
                f"got {x.shape[1]} (input shape {x.shape})"
            )
        axes = (0,) if x.ndim == 2 else (0, 2, 3)  # everything but the feature axis
        shape = (1, features) + (1,) * (x.ndim - 2)  # gamma & co. broadcast against x
        m = x.size // features
        if train_flg:
            if m == 0:
                raise ValueError(f"BatchNormalization got an empty batch (input shape {x.shape})")
            mean = x.mean(axis=axes, keepdims=True)
            xc = x - mean
            var = np.mean(xc * xc, axis=axes, keepdims=True)
            unbiased = not self.book_statistics and m > 1
            self._update_running("running_mean", mean)
            self._update_running("running_var", var * (m / (m - 1)) if unbiased else var)
        else:
            mean, var = self.running_mean.reshape(shape), self.running_var.reshape(shape)
            xc = x - mean
        inv_std = 1 / np.sqrt(var + self.eps)
        xhat = xc * inv_std
        self._cache = (xhat, inv_std, axes, shape, m, train_flg)
        out = self.gamma.reshape(shape) * xhat + self.beta.reshape(shape)
        return out.reshape(self._input_shape)

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
        check_same_shape(self, dout, self._input_shape)
        dout = dout.reshape(xhat.shape)
        # written in place: the network's grads dict and the optimizer hold these arrays
        np.sum(dout, axis=axes, out=self.grads["beta"])
        np.sum(dout * xhat, axis=axes, out=self.grads["gamma"])
        scale = self.gamma.reshape(shape) * inv_std
        if not train_flg:
            return (scale * dout).reshape(self._input_shape)
        dbeta, dgamma = self.dbeta.reshape(shape), self.dgamma.reshape(shape)
        return (scale * (dout - (dbeta + xhat * dgamma) / m)).reshape(self._input_shape)
