"""The dlscratch command end to end on a tiny data set, and its refusals."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _http import unreachable_url, write_fake_mnist
from test_serialize import model_parts, raw_archive, set_in

import dlscratch
from dlscratch import cli, footprint
from dlscratch.checkpoint import load_checkpoint
from dlscratch.cli import main
from dlscratch.datasets import DATASETS
from dlscratch.files import lock_folder
from dlscratch.layers import Affine, Convolution, Relu
from dlscratch.nets import Sequential
from dlscratch.serialize import save
from dlscratch.train import Trainer


@pytest.fixture(scope="module")
def data_dir(tiny_mnist):
    return tiny_mnist


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


def test_version_and_python_m_dlscratch(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"dlscratch {dlscratch.__version__}\n"
    result = subprocess.run(
        [sys.executable, "-m", "dlscratch", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stdout == f"dlscratch {dlscratch.__version__}\n"
    result = subprocess.run(
        [sys.executable, "-m", "dlscratch", "train", "--lr", "x"], capture_output=True, text=True
    )
    assert result.returncode == 2 and result.stderr.startswith("dlscratch: argument --lr")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--lr", "abc"], "argument --lr: expected a positive number, got 'abc'"),
        (["train", "--iters", "-3"], "argument --iters: expected a positive integer, got '-3'"),
        (["train", "--seed", "x"], "argument --seed: expected an integer >= 0, got 'x'"),
        (["train", "--epochs", "nan"], "argument --epochs: expected a positive number, got 'nan'"),
        (["train", "--val-split", "1"], "argument --val-split: expected a fraction between 0 and 1"),
        (["train", "--dropout", "1"], "argument --dropout: expected a ratio in [0, 1), got '1'"),
        (["train", "--hidden-sizes", "256,x"], "argument --hidden-sizes: expected comma-separated sizes"),
        (["evaluate", "m.npz", "--confusion"], "argument --confusion: expected one argument"),
    ],
)
def test_option_errors_name_the_option_and_the_value(capsys, argv, message):
    refused(capsys, argv, message)


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [
        (
            ["train", "--batchsize", "10"],
            "unrecognized arguments: --batchsize 10 (did you mean --batch-size?)",
        ),
        (["train", "--lr-shedule", "cosine"], "(did you mean --lr-schedule?)"),
        (["evaluate", "m.npz", "--data-set", "mnist"], "(did you mean --dataset?)"),
        (
            ["train", "--model", "deepconvnet"],
            "invalid choice: 'deepconvnet' (choose from 'two-layer', 'mlp', ",
        ),
        (["train", "--model", "deepconvnet"], "; did you mean 'deep-convnet'?"),
        (["train", "--optimizer", "adma"], "; did you mean 'adam'?"),
        (["trian"], "did you mean 'train'?"),
    ],
)
def test_a_mistyped_option_or_choice_gets_the_closest_one(capsys, argv, suggestion):
    err = refused(capsys, argv, suggestion)
    command = argv[0] if argv[0] != "trian" else None
    assert err.rstrip().endswith(
        f"(see 'dlscratch {command} --help')" if command else "(see 'dlscratch --help')"
    )


def test_missing_data_is_a_short_line_then_the_ways_out(tmp_path, capsys):
    argv = ["train", "--data-dir", str(tmp_path), "--no-download", "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    first, *details = capsys.readouterr().err.splitlines()
    assert first == "dlscratch: MNIST is not on this machine, and --no-download forbids fetching it."
    text = "\n".join(details)
    assert (
        f"looked in: {tmp_path}" in text
        and "--data-dir FOLDER" in text
        and "train-images-idx3-ubyte.gz" in text
    )
    assert "data_dir=" not in text and "download=False" not in text  # the command line's words, not Python's
    assert not (tmp_path / "run").exists()


def test_offline_the_message_names_the_installed_data_set(tmp_path, capsys, monkeypatch):
    """No network (a mirror that refuses connections) and Fashion-MNIST in the user's data folder."""
    write_fake_mnist(tmp_path / "data" / "fashion-mnist", n_train=20, n_test=10)
    monkeypatch.setenv("DLSCRATCH_DATA_DIR", str(tmp_path / "data"))
    mirror = unreachable_url()
    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(DATASETS["mnist"], mirrors=(mirror,)))
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--quiet"]) == 2
    first, *details = capsys.readouterr().err.splitlines()
    assert first == "dlscratch: MNIST is not on this machine, and downloading it failed (no network?)."
    assert "  Fashion-MNIST is installed here: use --dataset fashion-mnist" in details
    assert any(mirror in line for line in details)  # why the download failed comes last
    assert not (tmp_path / "runs").exists()  # a run that fails before training leaves nothing
    assert main(["train", "--quiet", "--dataset", "fashion-mnist", "--iters", "2", "--batch-size", "5"]) == 0


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


