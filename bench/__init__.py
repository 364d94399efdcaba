"""dlscratch against PyTorch on the book's networks, side by side: ``python -m bench --help``.

Importable too: ``from bench import run_bench, Options``; ``bench.workloads`` defines
the work, ``bench.loops`` the training loops (dlscratch's, PyTorch's and, for the
two-layer network, the hand-tuned NumPy reference of ``bench.numpy_loop``),
``bench.harness`` the measuring.
"""

from bench.harness import Options, format_summary, run_bench, torch_available
from bench.workloads import WORKLOADS, Workload

__all__ = ["WORKLOADS", "Options", "Workload", "format_summary", "run_bench", "torch_available"]
