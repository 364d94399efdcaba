"""Runs the sides in turn, watches the machine, and reports medians and ratios.

Every run is a fresh ``python -m bench.worker`` process with the thread count in its
environment (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS; the PyTorch side also
calls torch.set_num_threads), so both sides use the same number of threads and each one's
peak memory is its own. Runs alternate (dlscratch, pytorch, then pytorch, dlscratch, ...)
so a slow drift of the machine affects both alike.

The machine is watched during every run: from /proc/stat, the CPU time that processes
other than the benchmark used while it ran, in cores (0.0 idle, 1.0 a whole core busy
with something else). A run above the threshold is marked busy, retried, and left out of
the medians; a table made only of busy runs says so and judges no target.

This module imports nothing heavy (no numpy): the measuring is done in the workers.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.worker import RESULT_PREFIX
from bench.workloads import SIDES, WORKLOADS, Workload, quick

REPO = Path(__file__).resolve().parent.parent


def torch_available() -> bool:
    """Whether PyTorch can be imported (found without importing it here)."""
    return importlib.util.find_spec("torch") is not None


# ----------------------------------------------------------------------------- machine load


def _cpu_busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy (all cores, steal included), or None."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """CPU seconds used by this process and its finished children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class LoadMeter:
    """Measures, between start() and stop(), the cores used by processes other than ours."""

    def start(self) -> None:
        self._busy, self._own, self._wall = _cpu_busy_seconds(), _own_cpu_seconds(), time.perf_counter()

    def stop(self) -> float | None:
        """Average cores used by others since start(); None where /proc/stat is missing."""
        busy, own, wall = _cpu_busy_seconds(), _own_cpu_seconds(), time.perf_counter()
        if busy is None or self._busy is None or wall <= self._wall:
            return None
        others = (busy - self._busy) - (own - self._own)
        return max(others, 0.0) / (wall - self._wall)


def foreign_load(seconds: float = 1.0) -> float | None:
    """Cores used by other processes over the next `seconds` (this one sleeps meanwhile)."""
    meter = LoadMeter()
    meter.start()
    time.sleep(seconds)
    return meter.stop()


def wait_until_idle(threshold: float, timeout: float, log: Any) -> float | None:
    """Sleep until other processes use at most `threshold` cores over a 1 s window, or timeout."""
    deadline = time.monotonic() + timeout
    load = foreign_load(1.0)
    announced = False
    while load is not None and load > threshold and time.monotonic() < deadline:
        if not announced:
            log(f"  machine busy ({load:.2f} cores used by other processes): waiting up to {timeout:.0f} s")
            announced = True
        load = foreign_load(1.0)
    return load


# ----------------------------------------------------------------------------- runs


@dataclass
class Run:
    side: str
    result: dict[str, Any]
    foreign_cores: float | None
    wall_s: float
    busy: bool


@dataclass
class Options:
    repeats: int = 5
    threads: tuple[int, ...] = (2,)
    quick: bool = False
    sides: tuple[str, ...] = SIDES
    busy_threshold: float = 0.10
    retry_busy: int = 2
    wait_idle: float = 30.0
    log: Any = field(default=print)


class WorkerError(RuntimeError):
    """A worker process failed; the message holds its last lines of output."""


def run_worker(
    side: str, workload: Workload, threads: int, quick_run: bool
) -> tuple[dict[str, Any], float | None, float]:
    """One run in a fresh process: (its measurements, foreign cores meanwhile, wall seconds)."""
    env = dict(os.environ)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "bench.worker", side, workload.name, *(["--quick"] if quick_run else [])]
    meter = LoadMeter()
    meter.start()
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    load = meter.stop()
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise WorkerError(f"the {side} worker for {workload.name} failed (exit {done.returncode}):\n{tail}")
    return json.loads(lines[-1][len(RESULT_PREFIX) :]), load, wall