# ---------------------------------------------------------------- every anticipated failure is one line


def refused(capsys, argv, *messages):
    """main(argv) ends with status 2 and one 'dlscratch:' line holding every message."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("dlscratch: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for message in messages:
        assert message in err, err
    return err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--epochs", "1e308", "--batch-size", "10"], "more than 2**63 iterations"),
        (["--hidden-size", "1000000000"], "weights would take more than 1/5 of the"),
        (["--model", "mlp", "--hidden-sizes", "1000000000,10"], "weights would take more than 1/5 of the"),
        (["--batch-size", "1000000000000"], "larger than the training set (60 samples)"),
        (["--batch-size", "61", "--sampling", "shuffle"], "larger than the training set (60 samples)"),
        (["--seed", "-1"], "argument --seed: expected an integer >= 0, got '-1'"),
        (["--weight-decay", "inf", "--model", "mlp"], "--weight-decay"),
    ],
    ids=["epochs", "hidden size", "hidden sizes", "batch size", "batch over data", "seed", "weight decay"],
)
def test_absurd_values_are_one_line(data_dir, tmp_path, capsys, options, message):
    argv = ["train", "--data-dir", str(data_dir), "--no-download", "--out", str(tmp_path / "run"), "--quiet"]
    refused(capsys, [*argv, *options], message)


def test_a_batch_too_big_for_memory_is_refused_before_training(data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(footprint, "available_memory", lambda: 50 * 2**20)  # a machine with 50 MiB free
    argv = ["train", "--data-dir", str(data_dir), "--no-download", "--out", str(tmp_path / "run"), "--quiet"]
    refused(
        capsys, [*argv, "--model", "deep-convnet", "--batch-size", "60"], "a batch of 60 samples needs about"
    )


def test_a_bug_is_shown_as_a_bug(data_dir, tmp_path, capsys, monkeypatch):
    """A ValueError from inside dlscratch is no user error: traceback, request for a report, 70."""

    def broken(self):
        raise ValueError("an internal inconsistency")

    monkeypatch.setattr(Trainer, "train", broken)
    assert _train(data_dir, tmp_path / "run", "--iters", "2", "--batch-size", "10") == cli.BUG_STATUS
    err = capsys.readouterr().err
    assert "Traceback" in err and "ValueError: an internal inconsistency" in err
    assert err.rstrip().splitlines()[-1].startswith("dlscratch: internal error: this is a bug in dlscratch")


def test_an_overflowing_step_is_one_line_and_leaves_no_bad_checkpoint(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "--lr",
        "1e39",
        "--dtype",
        "float32",
        "--checkpoint-every",
        "1",
        "--iters",
        "5",
        "--batch-size",
        "10",
    ]
    assert _train(data_dir, out, *argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NaN or infinite" in err and "the weights are from the step before" in err
    if (out / "checkpoint.npz").exists():  # whatever checkpoint there is holds finite weights
        assert all(
            np.isfinite(a).all() for a in load_checkpoint(out / "checkpoint.npz")["network"].params.values()
        )
    assert not (out / "model.npz").exists()


# ---------------------------------------------------------------- evaluate: odd models


def evaluate(data_dir, model):
    return ["evaluate", str(model), "--data-dir", str(data_dir), "--no-download"]


def test_evaluate_a_network_without_parameters(data_dir, tmp_path, capsys):
    """It runs (no StopIteration), and its 784 scores for 10 classes are refused in one line."""
    model = save(Sequential([Relu()]), tmp_path / "model.npz")
    message = "the model gives scores of shape (784,) per sample, but mnist has 10"
    refused(capsys, evaluate(data_dir, model), message)


@pytest.mark.parametrize(
    ("network", "edit", "message"),
    [
        (Sequential([Relu()]), {"type": "Layer"}, "unknown layer type 'Layer'"),
        (Sequential([Relu()]), {"last_layer": "Relu"}, "the last layer must be a loss layer"),
        (
            Sequential([Affine(np.ones((10, 3)), np.zeros(3))]),
            {},
            "the model does not fit the data: layer Affine1 expects 10 input features",
        ),
        (
            Sequential([Convolution(np.ones((30, 1, 5, 5)), np.zeros(30), pad=10_000), Relu()]),
            {},
            "evaluating a batch of 20 samples needs about",
        ),
    ],
    ids=["base layer", "relu last", "wrong features", "pad 10000"],
)
def test_evaluate_refuses_odd_models_in_one_line(data_dir, tmp_path, capsys, network, edit, message):
    good = save(network, tmp_path / "good.npz")
    meta, arrays = model_parts(good)
    if "type" in edit:
        meta["network"]["config"]["layers"][0]["type"] = edit["type"]
    if "last_layer" in edit:
        meta["network"]["config"]["last_layer"] = edit["last_layer"]
    refused(capsys, evaluate(data_dir, raw_archive(tmp_path / "model.npz", meta, arrays)), message)


def test_evaluate_refuses_a_fifo_without_waiting(data_dir, tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("FIFOs are POSIX")
    os.mkfifo(tmp_path / "model.npz")
    command = [sys.executable, "-m", "dlscratch.cli", *evaluate(data_dir, tmp_path / "model.npz")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "is not a regular file" in result.stderr
    assert result.stderr.count("\n") == 1


# ---------------------------------------------------------------- run folders


def test_a_second_process_on_one_run_folder_is_refused(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    with lock_folder(out):  # as another process training into it would
        refused(
            capsys,
            ["train", "--data-dir", str(data_dir), "--no-download", "--out", str(out)],
            "in use by another dlscratch process",
        )
        assert list(out.iterdir()) == [out / ".dlscratch.lock"]
    assert _train(data_dir, out, "--iters", "2", "--batch-size", "10") == 0  # free again


def test_temporaries_of_a_killed_run_are_removed(data_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    stale = [out / ".curves.png.x1y2.tmp", out / ".checkpoint.npz.abc.tmp", out / ".model.npz.q.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    unrelated = out / "notes.tmp"
    unrelated.write_text("mine")
    assert _train(data_dir, out, "--iters", "2", "--batch-size", "10") == 0
    assert not any(path.exists() for path in stale)
    assert unrelated.read_text() == "mine"


# ---------------------------------------------------------------- resuming an edited run


@pytest.fixture(scope="module")
def original_run(data_dir, tmp_path_factory):
    """A finished 4-iteration mlp run with a checkpoint, trained once for every test here."""
    original = tmp_path_factory.mktemp("checkpointed") / "run"
    options = [
        "--iters",
        "4",
        "--batch-size",
        "10",
        "--checkpoint-every",
        "2",
        "--model",
        "mlp",
        "--hidden-sizes",
        "8",
    ]
    options += ["--optimizer", "adam", "--sampling", "shuffle", "--seed", "5"]
    assert _train(data_dir, original, *options) == 0
    return original


@pytest.fixture
def checkpointed_run(original_run, tmp_path):
    """A function making a copy of the original run with its checkpoint edited."""

    def edited(edit) -> Path:
        run = tmp_path / f"copy{len(list(tmp_path.iterdir()))}"
        shutil.copytree(original_run, run)
        meta, arrays = model_parts(run / "checkpoint.npz")
        edit(meta, arrays)
        raw_archive(run / "checkpoint.npz", meta, arrays)
        return run

    return edited


def settings_edit(key, value=None, remove=False):
    def edit(meta, arrays):
        settings = meta["extra"]["settings"]
        if remove:
            del settings[key]
        else:
            settings[key] = value

    return edit


def record_edit(*keys, value):
    return lambda meta, arrays: set_in(meta, keys, value)


EXTEND = ["--iters", "6"]  # the original run is finished: each resume trains it further

RESUME_EDITS = {
    "extra null": (record_edit("extra", value=None), "holds no settings of a 'dlscratch train' run"),
    "no settings": (record_edit("extra", value={}), "holds no settings of a 'dlscratch train' run"),
    "model removed": (
        settings_edit("model", remove=True),
        "--model two-layer does not take --hidden-sizes",
    ),
    "dataset cifar": (settings_edit("dataset", "cifar"), "argument --dataset: invalid choice: 'cifar'"),
    "eval samples 0": (settings_edit("eval_samples", 0), "--eval-samples: expected a positive integer"),
    "unknown setting": (settings_edit("colour", "red"), "unknown setting 'colour'"),
    "hidden sizes as text": (
        settings_edit("hidden_sizes", ["8"]),
        "the setting 'hidden_sizes' cannot be ['8']",
    ),
    "flag as text": (settings_edit("batchnorm", "yes"), "'batchnorm' must be true or false"),
    "lr edited": (settings_edit("lr", 0.5), "the optimizer's lr is 0.001 in the saved state, 0.5 here"),
    "history shorter": (
        record_edit("trainer", "history", "train_loss", value=[0.5]),
        "the history records 1 losses but the run is at iteration 4",
    ),
    "current_iter moved back": (
        record_edit("trainer", "current_iter", value=2),
        "the history records 4 losses but the run is at iteration 2",
    ),
    "current_iter past the end": (
        record_edit("trainer", "current_iter", value=99),
        "'current_iter' between 0 and 4",
    ),
    "sampler edited": (
        record_edit("trainer", "sampler", "state", "inc", value=3),
        "the batch sampler is not where seed 5 puts it",
    ),
}


@pytest.mark.parametrize("edit", RESUME_EDITS.values(), ids=RESUME_EDITS)
def test_an_edited_checkpoint_is_refused_in_one_line(checkpointed_run, capsys, edit):
    change, message = edit
    refused(capsys, ["train", "--resume", str(checkpointed_run(change)), *EXTEND], message)


def test_resuming_on_other_data_is_refused(checkpointed_run, tmp_path, capsys):
    other = tmp_path / "other-data"
    write_fake_mnist(other, n_train=60, n_test=20, seed=1)  # same shapes, other pixels
    run = checkpointed_run(settings_edit("data_dir", str(other)))
    refused(capsys, ["train", "--resume", str(run), *EXTEND], "the training and test data (fingerprint) is")


def test_resuming_never_downloads_or_creates_folders(checkpointed_run, tmp_path, capsys):
    nowhere = tmp_path / "nowhere" / "deep"
    run = checkpointed_run(settings_edit("data_dir", str(nowhere)))
    assert main(["train", "--resume", str(run), *EXTEND]) == 2
    first = capsys.readouterr().err.splitlines()[0]
    assert (
        first
        == "dlscratch: MNIST is not on this machine, and a resume never downloads (the run had its data)."
    )
    assert not (tmp_path / "nowhere").exists()


def test_resuming_under_another_numpy_warns_and_another_thread_count_does_not(checkpointed_run, capsys):
    run = checkpointed_run(record_edit("trainer", "numpy", value="1.0.0"))
    assert main(["train", "--resume", str(run), "--quiet", *EXTEND]) == 0
    err = capsys.readouterr().err
    assert err.startswith("dlscratch: warning: the saved run used NumPy 1.0.0, here ")
    run = checkpointed_run(record_edit("trainer", "threads", value=64))
    assert main(["train", "--resume", str(run), "--quiet", *EXTEND]) == 0
    assert capsys.readouterr().err == ""


def test_the_unedited_copy_resumes(checkpointed_run, capsys):
    """The edits above start from a run that resumes, so each refusal is the edit's."""
    run = checkpointed_run(lambda meta, arrays: None)
    assert main(["train", "--resume", str(run), "--quiet", *EXTEND]) == 0
    assert capsys.readouterr().err == ""
