"""The command line: ``python -m bench [WORKLOAD ...] [--repeats N] [--threads N ...] [--quick]``.

Also ``--no-torch`` and ``--no-numpy-reference``: see ``python -m bench --help``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from typing import Any

from bench.harness import Options, WorkerError, foreign_load, format_summary, run_bench, torch_available
from bench.workloads import WORKLOADS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=(
            "Time dlscratch and PyTorch on the same networks, data and settings, alternating runs, each "
            "in a fresh process, and print medians, spreads and the ratios dlscratch/PyTorch for the time "
            "per training step, per full evaluation, the whole run and the peak memory, the achieved "
            "GFLOP/s against numpy's GEMM peak, and whether the issue's targets are met. Runs during "
            "which other processes kept the CPU busy are flagged, retried and left out. Without PyTorch "
            "there are no ratios. For seed-run a third side, a hand-tuned plain-NumPy loop doing the "
            "same work, runs in the same alternation as a reference (its ratio to PyTorch and a lower "
            "bound, the first-layer products and batch gather alone; never judged against the targets). "
            "deep-convnet (the book's DeepConvNet) is report-only: measured and shown, with no target."
        ),
        epilog="workloads: " + "; ".join(f"{w.name}: {w.title}" for w in WORKLOADS.values()),
    )
    parser.add_argument(
        "workloads",
        nargs="*",
        metavar="WORKLOAD",
        help=f"what to run: {', '.join(WORKLOADS)} or all (default: all, deep-convnet included: "
        "about 30 s per repeat at 2 threads, estimated, beside the other two's 45 s)",
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="runs of each side (default 5; 1 with --quick)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[2],
        help="threads for every side (BLAS/OpenMP variables, torch.set_num_threads); several give one "
        "table each (default: 2)",
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
        help="skip the hand-tuned NumPy loop that seed-run otherwise times beside the two libraries",
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
        help="exit with status 3 unless every target was judged on an idle machine and met "
        "(report-only workloads have none and are ignored)",
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
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summaries, f, indent=1)
    if len(summaries) > 1:
        print("\n".join(["", "== all tables again", *map(format_summary, summaries)]))
    if args.strict and not strict_passes(summaries):
        sys.exit(3)


def strict_passes(summaries: list[dict[str, Any]]) -> bool:
    """--strict's verdict: every target judged on an idle machine and met.

    Report-only workloads are left out; where only they ran there is nothing to fail.
    A judged workload without targets (no pytorch to compare with) fails.
    """
    judged = [s for s in summaries if not s.get("report_only")]
    return all(s["targets"] and all(t["met"] and t["judged"] for t in s["targets"]) for s in judged)


def _cpus() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    main()
