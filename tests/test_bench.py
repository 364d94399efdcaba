"""bench/: the side-by-side benchmark runs, reports and judges (no timing is asserted).

The targets: the seed run against the numpy side (a hand-tuned NumPy loop doing the same
work: its step and accuracy are checked against dlscratch's network), SimpleConvNet's
epoch and DeepConvNet's training step against PyTorch, with the memory and accuracy
targets beside them; the matrix-product floor; the fairness of the comparison (both
sides keep uint8 images, warm up first, and DeepConvNet's dropouts draw the same masks);
the float16 check.
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


def _result(whole: float, acc: float = 0.87, peak: float = 100.0, step: float | None = None) -> dict:
    return {
        "whole_s": whole,
        "step_s": whole / 10000 if step is None else step,
        "eval_s": 0.05,
        "test_acc": acc,
        "memory": {"peak_mib": peak, "data_mib": 53.0, "loop_mib": 1.0},
        "step_gflops": 50.0,
        "eval_gflops": 100.0,
        "numpy_gemm_peak_gflops": 180.0,
        "first_loss_mean": 2.0,
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


def test_the_workloads_and_their_targets():
    deep = WORKLOADS["deep-convnet"]
    assert (deep.iters, deep.batch_size, deep.optimizer, deep.lr) == (200, 100, "adam", 0.001)
    assert (deep.eval_samples, deep.final_eval_samples, deep.eval_batch) == (1000, None, 100)
    assert deep.images and not deep.has_numpy_reference
    assert (deep.target, deep.target_row, deep.versus) == (1.0, "time per training step", "pytorch")
    simple, seed = WORKLOADS["convnet-epoch"], WORKLOADS["seed-run"]
    assert (simple.target, simple.target_row, simple.versus) == (0.6, "whole run", "pytorch")
    assert (seed.target, seed.target_row, seed.versus) == (1.10, "whole run", "numpy")
    assert all(w.warmup > 0 for w in WORKLOADS.values())
    short = quick(deep)
    assert short.iters == 10 and short.eval_samples == short.final_eval_samples == 200 and short.warmup == 2
    assert evaluation_iterations(short, 60000) == [0, 10]


@pytest.mark.parametrize("name", ["seed-run", "convnet-epoch", "deep-convnet"])
def test_torch_model_scores_as_dlscratchs_after_the_weight_copy(name, rng, torch):
    workload = WORKLOADS[name]
    network = loops._build_dlscratch_net(workload)
    model = loops._torch_twin(torch, torch.nn, workload)
    x = rng.random((4, 1, 28, 28) if workload.images else (4, 784), dtype=np.float32)
    expected = network.predict(x, train_flg=False)  # no dropout, as in accuracy()
    with torch.no_grad():
        scores = model.eval()(torch.from_numpy(x)).numpy()
    assert scores.shape == expected.shape == (4, 10)
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    assert model.eval()(torch.from_numpy(x)).dtype == torch.float32


def test_deep_convnets_dropouts_draw_the_same_masks_on_both_sides(rng, torch):
    """Same weights, same masks: one training forward pass gives the same scores."""
    workload = WORKLOADS["deep-convnet"]
    network = loops._build_dlscratch_net(workload)
    model = loops._torch_twin(torch, torch.nn, workload)
    for _ in range(2):  # the second draw too: the generators advance alike
        x = rng.random((4, 1, 28, 28), dtype=np.float32)
        expected = network.predict(x, train_flg=True)
        with torch.no_grad():
            scores = model.train()(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    assert isinstance(loops.torch_model(torch.nn, workload)[-1], torch.nn.Dropout)  # without generators


def test_every_side_stores_uint8_images_and_counts_them_apart():
    _require_data()
    x_train, t_train, x_test, _ = loops._load_data(WORKLOADS["convnet-epoch"])
    assert x_train.dtype == x_test.dtype == np.uint8 and x_train.shape[1:] == (1, 28, 28)
    assert loops._data_mib(x_train, t_train) == pytest.approx((x_train.nbytes + t_train.nbytes) / 2**20)


def _require_data() -> None:
    try:
        load_fashion_mnist(download=False)
    except DatasetNotFoundError:
        require_or_skip("Fashion-MNIST", "DLSCRATCH_REQUIRE_DATA")


def test_weight_copy_refuses_a_model_of_another_shape(torch):
    network = loops._build_dlscratch_net(WORKLOADS["deep-convnet"])
    with pytest.raises(ValueError, match="weighted torch layers"):
        loops._copy_weights(torch, network, loops.torch_model(torch.nn, WORKLOADS["convnet-epoch"]))


def test_medians_ratios_and_verdicts():
    summary = summarize(WORKLOADS["convnet-epoch"], 2, _runs([3.0, 3.2, 2.9], [8.0, 8.4, 8.2]))
    whole = summary["rows"]["whole run"]
    assert whole["dlscratch"] == [3.0, 2.9, 3.2] and whole["pytorch"] == [8.2, 8.0, 8.4]
    assert whole["ratio"] == pytest.approx(3.0 / 8.2)
    assert [t["met"] for t in summary["targets"]] == [True, True, True]
    text = format_summary(summary)
    assert "whole run" in text and "0.37" in text and "MET" in text and "MACHINE BUSY" not in text
    assert _line(text, "target whole run").endswith("dlscratch/pytorch: 0.37 (<= 0.6): MET")
    slow = summarize(WORKLOADS["convnet-epoch"], 2, _runs([5.0], [8.0]))  # 0.62
    assert not slow["targets"][0]["met"] and "NOT MET" in format_summary(slow)


def test_deep_convnets_target_is_the_training_steps_ratio():
    runs = {
        side: [Run(side, _result(whole, step=step), 0.0, whole, False)]
        for side, whole, step in (("dlscratch", 30.0, 0.040), ("pytorch", 20.0, 0.050))
    }
    summary = summarize(WORKLOADS["deep-convnet"], 2, runs)
    target = summary["targets"][0]
    assert target["what"] == "time per training step, dlscratch/pytorch"
    assert target["value"] == pytest.approx(0.8) and target["met"]  # though its whole run is 1.5 times
    assert _line(format_summary(summary), "target time per training step").endswith("0.80 (<= 1.0): MET")


def test_deep_convnets_accuracy_target_is_the_same_first_steps():
    """After 200 steps its accuracy is chaos; its first steps' losses must agree to 1%."""
    runs = _runs([30.0], [20.0])
    runs["pytorch"][0].result["first_loss_mean"] = 2.01  # dlscratch's: 2.0
    summary = summarize(WORKLOADS["deep-convnet"], 2, runs)
    target = summary["targets"][2]
    assert target["what"] == "mean loss of the first 10 steps, dlscratch/pytorch - 1"
    assert target["value"] == pytest.approx(2.0 / 2.01 - 1) and target["met"]
    line = _line(format_summary(summary), "target mean loss")
    assert line.endswith("-0.0050 (within +-0.01): MET")
    assert summary["rows"]["mean loss of the first 10 steps"]["dlscratch"] == [2.0, 2.0, 2.0]
    runs["pytorch"][0].result["first_loss_mean"] = 2.1
    assert not summarize(WORKLOADS["deep-convnet"], 2, runs)["targets"][2]["met"]
    # the other workloads keep the accuracy target
    simple = summarize(WORKLOADS["convnet-epoch"], 2, _runs([3.0], [8.0]))
    assert simple["targets"][2]["what"].startswith("test accuracy")


