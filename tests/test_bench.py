"""bench/: the side-by-side benchmark runs, reports and judges (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_or_skip

from dlscratch.datasets import DatasetNotFoundError, load_fashion_mnist

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # bench/ sits beside src/, not inside the installed package
    sys.path.insert(0, str(REPO))

from bench.harness import Run, format_summary, summarize  # noqa: E402
from bench.workloads import WORKLOADS, evaluation_iterations, flops, quick  # noqa: E402


def _result(whole: float, acc: float = 0.87, peak: float = 100.0) -> dict:
    return {
        "whole_s": whole,
        "step_s": whole / 10000,
        "eval_s": 0.05,
        "test_acc": acc,
        "memory": {"peak_mib": peak, "loop_mib": 1.0},
        "step_gflops": 50.0,
        "eval_gflops": 100.0,
        "numpy_gemm_peak_gflops": 180.0,
    }


def _runs(dl_times, pt_times, busy=()):
    runs = {"dlscratch": [], "pytorch": []}
    for side, times in (("dlscratch", dl_times), ("pytorch", pt_times)):
        for i, whole in enumerate(times):
            flagged = (side, i) in busy
            runs[side].append(
                Run(side, _result(whole, peak=50 if side == "dlscratch" else 300), 0.0, whole, flagged)
            )
    return runs


def test_flop_counts_match_the_issue():
    step, per_sample = flops(WORKLOADS["seed-run"])
    assert step == pytest.approx(16e6, rel=0.01)  # 16 MFLOP per step without the first dx
    assert per_sample * 70000 == pytest.approx(5.56e9, rel=0.01)  # 5.6 GFLOP per evaluation


def test_evaluation_schedule_is_the_trainers():
    # 10000 iterations of 100 from 60000: the untrained net, every 600, and the last
    points = evaluation_iterations(WORKLOADS["seed-run"], 60000)
    assert points == [0, *range(600, 10000, 600), 10000]
    assert evaluation_iterations(WORKLOADS["convnet-epoch"], 60000) == [0, 600]
    assert quick(WORKLOADS["seed-run"]).iters < WORKLOADS["seed-run"].iters


def test_medians_ratios_and_verdicts():
    summary = summarize(WORKLOADS["seed-run"], 2, _runs([3.0, 3.2, 2.9], [8.0, 8.4, 8.2]))
    whole = summary["rows"]["whole run"]
    assert whole["dlscratch"] == [3.0, 2.9, 3.2] and whole["pytorch"] == [8.2, 8.0, 8.4]
    assert whole["ratio"] == pytest.approx(3.0 / 8.2)
    assert [t["met"] for t in summary["targets"]] == [True, True, True]
    text = format_summary(summary)
    assert "whole run" in text and "0.37" in text and "MET" in text and "MACHINE BUSY" not in text


def test_busy_runs_are_left_out_and_all_busy_is_not_judged():
    summary = summarize(WORKLOADS["seed-run"], 2, _runs([3.0, 9.0], [8.0, 8.0], busy={("dlscratch", 1)}))
    assert summary["rows"]["whole run"]["dlscratch"][0] == 3.0  # the busy 9.0 s run is left out
    assert all(t["judged"] for t in summary["targets"])
    every = {("dlscratch", 0), ("dlscratch", 1)}
    summary = summarize(WORKLOADS["seed-run"], 2, _runs([3.0, 9.0], [8.0, 8.0], busy=every))
    assert not any(t["judged"] for t in summary["targets"])
    assert "MACHINE BUSY" in format_summary(summary) and "not judged" in format_summary(summary)


def test_without_pytorch_there_are_no_ratios_or_targets():
    runs = {"dlscratch": _runs([3.0], [])["dlscratch"]}
    summary = summarize(WORKLOADS["seed-run"], 2, runs)
    assert summary["targets"] == [] and summary["rows"]["whole run"]["ratio"] is None
    assert "pytorch" not in format_summary(summary)


@pytest.mark.slow
def test_the_quick_command_runs_both_sides_end_to_end(tmp_path):
    try:
        load_fashion_mnist(download=False)
    except DatasetNotFoundError:
        require_or_skip("Fashion-MNIST", "DLSCRATCH_REQUIRE_DATA")
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "bench", "seed-run", "--quick", "--threads", "1"]
    command += ["--wait-idle", "0", "--retry-busy", "0", "--json", str(out)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "time per training step" in done.stdout and "numpy GEMM peak" in done.stdout
    (summary,) = json.loads(out.read_text())
    sides = summary["raw"].keys()
    for side in sides:
        (run,) = summary["raw"][side]
        assert run["whole_s"] > 0 and 0 <= run["test_acc"] <= 1 and run["memory"]["peak_mib"] is not None
    if "pytorch" in sides:
        accuracy = summary["rows"]["final test accuracy"]
        # same initial weights, same batches: the two libraries end up alike
        assert abs(accuracy["dlscratch"][0] - accuracy["pytorch"][0]) <= 0.5
        assert "target whole run" in done.stdout
    else:
        assert "PyTorch is not installed" in done.stderr
