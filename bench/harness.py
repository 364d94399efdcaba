"""Runs the sides in turn, watches the machine, and reports medians and ratios.

Every run is a fresh ``python -m bench.worker`` process with the thread count in its
environment (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS; the PyTorch side also
calls torch.set_num_threads), so both sides use the same number of threads and each one's
peak memory is its own. Runs alternate (dlscratch, pytorch, then pytorch, dlscratch, ...)
so a slow drift of the machine affects both alike.

For the two-layer workloads a third side, "numpy" (a hand-tuned NumPy loop doing the same
work, bench.numpy_loop), runs in the same alternation (dlscratch, pytorch, numpy, then
numpy, pytorch, dlscratch, ...) unless Options.numpy_reference is False: its ratio to
PyTorch and its lower bound (the unavoidable work alone) are shown beside the others,
and the seed run's time target is dlscratch's ratio to it.

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

from bench.checks import RESULT_PREFIX as CHECK_PREFIX
from bench.worker import RESULT_PREFIX
from bench.workloads import ALL_SIDES, NUMPY_SIDE, SIDES, WORKLOADS, Workload, flops, quick

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
    numpy_reference: bool = True  # add the "numpy" side to the workloads that have it
    log: Any = field(default=print)


def sides_for(workload: Workload, options: Options) -> tuple[str, ...]:
    """The sides that run for this workload: options.sides, plus "numpy" where it applies."""
    if options.numpy_reference and workload.has_numpy_reference and NUMPY_SIDE not in options.sides:
        return (*options.sides, NUMPY_SIDE)
    return options.sides


class WorkerError(RuntimeError):
    """A worker process failed; the message holds its last lines of output."""


def _in_fresh_process(
    module: str, arguments: list[str], threads: int, prefix: str, what: str
) -> tuple[dict[str, Any], float | None, float]:
    """python -m module arguments, with `threads` in the thread variables: (its JSON line after
    prefix, foreign cores meanwhile, wall seconds)."""
    env = dict(os.environ)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    meter = LoadMeter()
    meter.start()
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", module, *arguments],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    load = meter.stop()
    lines = [line for line in done.stdout.splitlines() if line.startswith(prefix)]
    if done.returncode != 0 or not lines:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise WorkerError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return json.loads(lines[-1][len(prefix) :]), load, wall


def run_worker(
    side: str, workload: Workload, threads: int, quick_run: bool
) -> tuple[dict[str, Any], float | None, float]:
    """One run in a fresh process: (its measurements, foreign cores meanwhile, wall seconds)."""
    arguments = [side, workload.name, *(["--quick"] if quick_run else [])]
    return _in_fresh_process(
        "bench.worker", arguments, threads, RESULT_PREFIX, f"the {side} worker for {workload.name}"
    )


def run_checks(threads: int, quick_run: bool) -> dict[str, Any]:
    """The sanity checks of bench.checks in a fresh process (fewer samples when quick)."""
    arguments = ["--samples", "200" if quick_run else "1000"]
    result, load, _ = _in_fresh_process("bench.checks", arguments, threads, CHECK_PREFIX, "the float16 check")
    return {**result, "threads": threads, "foreign_cores": load}


def measure(workload: Workload, threads: int, options: Options) -> dict[str, list[Run]]:
    """Alternate the sides `repeats` times; retry a run that the machine disturbed."""
    log = options.log
    sides = sides_for(workload, options)
    runs: dict[str, list[Run]] = {side: [] for side in sides}
    for repeat in range(options.repeats):
        order = sides if repeat % 2 == 0 else sides[::-1]
        for side in order:
            for attempt in range(1 + options.retry_busy):
                if options.wait_idle > 0:
                    wait_until_idle(options.busy_threshold, options.wait_idle, log)
                result, load, wall = run_worker(side, workload, threads, options.quick)
                busy = load is not None and load > options.busy_threshold
                runs[side].append(Run(side, result, load, wall, busy))
                load_text = "n/a" if load is None else f"{load:.2f}"
                bound = result.get("lower_bound")
                log(
                    f"  {workload.name} {threads}t {side:9s} run {repeat + 1}/{options.repeats}: "
                    f"whole {result['whole_s']:.3f} s, step {result['step_s'] * 1e3:.3f} ms, "
                    f"eval {result['eval_s'] * 1e3:.1f} ms, test acc {result['test_acc']:.4f}, "
                    + (f"lower bound {bound['whole_s']:.3f} s, " if bound else "")
                    + f"others used {load_text} cores"
                    + ("  BUSY" if busy else "")
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
    ("  of which the data set", "memory.data_mib", 1, "MiB", "{:.0f}"),
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


LOWER_BOUND_ROW = (
    # shown under "whole run", for the numpy side only
    "lower bound (first-layer products + batch gather only)",
    "lower_bound.whole_s",
    1,
    "s",
    "{:.2f}",
)
NUMPY_TITLE = "tuned numpy"  # the numpy side's column in the table


def _ratio(side: list[float] | None, pytorch: list[float] | None) -> float | None:
    """median / pytorch's median, or None where either is missing."""
    return side[0] / pytorch[0] if side and pytorch and pytorch[0] else None