def test_the_floor_is_the_steps_flops_at_numpys_gemm_peak():
    summary = summarize(WORKLOADS["deep-convnet"], 2, _runs([30.0], [20.0]))
    floor = summary["floor"]
    step_flops = flops(WORKLOADS["deep-convnet"])[0]
    assert floor["ms"] == pytest.approx(step_flops / 180e9 * 1e3)  # 29.1 ms at 180 GFLOP/s
    assert floor["over"]["dlscratch"] == pytest.approx(30.0 / 10000 * 1e3 / floor["ms"])
    line = _line(format_summary(summary), "floor:")
    assert "29.116 ms" in line and "dlscratch 0.10x" in line and "pytorch 0.07x" in line


def test_busy_runs_are_left_out_and_all_busy_is_not_judged():
    summary = summarize(WORKLOADS["convnet-epoch"], 2, _runs([3.0, 9.0], [8.0, 8.0], busy={("dlscratch", 1)}))
    assert summary["rows"]["whole run"]["dlscratch"][0] == 3.0  # the busy 9.0 s run is left out
    assert all(t["judged"] for t in summary["targets"])
    every = {("dlscratch", 0), ("dlscratch", 1)}
    summary = summarize(WORKLOADS["convnet-epoch"], 2, _runs([3.0, 9.0], [8.0, 8.0], busy=every))
    assert not any(t["judged"] for t in summary["targets"])
    assert "MACHINE BUSY" in format_summary(summary) and "not judged" in format_summary(summary)


