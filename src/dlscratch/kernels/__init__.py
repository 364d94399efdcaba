"""The fast tier: convolution kernels behind one seam, for the networks' training and evaluation.

The readable tier, ``dlscratch.layers``, computes as the book does (Convolution through
im2col, one product and col2im); it is what the tour teaches and what every kernel here is
tested against. Networks do not call kernels themselves: ``plan_steps(layers)`` regroups
their layers into steps, each Convolution (with the Relu and 2x2 max Pooling after it)
becoming a ConvStep whose kernel ``conv_kernel`` picks from the layer's geometry:

- ``WinogradKernel`` (winograd.py): 3x3, stride 1, F(2x2, 3x3): 2.25 times fewer products;
- ``ShiftedKernel`` (shifted.py): other stride-1 filters, columns as shifted slices;
- ``ColumnsKernel`` (columns.py): any stride, the book's im2col, chunk by chunk.

In such a network each Affine becomes an ``AffineStep`` (dense.py), its products cut into
pieces on the same threads.

Each kernel has ``forward(x, W, b, train) -> out`` and ``backward(dout, W, with_dx) -> (dW,
db, dx or None)``, and hands its output to an ``Epilogue`` (epilogue.py: ReLU and pooling)
while it is in the cache. All share one geometry (geometry.py), one scratch workspace
(workspace.py) and one parallel map over a fixed partition of the batch (parallel.py), so
their results are the same bits on any number of threads (``set_num_threads``). Kernels
take their arrays and an array module ``xp`` (NumPy here).
"""

from dlscratch.kernels.columns import ColumnsKernel
from dlscratch.kernels.dense import AffineStep
from dlscratch.kernels.epilogue import Epilogue, Grid
from dlscratch.kernels.geometry import ConvGeometry
from dlscratch.kernels.parallel import get_num_threads, parallel_map, set_num_threads
from dlscratch.kernels.shifted import ShiftedKernel
from dlscratch.kernels.steps import KERNELS, ConvStep, conv_kernel, plan_steps, running
from dlscratch.kernels.winograd import WinogradKernel

__all__ = [
    "KERNELS",
    "AffineStep",
    "ColumnsKernel",
    "ConvGeometry",
    "ConvStep",
    "Epilogue",
    "Grid",
    "ShiftedKernel",
    "WinogradKernel",
    "conv_kernel",
    "get_num_threads",
    "parallel_map",
    "plan_steps",
    "running",
    "set_num_threads",
]
