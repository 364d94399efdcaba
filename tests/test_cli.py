"""The dlscratch command end to end on a tiny data set, and its refusals."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from _http import write_fake_mnist

from dlscratch.cli import main


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-mnist")
    write_fake_mnist(folder, n_train=60, n_test=20)
    return folder


def _train(data_dir, out, *extra):
    argv = ["train", "--data-dir", str(data_dir), "--no-download", "--out", str(out), "--quiet", *extra]
    return main(["train", *argv[1:]])


def test_train_writes_model_metrics_history_and_curves(data_dir, tmp_path):
    out = tmp_path / "run"
    assert _train(data_dir, out, "--iters", "12", "--batch-size", "10", "--hidden-size", "7") == 0
    names = {p.name for p in out.iterdir()}
    assert {"model.npz", "metrics.csv", "history.json", "curves.png"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(r["iteration"]) for r in rows] == [
        0,
        6,
        12,
    ]  # 60 samples / batch 10: an epoch is 6 iterations
    record = json.loads((out / "history.json").read_text())
    assert len(record["history"]["train_loss"]) == 12
    assert record["settings"]["hidden_size"] == 7
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    import dlscratch.serialize

    network = dlscratch.serialize.load(out / "model.npz")
    assert network.params["W1"].shape == (784, 7) and network.params["W1"].dtype == np.float32


def test_seeded_runs_are_identical(data_dir, tmp_path):
    for name in ("a", "b"):
        assert _train(data_dir, tmp_path / name, "--iters", "5", "--batch-size", "10", "--seed", "3") == 0
    first = json.loads((tmp_path / "a" / "history.json").read_text())["history"]["train_loss"]
    second = json.loads((tmp_path / "b" / "history.json").read_text())["history"]["train_loss"]
    assert first == second


def test_progress_lines_per_epoch(data_dir, tmp_path, capsys):
    argv = [
        "train",
        "--data-dir",
        str(data_dir),
        "--no-download",
        "--out",
        str(tmp_path),
        "--iters",
        "12",
        "--batch-size",
        "10",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("epoch ") == 3 and "final test accuracy" in out


def test_gradcheck_prints_the_table(data_dir, capsys):
    assert main(["gradcheck", "--data-dir", str(data_dir), "--no-download"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:5]] == ["W1", "b1", "W2", "b2"]
    assert lines[-1].startswith("ok:")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--lr", "-1"], "--lr"),
        (["train", "--iters", "0"], "--iters"),
        (["train", "--batch-size", "ten"], "--batch-size"),
        (["train", "--dataset", "cifar"], "--dataset"),
        (["train", "--iters", "5", "--epochs", "2"], "not allowed with"),
        (["train", "--model", "convnet", "--batchnorm"], "does not take --batchnorm"),
        (["train", "--weight-decay", "0.1"], "does not take --weight-decay"),
        (["fly"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_options_are_one_line_and_status_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("dlscratch: ") and message in err
    assert err.count("\n") == 1


def test_missing_data_is_one_line_naming_the_files(tmp_path, capsys):
    argv = ["train", "--data-dir", str(tmp_path), "--no-download", "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train-images-idx3-ubyte.gz" in err and str(tmp_path) in err


def test_unwritable_out_is_refused_before_training(data_dir, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert _train(data_dir, blocker / "run", "--iters", "2") == 2
    err = capsys.readouterr().err
    assert err.startswith("dlscratch: cannot write to") and err.count("\n") == 1


def test_malformed_data_is_one_line(tmp_path, capsys):
    write_fake_mnist(tmp_path, n_train=10, n_test=5)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    assert main(["train", "--data-dir", str(tmp_path), "--no-download", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "t10k-labels-idx1-ubyte.gz" in err and err.count("\n") == 1


def test_console_script_runs_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dlscratch.cli", "train", "--lr", "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.startswith("dlscratch: ")
    help_text = subprocess.run(
        [sys.executable, "-m", "dlscratch.cli", "train", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for option in (
        "--dataset",
        "--data-dir",
        "--hidden-size",
        "--iters",
        "--epochs",
        "--batch-size",
        "--lr",
        "--seed",
        "--dtype",
        "--out",
    ):
        assert option in help_text