def measure(workload: Workload, threads: int, options: Options) -> dict[str, list[Run]]:
    """Alternate the sides `repeats` times; retry a run that the machine disturbed."""
    log = options.log
    runs: dict[str, list[Run]] = {side: [] for side in options.sides}
    for repeat in range(options.repeats):
        order = options.sides if repeat % 2 == 0 else options.sides[::-1]
        for side in order:
            for attempt in range(1 + options.retry_busy):
                if options.wait_idle > 0:
                    wait_until_idle(options.busy_threshold, options.wait_idle, log)
                result, load, wall = run_worker(side, workload, threads, options.quick)
                busy = load is not None and load > options.busy_threshold
                runs[side].append(Run(side, result, load, wall, busy))
                load_text = "n/a" if load is None else f"{load:.2f}"
                log(
                    f"  {workload.name} {threads}t {side:9s} run {repeat + 1}/{options.repeats}: "
                    f"whole {result['whole_s']:.3f} s, step {result['step_s'] * 1e3:.3f} ms, "
                    f"eval {result['eval_s'] * 1e3:.1f} ms, test acc {result['test_acc']:.4f}, "
                    f"others used {load_text} cores" + ("  BUSY" if busy else "")
                )
                if not busy:
                    break
                if attempt < options.retry_busy:
                    log("    busy run left out; running it again")
    return runs


# ----------------------------------------------------------------------------- report


ROWS = (
    # label, key in the result, unit scale, unit, format
    ("time per training step", "step_s", 1e3, "ms", "{:.3f}"),
    ("time per evaluation", "eval_s", 1e3, "ms", "{:.1f}"),
    ("whole run", "whole_s", 1, "s", "{:.2f}"),
    ("peak memory", "memory.peak_mib", 1, "MiB", "{:.0f}"),
    ("  of which the loop", "memory.loop_mib", 1, "MiB", "{:.0f}"),
    ("final test accuracy", "test_acc", 100, "%", "{:.2f}"),
    ("achieved GFLOP/s, steps", "step_gflops", 1, "", "{:.1f}"),
    ("achieved GFLOP/s, evaluation", "eval_gflops", 1, "", "{:.1f}"),
)


def _value(result: dict[str, Any], key: str) -> float | None:
    value: Any = result
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return None if value is None else float(value)


def _stats(runs: list[Run], key: str) -> tuple[float, float, float] | None:
    """(median, min, max) of one measurement over the runs, or None if none has it."""
    values = [v for v in (_value(r.result, key) for r in runs) if v is not None]
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def _counted(runs: list[Run]) -> tuple[list[Run], bool]:
    """The runs that count (not busy) and whether only busy runs were left."""
    calm = [r for r in runs if not r.busy]
    return (calm, False) if calm else (runs, True)


def summarize(workload: Workload, threads: int, runs: dict[str, list[Run]]) -> dict[str, Any]:
    """Medians, spreads, ratios and the verdict on the issue's targets, as a dict."""
    counted = {side: _counted(side_runs) for side, side_runs in runs.items()}
    only_busy = any(busy for _, busy in counted.values())
    rows = {}
    for label, key, scale, unit, fmt in ROWS:
        row = {}
        for side, (side_runs, _) in counted.items():
            stats = _stats(side_runs, key)
            row[side] = None if stats is None else [s * scale for s in stats]
        dl, pt = row.get("dlscratch"), row.get("pytorch")
        row["ratio"] = dl[0] / pt[0] if dl and pt and pt[0] else None
        rows[label] = {"unit": unit, "format": fmt, **row}
    peaks = {
        "numpy GEMM peak GFLOP/s": _stats(counted["dlscratch"][0], "numpy_gemm_peak_gflops")
        if "dlscratch" in counted
        else None,
        "torch GEMM peak GFLOP/s": _stats(counted["pytorch"][0], "torch_gemm_peak_gflops")
        if "pytorch" in counted
        else None,
    }
    loads = [r.foreign_cores for side_runs in runs.values() for r in side_runs if r.foreign_cores is not None]
    summary: dict[str, Any] = {
        "workload": workload.name,
        "title": workload.title,
        "evaluation": workload.evaluation,
        "threads": threads,
        "runs": {side: len(side_runs) for side, side_runs in runs.items()},
        "busy_runs": {side: sum(r.busy for r in side_runs) for side, side_runs in runs.items()},
        "only_busy": only_busy,
        "foreign_cores": [min(loads), max(loads)] if loads else None,
        "rows": rows,
        "gemm_peaks": peaks,
        "targets": _targets(workload, rows, only_busy),
    }
    return summary