def summarize(workload: Workload, threads: int, runs: dict[str, list[Run]]) -> dict[str, Any]:
    """Medians, spreads, ratios, the matrix-product floor and the verdict on the targets, as a dict.

    Each row holds [median, min, max] per side, "ratio" (dlscratch/pytorch) and, where
    the numpy side ran, "numpy_ratio" (numpy/pytorch) and "dlscratch_numpy_ratio".
    """
    counted = {side: _counted(side_runs) for side, side_runs in runs.items()}
    only_busy = any(busy for side, (_, busy) in counted.items() if side in SIDES)
    reference = NUMPY_SIDE in counted
    rows = {}
    extra = [(f"mean loss of the first {workload.same_steps} steps", "first_loss_mean", 1, "", "{:.5f}")]
    for label, key, scale, unit, fmt in [*ROWS, *(extra if workload.same_steps else [])]:
        row = {}
        for side, (side_runs, _) in counted.items():
            stats = _stats(side_runs, key)
            row[side] = None if stats is None else [s * scale for s in stats]
        dl, pt = row.get("dlscratch"), row.get("pytorch")
        row["ratio"] = _ratio(dl, pt)
        if reference:
            row["numpy_ratio"] = _ratio(row[NUMPY_SIDE], pt)
            row["dlscratch_numpy_ratio"] = _ratio(dl, row[NUMPY_SIDE])
        rows[label] = {"unit": unit, "format": fmt, **row}
        if reference and label == "whole run":
            rows[LOWER_BOUND_ROW[0]] = _lower_bound_row(counted[NUMPY_SIDE][0], pt)
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
        "floor": _floor(workload, rows, peaks),
    }
    if reference:
        summary["numpy_only_busy"] = counted[NUMPY_SIDE][1]
    summary["targets"] = _targets(workload, rows, only_busy, bool(summary.get("numpy_only_busy")))
    return summary


def _floor(workload: Workload, rows: dict[str, Any], peaks: dict[str, Any]) -> dict[str, Any] | None:
    """A training step's matrix products at numpy's GEMM peak (ms), and each side's step over it.

    The step's FLOPs (bench.workloads.flops, as the direct products count them) at the peak
    GFLOP/s measured in dlscratch's runs: no NumPy loop doing those products can be faster.
    """
    peak = peaks.get("numpy GEMM peak GFLOP/s")
    if not peak:
        return None
    floor_ms = flops(workload)[0] / (peak[0] * 1e9) * 1e3
    steps = rows["time per training step"]
    return {
        "ms": floor_ms,
        "over": {side: steps[side][0] / floor_ms for side in ALL_SIDES if steps.get(side)},
    }


