"""bench/: the side-by-side benchmark runs, reports and judges (no timing is asserted).

The numpy side (a hand-tuned NumPy loop, a reference beside dlscratch and PyTorch) is
checked here too: its step and its accuracy against dlscratch's network, its column,
ratios and note in the report, and that it changes none of the targets' verdicts. So is
the report-only deep-convnet workload: its two networks, its FLOP count, its table
without verdicts, and --strict passing it over.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import require_or_skip

from dlscratch import TwoLayerNet
from dlscratch.datasets import DatasetNotFoundError, load_fashion_mnist
from dlscratch.optim import SGD

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # bench/ sits beside src/, not inside the installed package
    sys.path.insert(0, str(REPO))

from bench import cli, harness, loops, numpy_loop  # noqa: E402
from bench.harness import LOWER_BOUND_ROW, Options, Run, format_summary, sides_for, summarize  # noqa: E402
from bench.workloads import WORKLOADS, evaluation_iterations, flops, quick  # noqa: E402

LOWER_BOUND = LOWER_BOUND_ROW[0]
NOTE = "a hand-tuned NumPy loop reaches"


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


def _runs(dl_times, pt_times, busy=(), np_times=None):
    """Synthetic runs; np_times: (whole, lower bound) seconds per run of the numpy side."""
    runs = {"dlscratch": [], "pytorch": []}
    for side, times in (("dlscratch", dl_times), ("pytorch", pt_times)):
        for i, whole in enumerate(times):
            flagged = (side, i) in busy
            runs[side].append(
                Run(side, _result(whole, peak=50 if side == "dlscratch" else 300), 0.0, whole, flagged)
            )
    if np_times is not None:
        runs["numpy"] = []
        for i, (whole, bound) in enumerate(np_times):
            result = {**_result(whole, acc=0.871, peak=60), "lower_bound": {"whole_s": bound}}
            runs["numpy"].append(Run("numpy", result, 0.0, whole, ("numpy", i) in busy))
    return runs


def _line(text, start):
    """The one line of text that starts (after its indent) with start."""
    (line,) = [line for line in text.splitlines() if line.lstrip().startswith(start.lstrip())]
    return line


def test_flop_counts_match_the_issue():
    step, per_sample = flops(WORKLOADS["seed-run"])
    assert step == pytest.approx(16e6, rel=0.01)  # 16 MFLOP per step without the first dx
    assert per_sample * 70000 == pytest.approx(5.56e9, rel=0.01)  # 5.6 GFLOP per evaluation


def test_deep_convnet_flop_count_by_hand():
    # per image, 2 m k n per product; convolutions: output pixels x (channels x 3 x 3) x filters
    first = 2 * 28 * 28 * 9 * 16  # 225,792: conv 1 -> 16 at 28x28 (no input gradient)
    rest = 2 * (
        28 * 28 * 144 * 16  # conv 16 -> 16 at 28x28, then pool to 14x14
        + 14 * 14 * 144 * 32  # conv 16 -> 32 at 14x14
        + 16 * 16 * 288 * 32  # conv 32 -> 32, padding 2: 16x16, then pool to 8x8
        + 8 * 8 * 288 * 64  # conv 32 -> 64 at 8x8
        + 8 * 8 * 576 * 64  # conv 64 -> 64 at 8x8, then pool to 64 x 4 x 4
        + 1024 * 50
        + 50 * 10
    )
    assert first + rest == 17_544_680
    step, per_sample = flops(WORKLOADS["deep-convnet"])
    assert per_sample == 17_544_680
    assert step == 100 * (2 * first + 3 * rest) == 5_240_824_800  # 5.2 GFLOP per step of 100


def test_existing_flop_counts_are_unchanged():
    assert flops(WORKLOADS["seed-run"]) == (15_980_000, 79_400)
    assert flops(WORKLOADS["convnet-epoch"]) == (432_600_000, 1_730_000)


def test_evaluation_schedule_is_the_trainers():
    # 10000 iterations of 100 from 60000: the untrained net, every 600, and the last
    points = evaluation_iterations(WORKLOADS["seed-run"], 60000)
    assert points == [0, *range(600, 10000, 600), 10000]
    assert evaluation_iterations(WORKLOADS["convnet-epoch"], 60000) == [0, 600]
    assert evaluation_iterations(WORKLOADS["deep-convnet"], 60000) == [0, 200]
    assert quick(WORKLOADS["seed-run"]).iters < WORKLOADS["seed-run"].iters


def test_deep_convnet_workload_and_its_quick_version():
    deep = WORKLOADS["deep-convnet"]
    assert (deep.iters, deep.batch_size, deep.optimizer, deep.lr) == (200, 100, "adam", 0.001)
    assert (deep.eval_samples, deep.final_eval_samples, deep.eval_batch) == (1000, None, 100)
    assert deep.report_only and deep.images and not deep.has_numpy_reference
    short = quick(deep)
    assert short.iters == 10 and short.eval_samples == short.final_eval_samples == 200
    assert evaluation_iterations(short, 60000) == [0, 10] and short.report_only
    assert not any(w.report_only for name, w in WORKLOADS.items() if name != "deep-convnet")


@pytest.mark.parametrize("name", ["seed-run", "convnet-epoch", "deep-convnet"])
def test_torch_model_scores_as_dlscratchs_after_the_weight_copy(name, rng, torch):
    workload = WORKLOADS[name]
    network = loops._build_dlscratch_net(workload)
    model = loops.torch_model(torch.nn, workload)
    loops._copy_weights(torch, network, model)
    x = rng.random((4, 1, 28, 28) if workload.images else (4, 784), dtype=np.float32)
    expected = network.predict(x, train_flg=False)  # no dropout, as in accuracy()
    with torch.no_grad():
        scores = model.eval()(torch.from_numpy(x)).numpy()
    assert scores.shape == expected.shape == (4, 10)
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    assert model.eval()(torch.from_numpy(x)).dtype == torch.float32


def test_weight_copy_refuses_a_model_of_another_shape(torch):
    network = loops._build_dlscratch_net(WORKLOADS["deep-convnet"])
    with pytest.raises(ValueError, match="weighted torch layers"):
        loops._copy_weights(torch, network, loops.torch_model(torch.nn, WORKLOADS["convnet-epoch"]))


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


def test_report_only_workload_has_rows_and_no_verdict():
    summary = summarize(WORKLOADS["deep-convnet"], 2, _runs([30.0, 31.0], [20.0, 21.0]))
    assert summary["report_only"] and summary["targets"] == []
    assert summary["rows"]["whole run"]["ratio"] == pytest.approx(30.5 / 20.5)
    text = format_summary(summary)
    assert "report only: the issue sets no target" in text
    assert not [line for line in text.splitlines() if line.lstrip().startswith("target ")]
    assert "MET" not in text and "judged" not in text
    assert _line(text, "final test accuracy").split()[3:5] == ["87.00", "%"]
    assert _line(text, "whole run").split()[-1] == "1.49"
    assert not summarize(WORKLOADS["seed-run"], 2, _runs([3.0], [8.0]))["report_only"]


def test_strict_ignores_report_only_workloads(monkeypatch, capsys):
    deep = summarize(WORKLOADS["deep-convnet"], 2, _runs([30.0], [20.0]))
    met = summarize(WORKLOADS["seed-run"], 2, _runs([3.0], [8.0]))
    not_met = summarize(WORKLOADS["seed-run"], 2, _runs([5.0], [8.0]))
    no_torch = summarize(WORKLOADS["seed-run"], 2, {"dlscratch": _runs([3.0], [])["dlscratch"]})
    assert cli.strict_passes([deep]) and cli.strict_passes([met, deep])
    assert not cli.strict_passes([not_met, deep]) and not cli.strict_passes([no_torch, deep])
    monkeypatch.setattr(cli, "foreign_load", lambda seconds: 0.0)
    monkeypatch.setattr(cli, "run_bench", lambda names, options: [met, deep])
    cli.main(["--quick", "--strict"])  # exits 0: seed-run met, deep-convnet not judged
    monkeypatch.setattr(cli, "run_bench", lambda names, options: [not_met, deep])
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--quick", "--strict"])
    assert exit_info.value.code == 3
    capsys.readouterr()


def test_all_includes_deep_convnet(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(cli, "run_bench", lambda names, options: seen.append(names) or [])
    monkeypatch.setattr(cli, "foreign_load", lambda seconds: 0.0)
    cli.main(["--quick"])
    cli.main(["all", "--quick"])
    assert seen == [["seed-run", "convnet-epoch", "deep-convnet"]] * 2
    assert "deep-convnet" in cli.build_parser().format_help()
    capsys.readouterr()


def test_without_pytorch_there_are_no_ratios_or_targets():
    runs = {"dlscratch": _runs([3.0], [])["dlscratch"]}
    summary = summarize(WORKLOADS["seed-run"], 2, runs)
    assert summary["targets"] == [] and summary["rows"]["whole run"]["ratio"] is None
    assert "pytorch" not in format_summary(summary)


# ----------------------------------------------------------------------------- the numpy side


def test_numpy_column_ratios_and_lower_bound_row():
    # numpy whole runs 4.0 and 4.2 s (median 4.1), lower bounds 2.5 and 2.6 s; pytorch median 8.2 s
    runs = _runs([3.0, 3.2, 2.9], [8.0, 8.4, 8.2], np_times=[(4.0, 2.5), (4.2, 2.6)])
    summary = summarize(WORKLOADS["seed-run"], 2, runs)
    whole, bound = summary["rows"]["whole run"], summary["rows"][LOWER_BOUND]
    assert whole["numpy"] == [4.1, 4.0, 4.2] and whole["numpy_ratio"] == pytest.approx(4.1 / 8.2)
    assert bound["numpy"] == [2.55, 2.5, 2.6] and bound["numpy_ratio"] == pytest.approx(2.55 / 8.2)
    assert summary["rows"]["peak memory"]["numpy_ratio"] == pytest.approx(60 / 300)
    assert list(summary["rows"]).index(LOWER_BOUND) == list(summary["rows"]).index("whole run") + 1
    text = format_summary(summary)
    assert "tuned numpy median [min-max]" in _line(text, "dlscratch median")
    assert _line(text, "whole run").split()[-5:] == ["0.37", "4.10", "s", "[4.00-4.20]", "0.50"]
    assert _line(text, LOWER_BOUND).split()[-4:] == ["2.55", "s", "[2.50-2.60]", "0.31"]
    # every line of the table is as wide as the header
    widths = {len(_line(text, label + "  ")) for label in summary["rows"]}  # label, then padding
    assert widths == {len(_line(text, "dlscratch median"))}
    assert summary["runs"]["numpy"] == 2 and "tuned numpy 2 (0 busy" in text


def test_numpy_side_changes_no_ratio_and_no_verdict():
    plain = summarize(WORKLOADS["seed-run"], 2, _runs([3.0, 9.0], [8.0, 8.0], busy={("dlscratch", 1)}))
    runs = _runs([3.0, 9.0], [8.0, 8.0], busy={("dlscratch", 1), ("numpy", 0)}, np_times=[(1, 1), (5, 2)])
    with_numpy = summarize(WORKLOADS["seed-run"], 2, runs)
    for label, row in plain["rows"].items():
        assert with_numpy["rows"][label]["ratio"] == row["ratio"]
    for target, same in zip(plain["targets"], with_numpy["targets"], strict=True):
        assert {**target, "reference": None} == {**same, "reference": None}
    assert with_numpy["rows"]["whole run"]["numpy"][0] == 5  # the busy 1 s numpy run is left out


def test_note_when_the_numpy_loop_is_above_the_target():
    # dlscratch 5.0 s, pytorch 8.0 s (0.62, not met); the numpy loop 4.0 s (0.50 > 0.40)
    summary = summarize(WORKLOADS["seed-run"], 2, _runs([5.0], [8.0], np_times=[(4.0, 2.0)]))
    reference = summary["targets"][0]["reference"]
    assert reference["value"] == pytest.approx(0.5) and reference["above_limit"]
    assert reference["lower_bound"] == pytest.approx(0.25)
    line = _line(format_summary(summary), "target whole run")
    assert line.endswith(
        "NOT MET; a hand-tuned NumPy loop reaches 0.50 in the same run: "
        "the target is below what NumPy does on this machine"
    )
    # dlscratch meets the target and the numpy loop does not: the note, without the conclusion
    summary = summarize(WORKLOADS["seed-run"], 2, _runs([3.0], [8.0], np_times=[(4.0, 2.0)]))
    line = _line(format_summary(summary), "target whole run")
    assert line.endswith(": MET; a hand-tuned NumPy loop reaches 0.50 in the same run")


def test_no_note_when_the_numpy_loop_meets_the_target_or_was_disturbed():
    summary = summarize(WORKLOADS["seed-run"], 2, _runs([5.0], [8.0], np_times=[(3.0, 2.0)]))
    assert not summary["targets"][0]["reference"]["above_limit"]  # 0.375 <= 0.40
    assert NOTE not in format_summary(summary) and "NOT MET" in format_summary(summary)
    busy = summarize(WORKLOADS["seed-run"], 2, _runs([5.0], [8.0], {("numpy", 0)}, [(4.0, 2.0)]))
    assert busy["numpy_only_busy"] and all(t["judged"] for t in busy["targets"])
    text = format_summary(busy)
    assert NOTE not in text and "MACHINE BUSY for tuned numpy" in text


def test_numpy_side_without_pytorch_has_no_ratios():
    runs = _runs([3.0], [], np_times=[(4.0, 2.0)])
    del runs["pytorch"]
    summary = summarize(WORKLOADS["seed-run"], 2, runs)
    assert summary["targets"] == [] and summary["rows"]["whole run"]["numpy_ratio"] is None
    text = format_summary(summary)
    assert "pytorch" not in text and "ratio" not in _line(text, "dlscratch median") and "tuned numpy" in text
    assert _line(text, LOWER_BOUND).split()[-3:] == ["2.00", "s", "[2.00-2.00]"]


def test_numpy_side_runs_for_seed_run_only_and_alternates(monkeypatch):
    seed_run, convnet = quick(WORKLOADS["seed-run"]), quick(WORKLOADS["convnet-epoch"])
    assert sides_for(seed_run, Options()) == ("dlscratch", "pytorch", "numpy")
    assert sides_for(convnet, Options()) == ("dlscratch", "pytorch")
    assert sides_for(seed_run, Options(numpy_reference=False)) == ("dlscratch", "pytorch")
    assert sides_for(seed_run, Options(sides=("dlscratch",))) == ("dlscratch", "numpy")
    order = []

    def fake_worker(side, workload, threads, quick_run):
        order.append(side)
        return _result(1.0), 0.0, 1.0

    monkeypatch.setattr(harness, "run_worker", fake_worker)
    harness.measure(seed_run, 1, Options(repeats=2, wait_idle=0, log=lambda text: None))
    assert order == ["dlscratch", "pytorch", "numpy", "numpy", "pytorch", "dlscratch"]


def test_no_numpy_reference_option(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(cli, "run_bench", lambda names, options: seen.append(options) or [])
    monkeypatch.setattr(cli, "foreign_load", lambda seconds: 0.0)
    cli.main(["seed-run", "--quick", "--no-numpy-reference"])
    cli.main(["seed-run", "--quick", "--no-torch"])
    assert [o.numpy_reference for o in seen] == [False, True] and seen[1].sides == ("dlscratch",)
    capsys.readouterr()


def _two_layer(rng):
    """A small TwoLayerNet (20-8-5, float32), uint8 inputs (64, 20) and labels (64,)."""
    network = TwoLayerNet(20, 8, 5, weight_init_std=0.5, seed=3, dtype=np.float32)
    x = rng.integers(0, 256, (64, 20), dtype=np.uint8)
    return network, x, rng.integers(0, 5, 64)


def test_numpy_step_is_dlscratchs_step(rng):
    network, x, t = _two_layer(rng)
    p = numpy_loop.Params(*(network.params[k] for k in ("W1", "b1", "W2", "b2")))
    buffers = numpy_loop.StepBuffers(16, 20, 8, 5)
    optimizer = SGD(lr=0.1)
    for _ in range(5):
        batch = rng.integers(0, len(x), 16)
        numpy_loop.gather_batch(x, t, batch, buffers)
        loss = numpy_loop.train_step(p, buffers, 0.1)
        x_batch = x[batch].astype(np.float32) * np.float32(1 / 255)
        expected, grads = network.loss_and_gradient(x_batch, t[batch])
        optimizer.update(network.params, grads)
        assert isinstance(loss, float) and loss == pytest.approx(expected, rel=1e-5)
    for key in ("W1", "b1", "W2", "b2"):
        np.testing.assert_allclose(getattr(p, key), network.params[key], rtol=1e-5, atol=1e-6)
        assert getattr(p, key).dtype == np.float32


def test_numpy_accuracy_is_dlscratchs(rng):
    network, _, _ = _two_layer(rng)
    x = rng.integers(0, 256, (2500, 20), dtype=np.uint8)  # two whole chunks and a half
    t = rng.integers(0, 5, 2500)
    p = numpy_loop.Params(*(network.params[k] for k in ("W1", "b1", "W2", "b2")))
    buffers = numpy_loop.EvalBuffers(numpy_loop.EVAL_CHUNK, 20, 8, 5)
    expected = network.accuracy(x.astype(np.float32) * np.float32(1 / 255), t)
    assert numpy_loop.accuracy(p, x, t, buffers) == expected


def test_lower_bound_extrapolates_to_the_workload(rng):
    workload = quick(WORKLOADS["seed-run"])  # 300 iterations, 1000 samples of each split
    x_train = rng.integers(0, 256, (3000, 784), dtype=np.uint8)
    x_test = rng.integers(0, 256, (1500, 784), dtype=np.uint8)
    W1 = rng.standard_normal((784, 50), dtype=np.float32)
    bound = numpy_loop.lower_bound(workload, W1, x_train, x_test, steps=3)
    evaluations = len(evaluation_iterations(workload, len(x_train)))
    assert bound["evaluations"] == evaluations and bound["steps_timed"] == 3
    assert bound["whole_s"] == pytest.approx(300 * bound["step_s"] + evaluations * bound["eval_s"])


def _quick_bench(tmp_path: Path, workload: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Run ``python -m bench WORKLOAD --quick`` at one thread: (the process, its one summary)."""
    try:
        load_fashion_mnist(download=False)
    except DatasetNotFoundError:
        require_or_skip("Fashion-MNIST", "DLSCRATCH_REQUIRE_DATA")
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "bench", workload, "--quick", "--threads", "1"]
    command += ["--wait-idle", "0", "--retry-busy", "0", "--json", str(out)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "time per training step" in done.stdout and "numpy GEMM peak" in done.stdout
    (summary,) = json.loads(out.read_text())
    return done, summary


@pytest.mark.slow
def test_the_quick_command_runs_every_side_end_to_end(tmp_path):
    done, summary = _quick_bench(tmp_path, "seed-run")
    sides = summary["raw"].keys()
    assert "numpy" in sides  # the hand-tuned NumPy reference runs by default for seed-run
    for side in sides:
        (run,) = summary["raw"][side]
        assert run["whole_s"] > 0 and 0 <= run["test_acc"] <= 1 and run["memory"]["peak_mib"] is not None
    accuracy = summary["rows"]["final test accuracy"]
    # same initial weights, same batches: every side ends up alike
    assert abs(accuracy["numpy"][0] - accuracy["dlscratch"][0]) <= 0.5
    assert "tuned numpy median" in done.stdout and LOWER_BOUND in done.stdout
    assert summary["raw"]["numpy"][0]["lower_bound"]["whole_s"] > 0
    assert summary["rows"][LOWER_BOUND]["numpy"][0] > 0
    if "pytorch" in sides:
        assert abs(accuracy["dlscratch"][0] - accuracy["pytorch"][0]) <= 0.5
        assert "target whole run" in done.stdout
        assert summary["rows"]["whole run"]["numpy_ratio"] > 0
        assert "value" in summary["targets"][0]["reference"]
    else:
        assert "PyTorch is not installed" in done.stderr


@pytest.mark.slow
def test_the_quick_deep_convnet_runs_end_to_end_and_is_not_judged(tmp_path):
    done, summary = _quick_bench(tmp_path, "deep-convnet")
    assert summary["report_only"] and summary["targets"] == []
    assert "report only" in done.stdout and "target whole run" not in done.stdout
    assert "numpy" not in summary["raw"]
    for side, (run,) in summary["raw"].items():
        assert run["whole_s"] > 0 and 0 <= run["test_acc"] <= 1, side
        assert run["eval_samples"] == 200 and run["workload"]["iters"] == 10
