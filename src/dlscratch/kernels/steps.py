"""Steps: a network's layers regrouped so that each convolution runs on a fast kernel.

``plan_steps(layers)`` returns the layers in order, with every Convolution (and the Relu
and 2x2 max Pooling right after it, when there are) replaced by one ConvStep. A step
reads and writes the layers' own parameters and gradients, so the network, its
optimizer and anyone holding ``layer.dW`` see the step's work as the layers'; it computes
what the layers compute (the kernels are tested against them), only faster.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np

from dlscratch.kernels.columns import ColumnsKernel
from dlscratch.kernels.dense import AffineStep
from dlscratch.kernels.epilogue import Epilogue
from dlscratch.kernels.geometry import ConvGeometry
from dlscratch.kernels.parallel import get_num_threads, one_thread_blas
from dlscratch.kernels.shifted import ShiftedKernel
from dlscratch.kernels.winograd import WinogradKernel
from dlscratch.layers.activation import Relu
from dlscratch.layers.affine import Affine
from dlscratch.layers.base import check_same_shape
from dlscratch.layers.conv import Convolution
from dlscratch.layers.pooling import Pooling

__all__ = ["KERNELS", "ConvStep", "conv_kernel", "plan_steps", "running"]

KERNELS = {kernel.name: kernel for kernel in (WinogradKernel, ShiftedKernel, ColumnsKernel)}

# Winograd's transforms cost about as much per input channel as its products save per
# output channel: with fewer channels the other kernels are faster (one channel: 3 times).
# Columns of up to this many inputs per output are built faster by strided copies than
# by the shifted slices' extra positions (DeepConvNet's first layer, 9; SimpleConvNet's, 25).
# Both measured with python bench/conv_layers.py --kernels winograd shifted columns.
WINOGRAD_MIN_CHANNELS = 16
COLUMNS_UP_TO = 64
# an Affine with fewer weights is faster as the layer itself than cut in pieces (SimpleConvNet's
# 4320 x 100 is cut; DeepConvNet's 1024 x 50 and 50 x 10 are not)
AFFINE_PIECES_FROM = 1 << 16


def conv_kernel(geometry: ConvGeometry, epilogue: Epilogue, xp: Any = np) -> Any:
    """The kernel for this convolution: the selector, the one place that chooses.

    3x3 filters, stride 1, enough channels: Winograd F(2x2, 3x3); other stride-1
    convolutions with many inputs per output: the shifted columns; the rest (any stride,
    or few inputs per output): im2col columns.
    """
    g = geometry
    if WinogradKernel.takes(g) and min(g.C, g.FN) >= WINOGRAD_MIN_CHANNELS:
        return WinogradKernel(g, epilogue, xp)
    if ShiftedKernel.takes(g) and g.K > COLUMNS_UP_TO:
        return ShiftedKernel(g, epilogue, xp)
    return ColumnsKernel(g, epilogue, xp)


def _is_fused_pool(layer: Any) -> bool:
    """Whether a layer is the 2x2 max pooling with stride 2 that the epilogue computes."""
    return (
        type(layer) is Pooling
        and layer.mode == "max"
        and (layer.pool_h, layer.pool_w, layer.stride, layer.pad) == (2, 2, 2, 0)
    )


def plan_steps(layers: Sequence[Any]) -> list[Any]:
    """The layers in order; each Convolution, with the Relu and 2x2 max Pooling after it, as one ConvStep.

    Where there is a convolution, each large Affine becomes an AffineStep too, its
    products on the kernels' threads (see running).
    """
    steps: list[Any] = []
    i = 0
    while i < len(layers):
        if type(layers[i]) is not Convolution:
            steps.append(layers[i])
            i += 1
            continue
        conv, relu, pool = layers[i], None, None
        i += 1
        if i < len(layers) and type(layers[i]) is Relu:
            relu, i = layers[i], i + 1
        if i < len(layers) and _is_fused_pool(layers[i]):
            pool, i = layers[i], i + 1
        steps.append(ConvStep(conv, relu, pool))
    if any(isinstance(step, ConvStep) for step in steps):
        steps = [AffineStep(step) if _is_large_affine(step) else step for step in steps]
    return steps


def _is_large_affine(layer: Any) -> bool:
    return type(layer) is Affine and layer.W.size >= AFFINE_PIECES_FROM


def running(steps: Sequence[Any]) -> AbstractContextManager[None]:
    """The context to run planned steps in: one-thread matrix products when a kernel is among them.

    The kernels spread their chunks over the cores themselves; between their parallel
    sections, a BLAS left with several threads would keep them busy-waiting on those very
    cores after each product of the layers in between. Other plans keep the BLAS's own threads.
    """
    if any(isinstance(step, ConvStep) for step in steps) and get_num_threads() > 1:
        return one_thread_blas()
    return nullcontext()


class ConvStep:
    """Convolution, then optionally Relu, then optionally 2x2 max Pooling, as one kernel call.

    forward(x, train_flg) and backward(dout) have the shapes of the layers in a row: x
    (N, C, H, W) in, (N, FN, OH, OW) out, or (N, FN, OH // 2, OW // 2) with the pooling;
    backward_params(dout) computes the convolution's dW and db only. The convolution's
    grads are written in place, as its own backward writes them. An input that the
    pooling cannot take (an output under 2x2) runs the layers themselves, which say why.

    Parameters
    ----------
    conv : Convolution
        The convolution, W (FN, C, FH, FW) and b (FN,), any stride and pad.
    relu : Relu or None, default None
        The Relu right after it, if any.
    pool : Pooling or None, default None
        The max Pooling after those, if any: 2x2 windows, stride 2, no pad (the one the
        Epilogue computes; plan_steps fuses no other).
    xp : module, default numpy
        The array module the kernels compute with.
    """

    uses_train_flag = True

    def __init__(
        self, conv: Convolution, relu: Relu | None = None, pool: Pooling | None = None, xp: Any = np
    ) -> None:
        self.conv, self.relu, self.pool, self.xp = conv, relu, pool, xp
        self.layers = tuple(layer for layer in (conv, relu, pool) if layer is not None)
        self.kernel: Any = None  # the kernel of the last forward pass; None: the layers ran
        self._out_shape: tuple[int, ...] = ()
        self._trained = False

    def forward(self, x: Any, train_flg: bool = True) -> Any:
        """The layers' output for x (N, C, H, W); train_flg=False keeps nothing for backward."""
        conv = self.conv
        self._trained = train_flg
        x, out_h, out_w = conv.check_input(x)
        if self.pool is not None and min(out_h, out_w) < 2:
            self.kernel = None
            for layer in self.layers:
                x = layer.forward(x)
            return x
        geometry = ConvGeometry(x.shape, conv.W.shape, conv.stride, conv.pad)
        self.kernel = conv_kernel(
            geometry, Epilogue(self.relu is not None, self.pool is not None, self.xp), self.xp
        )
        out = self.kernel.forward(x, conv.W, conv.b, train_flg)
        self._out_shape = out.shape
        return out

    def backward(self, dout: Any) -> Any:
        """dx (N, C, H, W); the convolution's dW and db are kept in its grads."""
        return self._backward(dout, with_dx=True)

    def backward_params(self, dout: Any) -> None:
        """backward without dx: only the convolution's dW and db."""
        self._backward(dout, with_dx=False)

    def _backward(self, dout: Any, with_dx: bool) -> Any:
        if not self._trained:
            raise ValueError(f"{self!r}.backward needs a forward pass with train_flg=True first")
        if self.kernel is None:
            for layer in reversed(self.layers[1:]):
                dout = layer.backward(dout)
            return self.conv.backward(dout) if with_dx else self.conv.backward_params(dout)
        check_same_shape(self.layers[-1], dout, self._out_shape)
        dout = self.xp.asarray(dout, dtype=self.conv.W.dtype)
        dW, db, dx = self.kernel.backward(dout, self.conv.W, with_dx)
        self.conv.grads["W"][...] = dW
        self.conv.grads["b"][...] = db
        return dx

    def __repr__(self) -> str:
        names = " -> ".join(type(layer).__name__ for layer in self.layers)
        return f"ConvStep({names})"
