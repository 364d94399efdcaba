"""One measured run in its own process: ``python -m bench.worker SIDE WORKLOAD [--quick]``.

SIDE: dlscratch, pytorch or numpy (the hand-tuned NumPy reference, two-layer workloads).

The harness starts this with the thread variables already in the environment (BLAS
libraries read them once, at load time) and reads the last line, which starts with
RESULT_PREFIX and holds the measurements as JSON.
"""

from __future__ import annotations

import argparse
import json
import os

from bench.workloads import ALL_SIDES  # imports no numpy

RESULT_PREFIX = "BENCH-RESULT "


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.worker")
    parser.add_argument("side", choices=ALL_SIDES)
    parser.add_argument("workload")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    # imported here, after the environment is final: numpy reads OPENBLAS_NUM_THREADS at import
    from bench.loops import run_side
    from bench.workloads import WORKLOADS, quick

    workload = WORKLOADS[args.workload]
    if args.quick:
        workload = quick(workload)
    threads = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
    result = run_side(args.side, workload, threads)
    print(RESULT_PREFIX + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
