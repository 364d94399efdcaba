"""The command line: ``python -m bench [WORKLOAD ...] [--repeats N] [--threads N ...] [--quick] [--strict]``.

Also ``--no-torch``, ``--no-numpy-reference`` and ``--no-checks``: see ``python -m bench --help``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from typing import Any

from bench.checks import format_float16
from bench.harness import (
    Options,
    WorkerError,
    foreign_load,
    format_summary,
    run_bench,
    run_checks,
    torch_available,
)
from bench.workloads import WORKLOADS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=(
            "Time dlscratch and eager PyTorch on the CPU on the same networks, data (uint8 images, "
            "scaled batch by batch on both sides) and settings, alternating runs, each in a fresh "
            "process after an untimed warm-up, and print medians, spreads and the ratios "
            "dlscratch/PyTorch for the time per training step, per full evaluation, the whole run and "
            "the peak memory (the data set's share apart), the achieved GFLOP/s against numpy's GEMM "
            "peak, the floor a step's matrix products set at that peak, and whether the targets are "
            "met: SimpleConvNet's epoch <= 0.6 of PyTorch's, DeepConvNet's training step <= 1.0, the "
            "seed run <= 1.10 of a hand-tuned plain-NumPy loop doing the same work (run in the same "
            "alternation; also shown: its ratio to PyTorch and a lower bound, the first-layer "
            "products and batch gather alone). Runs during which other processes kept the CPU busy "
            "are flagged, retried and left out. Without PyTorch there are no ratios. Then a float16 "
            "sanity check (printed, not judged)."
        ),
        epilog="workloads: " + "; ".join(f"{w.name}: {w.title}" for w in WORKLOADS.values()),
    )
    parser.add_argument(
        "workloads",
        nargs="*",
        metavar="WORKLOAD",
        help=f"what to run: {', '.join(WORKLOADS)} or all (default: all)",
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="runs of each side (default 5; 1 with --quick)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[2, 1],
        help="threads for every side (BLAS/OpenMP variables, torch.set_num_threads); several give one "
        "table each (default: 2 1)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short smoke run: few iterations, small evaluations"
    )
    parser.add_argument(
        "--no-torch", action="store_true", help="time dlscratch (and the NumPy reference) only: no ratios"
    )
    parser.add_argument(
        "--no-numpy-reference",
        action="store_true",
        help="skip the hand-tuned NumPy loop that seed-run otherwise times beside the two libraries "
        "(its time target then cannot be judged)",
    )
    parser.add_argument(
        "--no-checks", action="store_true", help="skip the float16 sanity check after the tables"
    )
    parser.add_argument(
        "--busy-threshold",
        type=float,
        default=0.10,
        metavar="CORES",
        help="a run is busy when other processes used more than this many cores meanwhile (default 0.10)",
    )
    parser.add_argument("--retry-busy", type=int, default=2, help="times to rerun a busy run (default 2)")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="before each run, wait up to this long for the machine to be idle (default 30; 0: don't wait)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write every run and the summaries as JSON")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 3 unless every target was judged on an idle machine and met",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    unknown = sorted(set(args.workloads) - {*WORKLOADS, "all"})
    if unknown:
        parser.error(f"unknown workload {', '.join(unknown)}; choose from {', '.join(WORKLOADS)} or all")
    names = (
        list(WORKLOADS)
        if not args.workloads or "all" in args.workloads
        else list(dict.fromkeys(args.workloads))
    )
    sides = ("dlscratch", "pytorch")
    if args.no_torch:
        sides = ("dlscratch",)
    elif not torch_available():
        print("dlscratch: PyTorch is not installed; timing without it (no ratios)", file=sys.stderr)
        sides = ("dlscratch",)
    if args.repeats is not None and args.repeats < 1:
        sys.exit("dlscratch: --repeats must be at least 1")
    options = Options(
        repeats=args.repeats or (1 if args.quick else 5),
        threads=tuple(args.threads),
        quick=args.quick,
        sides=sides,
        busy_threshold=args.busy_threshold,
        retry_busy=max(args.retry_busy, 0),
        wait_idle=max(args.wait_idle, 0.0),
        numpy_reference=not args.no_numpy_reference,
        log=lambda text: print(text, flush=True),
    )
    load = foreign_load(0.5)
    print(
        f"bench: {platform.machine()} with {_cpus()} CPUs, Python {platform.python_version()}; "
        f"other processes use {'n/a' if load is None else f'{load:.2f}'} cores now",
        flush=True,
    )
    try:
        summaries = run_bench(names, options)
    except WorkerError as error:
        sys.exit(f"dlscratch: {error}")
    checks = []
    if not args.no_checks:
        try:
            checks = [run_checks(threads, args.quick) for threads in options.threads]
        except WorkerError as error:
            sys.exit(f"dlscratch: {error}")
    if len(summaries) > 1:
        print("\n".join(["", "== all tables again", *map(format_summary, summaries)]))
    for check in checks:
        print(format_float16(check, check["threads"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summaries": summaries, "checks": checks}, f, indent=1)
    if args.strict and not strict_passes(summaries):
        sys.exit(3)


def strict_passes(summaries: list[dict[str, Any]]) -> bool:
    """--strict's verdict: every target of every table judged on an idle machine and met.

    A table without targets (no pytorch to compare with) fails.
    """
    return all(s["targets"] and all(t["met"] and t["judged"] for t in s["targets"]) for s in summaries)


def _cpus() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    main()