def test_strict_needs_every_target_judged_and_met(monkeypatch, capsys):
    met = summarize(WORKLOADS["convnet-epoch"], 2, _runs([3.0], [8.0]))
    not_met = summarize(WORKLOADS["convnet-epoch"], 2, _runs([5.0], [8.0]))
    busy = summarize(WORKLOADS["convnet-epoch"], 2, _runs([3.0], [8.0], busy={("dlscratch", 0)}))
    no_torch = summarize(WORKLOADS["convnet-epoch"], 2, {"dlscratch": _runs([3.0], [])["dlscratch"]})
    assert cli.strict_passes([met, met])
    assert not any(cli.strict_passes([met, other]) for other in (not_met, busy, no_torch))
    monkeypatch.setattr(cli, "foreign_load", lambda seconds: 0.0)
    monkeypatch.setattr(cli, "run_bench", lambda names, options: [met])
    cli.main(["--quick", "--strict", "--no-checks"])  # exits 0
    monkeypatch.setattr(cli, "run_bench", lambda names, options: [met, not_met])
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--quick", "--strict", "--no-checks"])
    assert exit_info.value.code == 3
    capsys.readouterr()


def test_by_default_every_workload_at_two_threads_and_one(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(cli, "run_bench", lambda names, options: seen.append((names, options.threads)) or [])
    monkeypatch.setattr(cli, "foreign_load", lambda seconds: 0.0)
    cli.main(["--no-checks"])
    cli.main(["all", "--quick", "--no-checks", "--threads", "2"])
    every = ["seed-run", "convnet-epoch", "deep-convnet"]
    assert seen == [(every, (2, 1)), (every, (2,))]
    assert "eager PyTorch on the CPU" in cli.build_parser().format_help()
    capsys.readouterr()


def test_the_float16_check_runs_after_the_tables(monkeypatch, capsys, tmp_path):
    from bench import checks

    result = checks.float16_evaluation(samples=20, repeats=1)
    assert result["samples"] == 20 and result["ratio"] == pytest.approx(
        result["float16_s"] / result["float64_s"]
    )
    line = checks.format_float16(result, 2)
    assert (
        line.startswith("== check at 2 thread(s): a float64 DeepConvNet evaluating 20 images")
        and "ratio" in line
    )
    monkeypatch.setattr(cli, "foreign_load", lambda seconds: 0.0)
    monkeypatch.setattr(cli, "run_bench", lambda names, options: [])
    monkeypatch.setattr(cli, "run_checks", lambda threads, quick: {**result, "threads": threads})
    cli.main(["--quick", "--threads", "1", "--json", str(tmp_path / "out.json")])
    assert "a float64 DeepConvNet evaluating 20 images" in capsys.readouterr().out
    assert json.loads((tmp_path / "out.json").read_text())["checks"][0]["threads"] == 1


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


def test_the_seed_runs_target_is_its_ratio_to_the_numpy_loop():
    # dlscratch 4.0 s, the numpy loop 3.8 s: 1.05 <= 1.10, whatever pytorch takes
    summary = summarize(WORKLOADS["seed-run"], 2, _runs([4.0], [8.0], np_times=[(3.8, 2.0)]))
    target = summary["targets"][0]
    assert target["what"] == "whole run, dlscratch/tuned numpy"
    assert target["value"] == pytest.approx(4.0 / 3.8) and target["met"] and target["judged"]
    assert summary["rows"]["whole run"]["dlscratch_numpy_ratio"] == pytest.approx(4.0 / 3.8)
    slow = summarize(WORKLOADS["seed-run"], 2, _runs([4.5], [8.0], np_times=[(3.8, 2.0)]))
    assert not slow["targets"][0]["met"]
    assert _line(format_summary(slow), "target whole run").endswith("1.18 (<= 1.1): NOT MET")
    # without the numpy side, or with only busy numpy runs, the target is not met or not judged
    alone = summarize(WORKLOADS["seed-run"], 2, _runs([4.0], [8.0]))
    assert alone["targets"][0]["value"] is None and not alone["targets"][0]["met"]
    busy = summarize(WORKLOADS["seed-run"], 2, _runs([4.0], [8.0], {("numpy", 0)}, [(3.8, 2.0)]))
    assert busy["numpy_only_busy"] and not busy["targets"][0]["judged"]
    assert busy["targets"][1]["judged"] and busy["targets"][2]["judged"]  # memory and accuracy are
    assert "MACHINE BUSY for tuned numpy" in format_summary(busy)


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


def _quick_bench(tmp_path: Path, workload: str, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Run ``python -m bench WORKLOAD --quick`` at one thread: (the process, its output as JSON)."""
    _require_data()
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "bench", workload, "--quick", "--threads", "1", *extra]
    command += ["--wait-idle", "0", "--retry-busy", "0", "--json", str(out)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "time per training step" in done.stdout and "numpy GEMM peak" in done.stdout
    assert "floor: a training step's matrix products" in done.stdout
    return done, json.loads(out.read_text())


@pytest.mark.slow
def test_the_quick_command_runs_every_side_end_to_end(tmp_path):
    done, output = _quick_bench(tmp_path, "seed-run", "--no-checks")
    (summary,) = output["summaries"]
    assert output["checks"] == []
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
        assert "target whole run, dlscratch/tuned numpy" in done.stdout
        assert summary["rows"]["whole run"]["numpy_ratio"] > 0
        assert summary["targets"][0]["value"] == summary["rows"]["whole run"]["dlscratch_numpy_ratio"]
    else:
        assert "PyTorch is not installed" in done.stderr


@pytest.mark.slow
def test_the_quick_deep_convnet_runs_end_to_end_with_the_float16_check(tmp_path):
    done, output = _quick_bench(tmp_path, "deep-convnet")
    (summary,) = output["summaries"]
    assert summary["targets"][0]["what"] == "time per training step, dlscratch/pytorch"
    assert "target time per training step" in done.stdout and "numpy" not in summary["raw"]
    for side, (run,) in summary["raw"].items():
        assert run["whole_s"] > 0 and 0 <= run["test_acc"] <= 1, side
        assert run["eval_samples"] == 200 and run["workload"]["iters"] == 10
        assert run["memory"]["data_mib"] == pytest.approx(
            summary["raw"]["dlscratch"][0]["memory"]["data_mib"]
        )
    if "pytorch" in summary["raw"]:  # the same weights, batches and dropout masks: the same steps
        assert summary["targets"][2]["what"].startswith("mean loss of the first 10 steps")
        assert abs(summary["targets"][2]["value"]) <= 0.01
    (check,) = output["checks"]
    assert check["samples"] == 200 and check["ratio"] > 0
    assert "a float64 DeepConvNet evaluating 200 images" in done.stdout