def _targets(workload: Workload, rows: dict[str, Any], only_busy: bool) -> list[dict[str, Any]]:
    """The issue's three targets, each with its measured value and whether it is met."""
    if "pytorch" not in rows["whole run"]:
        return []
    whole, memory = rows["whole run"]["ratio"], rows["peak memory"]["ratio"]
    dl_acc, pt_acc = rows["final test accuracy"]["dlscratch"], rows["final test accuracy"]["pytorch"]
    gap = None if dl_acc is None or pt_acc is None else dl_acc[0] - pt_acc[0]
    targets = [
        {
            "what": "whole run, dlscratch/pytorch",
            "value": whole,
            "limit": workload.target,
            "met": whole is not None and whole <= workload.target,
        },
        {
            "what": "peak memory, dlscratch/pytorch",
            "value": memory,
            "limit": 1.0,
            "met": memory is not None and memory <= 1.0,
        },
        {
            "what": "test accuracy, dlscratch - pytorch (points)",
            "value": gap,
            "limit": -0.5,
            "met": gap is not None and gap >= -0.5,
        },
    ]
    for target in targets:
        target["judged"] = not only_busy
    return targets


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a text table with a verdict line per target."""
    sides = [s for s in SIDES if s in summary["runs"]]
    lines = [
        f"== {summary['workload']} at {summary['threads']} thread(s): {summary['title']}",
        "   runs: "
        + ", ".join(
            f"{side} {summary['runs'][side]} ({summary['busy_runs'][side]} busy, left out)" for side in sides
        ),
    ]
    lines.append(f"   time per evaluation: {summary['evaluation']}")
    if summary["foreign_cores"]:
        low, high = summary["foreign_cores"]
        lines.append(f"   machine: other processes used {low:.2f}-{high:.2f} cores during the runs")
    if summary["only_busy"]:
        lines.append(
            "   MACHINE BUSY: every run of a side was disturbed; the numbers below are not a measurement"
        )
    header = f"   {'':30s}" + "".join(f"{side + ' median [min-max]':>30s}" for side in sides)
    if len(sides) == 2:
        header += f"{'ratio':>8s}"
    lines.append(header)
    for label, row in summary["rows"].items():
        cells = []
        for side in sides:
            stats = row.get(side)
            if stats is None:
                cells.append(f"{'n/a':>30s}")
                continue
            fmt, unit = row["format"], row["unit"]
            text = f"{fmt.format(stats[0])} {unit} [{fmt.format(stats[1])}-{fmt.format(stats[2])}]"
            cells.append(f"{text:>30s}")
        line = f"   {label:30s}" + "".join(cells)
        if len(sides) == 2:
            line += f"{row['ratio']:8.2f}" if row["ratio"] is not None else f"{'':8s}"
        lines.append(line)
    for name, stats in summary["gemm_peaks"].items():
        if stats:
            lines.append(f"   {name}: {stats[0]:.1f} [{stats[1]:.1f}-{stats[2]:.1f}]")
    numpy_peak = summary["gemm_peaks"].get("numpy GEMM peak GFLOP/s")
    if numpy_peak:
        for label in ("achieved GFLOP/s, steps", "achieved GFLOP/s, evaluation"):
            row = summary["rows"][label]
            shares = ", ".join(
                f"{side} {100 * row[side][0] / numpy_peak[0]:.0f}%" for side in sides if row.get(side)
            )
            lines.append(f"   {label} as a share of numpy's GEMM peak: {shares}")
    for target in summary["targets"]:
        value = target["value"]
        shown = "n/a" if value is None else f"{value:.2f}"
        relation = f">= {target['limit']}" if target["limit"] < 0 else f"<= {target['limit']}"
        verdict = "MET" if target["met"] else "NOT MET"
        if not target["judged"]:
            verdict = "not judged (machine busy)"
        lines.append(f"   target {target['what']}: {shown} ({relation}): {verdict}")
    return "\n".join(lines)


def run_bench(workload_names: list[str], options: Options) -> list[dict[str, Any]]:
    """Measure each workload at each thread count; return the summaries (also logged)."""
    log = options.log
    summaries = []
    for name in workload_names:
        workload = quick(WORKLOADS[name]) if options.quick else WORKLOADS[name]
        for threads in options.threads:
            runs = measure(workload, threads, options)
            summary = summarize(workload, threads, runs)
            summary["raw"] = {side: [_raw(r) for r in side_runs] for side, side_runs in runs.items()}
            log(format_summary(summary))
            summaries.append(summary)
    return summaries


def _raw(run: Run) -> dict[str, Any]:
    return {"foreign_cores": run.foreign_cores, "wall_s": run.wall_s, "busy": run.busy, **run.result}