def _lower_bound_row(numpy_runs: list[Run], pytorch: list[float] | None) -> dict[str, Any]:
    """The numpy side's lower bound for the whole run, [median, min, max] s, and its ratio."""
    _, key, scale, unit, fmt = LOWER_BOUND_ROW
    stats = _stats(numpy_runs, key)
    bound = None if stats is None else [s * scale for s in stats]
    return {
        "unit": unit,
        "format": fmt,
        "only": NUMPY_SIDE,
        NUMPY_SIDE: bound,
        "ratio": None,
        "numpy_ratio": _ratio(bound, pytorch),
    }


def _same_training(workload: Workload, rows: dict[str, Any]) -> dict[str, Any] | None:
    """The workload's "same training" target (same_steps set), else None: see Workload."""
    if workload.same_steps is None:
        return None
    row = rows[f"mean loss of the first {workload.same_steps} steps"]
    ratio = row["ratio"]
    return {
        "what": f"mean loss of the first {workload.same_steps} steps, dlscratch/pytorch - 1",
        "value": None if ratio is None else ratio - 1,
        "limit": 0.01,
        "absolute": True,
        "met": ratio is not None and abs(ratio - 1) <= 0.01,
    }


def _targets(
    workload: Workload, rows: dict[str, Any], only_busy: bool, numpy_only_busy: bool = False
) -> list[dict[str, Any]]:
    """The three targets, each with its measured value and whether it is met and judged.

    The first is the workload's own: its row's dlscratch / `versus` ratio; then peak
    memory and test accuracy against pytorch. None without pytorch. A table made only of
    busy runs judges nothing; a numpy column made only of busy ones, no numpy ratio.
    """
    if "pytorch" not in rows["whole run"]:
        return []
    row = rows[workload.target_row]
    ratio = row["ratio"] if workload.versus == "pytorch" else row.get("dlscratch_numpy_ratio")
    memory = rows["peak memory"]["ratio"]
    dl_acc, pt_acc = rows["final test accuracy"]["dlscratch"], rows["final test accuracy"]["pytorch"]
    gap = None if dl_acc is None or pt_acc is None else dl_acc[0] - pt_acc[0]
    same = _same_training(workload, rows)
    versus = NUMPY_TITLE if workload.versus == NUMPY_SIDE else workload.versus
    targets = [
        {
            "what": f"{workload.target_row}, dlscratch/{versus}",
            "value": ratio,
            "limit": workload.target,
            "met": ratio is not None and ratio <= workload.target,
        },
        {
            "what": "peak memory, dlscratch/pytorch",
            "value": memory,
            "limit": 1.0,
            "met": memory is not None and memory <= 1.0,
        },
        same
        or {
            "what": "test accuracy, dlscratch - pytorch (points)",
            "value": gap,
            "limit": -0.5,
            "met": gap is not None and gap >= -0.5,
        },
    ]
    for target in targets:
        target["judged"] = not only_busy
    if workload.versus == NUMPY_SIDE:
        targets[0]["judged"] = not (only_busy or numpy_only_busy)
    return targets


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a text table, the matrix-product floor, then a verdict line per target.

    Columns: dlscratch, pytorch, their ratio; where the numpy side ran, its column and its
    ratio to pytorch, and under "whole run" its lower bound in that column alone.
    """
    sides = [s for s in ALL_SIDES if s in summary["runs"]]
    ratios = "pytorch" in sides
    lines = [
        f"== {summary['workload']} at {summary['threads']} thread(s): {summary['title']}",
        "   runs: "
        + ", ".join(
            f"{_title(side)} {summary['runs'][side]} ({summary['busy_runs'][side]} busy, left out)"
            for side in sides
        ),
    ]
    lines.append(f"   time per evaluation: {summary['evaluation']}")
    if NUMPY_SIDE in sides:
        lines.append(
            f"   {NUMPY_TITLE}: a hand-written NumPy loop doing the same work, the time target's yardstick"
            + ("; the ratio beside it is to pytorch" if ratios else "")
        )
    if summary["foreign_cores"]:
        low, high = summary["foreign_cores"]
        lines.append(f"   machine: other processes used {low:.2f}-{high:.2f} cores during the runs")
    if summary["only_busy"]:
        lines.append(
            "   MACHINE BUSY: every run of a side was disturbed; the numbers below are not a measurement"
        )
    if summary.get("numpy_only_busy"):
        lines.append(
            f"   MACHINE BUSY for {NUMPY_TITLE}: every run was disturbed; its column is not a measurement"
        )
    lines.append(f"   {'':30s}" + "".join(_column(side, ratios) for side in sides))
    for label, row in summary["rows"].items():
        if row.get("only") == NUMPY_SIDE:  # the label spans the columns left empty
            width = 30 + sum(len(_column(side, ratios)) for side in sides[:-1])
            lines.append(f"   {'  ' + label:{width}s}" + _column(NUMPY_SIDE, ratios, row))
            continue
        lines.append(f"   {label:30s}" + "".join(_column(side, ratios, row) for side in sides))
    for name, stats in summary["gemm_peaks"].items():
        if stats:
            lines.append(f"   {name}: {stats[0]:.1f} [{stats[1]:.1f}-{stats[2]:.1f}]")
    numpy_peak = summary["gemm_peaks"].get("numpy GEMM peak GFLOP/s")
    if numpy_peak:
        for label in ("achieved GFLOP/s, steps", "achieved GFLOP/s, evaluation"):
            row = summary["rows"][label]
            shares = ", ".join(
                f"{_title(side)} {100 * row[side][0] / numpy_peak[0]:.0f}%" for side in sides if row.get(side)
            )
            lines.append(f"   {label} as a share of numpy's GEMM peak: {shares}")
    floor = summary.get("floor")
    if floor:
        over = ", ".join(f"{_title(side)} {value:.2f}x" for side, value in floor["over"].items())
        lines.append(
            f"   floor: a training step's matrix products at numpy's GEMM peak take {floor['ms']:.3f} ms; "
            f"time per training step over it: {over}"
        )
    for target in summary["targets"]:
        value = target["value"]
        shown = "n/a" if value is None else f"{value:.4f}" if target.get("absolute") else f"{value:.2f}"
        relation = f">= {target['limit']}" if target["limit"] < 0 else f"<= {target['limit']}"
        if target.get("absolute"):
            relation = f"within +-{target['limit']}"
        verdict = "MET" if target["met"] else "NOT MET"
        if not target["judged"]:
            verdict = "not judged (machine busy)"
        lines.append(f"   target {target['what']}: {shown} ({relation}): {verdict}")
    return "\n".join(lines)


def _column(side: str, ratios: bool, row: dict[str, Any] | None = None) -> str:
    """One side's cell (30 wide) of a row, or of the header without a row, then a ratio (8 wide).

    The dlscratch/pytorch ratio follows the pytorch column, numpy's ratio to pytorch its
    own column; none without pytorch.
    """
    ratio_key = {"pytorch": "ratio", NUMPY_SIDE: "numpy_ratio"}.get(side) if ratios else None
    if row is None:
        return f"{_title(side) + ' median [min-max]':>30s}" + (f"{'ratio':>8s}" if ratio_key else "")
    stats = row.get(side)
    if stats is None:
        cell = "n/a"
    else:
        fmt, unit = row["format"], row["unit"]
        cell = f"{fmt.format(stats[0])} {unit} [{fmt.format(stats[1])}-{fmt.format(stats[2])}]"
    text = f"{cell:>30s}"
    if ratio_key:
        ratio = row.get(ratio_key)
        text += f"{ratio:8.2f}" if ratio is not None else f"{'':8s}"
    return text


def _title(side: str) -> str:
    """A side's name in the table: "tuned numpy" for the numpy side, the others as they are."""
    return NUMPY_TITLE if side == NUMPY_SIDE else side


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
