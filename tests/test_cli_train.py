"""``dlscratch train`` as a user meets it: honest numbers and settings, runs that stop cleanly
and resume or go further, divergence named, and the training features of the library."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from _http import write_fake_mnist
from test_cli import refused

from dlscratch import DeepConvNet, TwoLayerNet
from dlscratch.augment import augmentation_from_config
from dlscratch.checkpoint import load_checkpoint
from dlscratch.cli import main
from dlscratch.schedules import CosineDecay
from dlscratch.serialize import load, load_metadata, network_arrays
from dlscratch.train import Trainer
from dlscratch.validation import split_validation


@pytest.fixture(scope="module")
def data_dir(tiny_mnist):
    return tiny_mnist


def command(data_dir, out, *options):
    """A quiet train command on the tiny data."""
    return ["train", "--data-dir", str(data_dir), "--no-download", "--out", str(out), "--quiet", *options]


def train(data_dir, out, *options):
    """main() of command(...); returns the exit status."""
    return main(command(data_dir, out, *options))


def record(out):
    return json.loads((out / "history.json").read_text())


def same_weights(a, b):
    ours, theirs = network_arrays(a), network_arrays(b)
    return ours.keys() == theirs.keys() and all(np.array_equal(ours[k], theirs[k]) for k in ours)


# ---------------------------------------------------------------- honest numbers


def test_history_records_the_effective_settings_and_the_data(data_dir, tmp_path):
    assert train(data_dir, tmp_path / "a", "--iters", "12", "--batch-size", "10") == 0
    a = record(tmp_path / "a")
    assert a["settings"] == {
        "command": "train",
        "dataset": "mnist",
        "data_dir": str(data_dir),
        "model": "two-layer",
        "hidden_size": 50,
        "seed": 0,
        "dtype": "float32",
        "optimizer": "sgd",
        "lr": 0.1,
        "lr_schedule": "constant",
        "batch_size": 10,
        "sampling": "replacement",
        "divergence_factor": 4.0,
        "iters": 12,
    }
    assert a["data"]["dataset"] == "mnist" and a["data"]["input_shape"] == [784]
    assert a["data"]["classes"] == list("0123456789") and a["data"]["train_samples"] == 60
    assert (a["status"], a["iterations"], a["epochs"]) == ("finished", 12, 2.0)
    assert train(data_dir, tmp_path / "b", "--epochs", "1", "--batch-size", "10", "--optimizer", "adam") == 0
    b = record(tmp_path / "b")["settings"]
    assert b["lr"] == 0.001 and b["epochs"] == 1.0 and "iters" not in b
    assert load_metadata(tmp_path / "b" / "model.npz")["settings"] == b


def test_each_epochs_loss_is_the_mean_of_its_iterations(data_dir, tmp_path):
    assert train(data_dir, tmp_path, "--iters", "15", "--batch-size", "10") == 0
    losses = record(tmp_path)["history"]["train_loss"]
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [row["iteration"] for row in rows] == ["0", "6", "12", "15"]
    assert rows[0]["train_loss"] == ""
    for row, (start, stop) in zip(rows[1:], [(0, 6), (6, 12), (12, 15)], strict=True):
        assert float(row["train_loss"]) == pytest.approx(np.mean(losses[start:stop]), rel=1e-12)


def test_options_that_apply_to_convnets_are_taken(data_dir, tmp_path):
    assert (
        train(
            data_dir,
            tmp_path,
            "--model",
            "convnet",
            "--hidden-size",
            "7",
            "--iters",
            "2",
            "--batch-size",
            "10",
        )
        == 0
    )
    assert load(tmp_path / "model.npz").params["W2"].shape[1] == 7
    assert record(tmp_path)["settings"]["hidden_size"] == 7


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--hidden-sizes", "256,128"],
            "--model two-layer does not take --hidden-sizes (--hidden-sizes is for mlp)",
        ),
        (["--dropout", "0.2"], "--model two-layer does not take --dropout"),
        (["--model", "mlp", "--hidden-size", "30"], "--model mlp does not take --hidden-size"),
        (["--model", "convnet", "--batchnorm"], "--model convnet does not take --batchnorm"),
        (
            ["--model", "deep-convnet", "--weight-decay", "0.1"],
            "--model deep-convnet does not take --weight-decay",
        ),
        (["--model", "convnet", "--inverted-dropout"], "does not take --inverted-dropout"),
        (["--model", "mlp", "--inverted-dropout"], "--inverted-dropout needs --dropout"),
        (["--early-stopping", "3"], "--early-stopping applies only with --val-split"),
        (["--test-each-epoch"], "--test-each-epoch applies only with --val-split"),
        (["--lr-decay-epochs", "3"], "--lr-decay-epochs applies only with --lr-schedule cosine"),
        (["--lr-gamma", "0.5"], "--lr-gamma applies only with --lr-schedule step"),
        (["--lr-schedule", "step"], "--lr-schedule step needs --lr-step-epochs"),
        (["--augment", "flip"], "--augment flip mirrors images"),
        (["--augment", "shift,rotate"], "argument --augment: expected some of shift, flip"),
        (["--checkpoint-every", "5", "--no-checkpoint"], "not allowed with argument --checkpoint-every"),
        (["--batch-size", "100000"], "--batch-size 100000 is larger than the training set (60 samples)"),
        (
            ["--val-split", "0.5", "--batch-size", "40"],
            "--batch-size 40 is larger than the training set (30 samples)",
        ),
        (["--divergence-factor", "0.5"], "argument --divergence-factor: expected a number > 1, or 0"),
    ],
)
def test_options_that_do_not_apply_are_refused_before_anything_is_written(
    data_dir, tmp_path, capsys, options, message
):
    refused(capsys, command(data_dir, tmp_path / "run", *options), message)
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- run folders


def test_a_run_never_overwrites_another(data_dir, tmp_path, capsys):
    assert train(data_dir, tmp_path, "--iters", "2", "--batch-size", "10") == 0
    before = (tmp_path / "history.json").read_bytes()
    refused(capsys, command(data_dir, tmp_path, "--iters", "3"), "already holds a run", "--resume")
    assert (tmp_path / "history.json").read_bytes() == before


def test_runs_in_the_same_second_get_their_own_folders(data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    options = ["train", "--data-dir", str(data_dir), "--quiet", "--iters", "2", "--batch-size", "10"]
    assert main(options) == 0 and main(options) == 0
    folders = sorted((tmp_path / "runs").iterdir())
    assert len(folders) == 2 and all((folder / "model.npz").exists() for folder in folders)


def test_a_run_that_fails_before_training_leaves_nothing(tmp_path, monkeypatch):
    write_fake_mnist(tmp_path / "bad", n_train=10, n_test=5)
    (tmp_path / "bad" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data-dir", str(tmp_path / "bad"), "--quiet"]) == 2
    assert main(["train", "--data-dir", str(tmp_path / "bad"), "--out", "deep/er/run", "--quiet"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad"]


# ---------------------------------------------------------------- divergence


def test_a_diverging_run_stops_in_one_line_without_numpy_warnings(data_dir, tmp_path, capsys):
    """--lr 1e6 in a process of its own, so that any warning would reach its stderr; --lr 100 here."""
    command = [sys.executable, "-m", "dlscratch", "train", "--data-dir", str(data_dir), "--no-download"]
    command += ["--out", str(tmp_path / "a"), "--quiet", "--lr", "1e6", "--batch-size", "10", "--iters", "60"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert train(data_dir, tmp_path / "b", "--lr", "100", "--batch-size", "10", "--iters", "60") == 1
    for status, err, lr in [(result.returncode, result.stderr, "1e+06"), (1, capsys.readouterr().err, "100")]:
        assert status == 1 and err.count("\n") == 1, err  # no RuntimeWarning, no traceback
        assert err.startswith("dlscratch: training diverged at iteration 20: the mean loss of the last 20")
        assert f"Try a --lr smaller than {lr}." in err
    assert result.stdout == ""
    assert record(tmp_path / "a")["status"] == "diverged" and not (tmp_path / "a" / "model.npz").exists()


def test_the_divergence_check_can_be_turned_off(data_dir, tmp_path):
    assert (
        train(
            data_dir,
            tmp_path,
            "--lr",
            "100",
            "--batch-size",
            "10",
            "--iters",
            "30",
            "--divergence-factor",
            "0",
        )
        == 0
    )


# ---------------------------------------------------------------- stopping, resuming, going further


def interrupt_at(iteration, number=signal.SIGINT):
    """A Trainer.train_step that sends this process a signal once the step `iteration` is done."""
    real = Trainer.train_step

    def step(self):
        loss = real(self)
        if self.current_iter == iteration:
            os.kill(os.getpid(), number)
        return loss

    return step


@pytest.mark.parametrize(("number", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_run_saves_everything_and_says_how_to_resume(
    data_dir, tmp_path, monkeypatch, capsys, number, status
):
    options = ["--iters", "20", "--batch-size", "10", "--optimizer", "adam", "--sampling", "shuffle"]
    assert train(data_dir, tmp_path / "straight", *options) == 0
    monkeypatch.setattr(Trainer, "train_step", interrupt_at(8, number))
    run = tmp_path / "stopped"
    assert train(data_dir, run, *options) == status
    err = capsys.readouterr().err
    assert (
        f"at iteration 8 (epoch 1.333); checkpoint, metrics.csv, history.json and curves.png are in {run}"
        in err
    )
    assert err.rstrip().splitlines()[-1] == f"dlscratch: resume with: dlscratch train --resume {run}"
    assert {p.name for p in run.iterdir()} >= {"checkpoint.npz", "metrics.csv", "history.json", "curves.png"}
    assert not (run / "model.npz").exists() and record(run)["status"] == "interrupted"
    assert load_checkpoint(run / "checkpoint.npz")["trainer"]["current_iter"] == 8
    monkeypatch.undo()
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert same_weights(load(run / "model.npz"), load(tmp_path / "straight" / "model.npz"))
    assert record(run)["history"]["train_loss"] == record(tmp_path / "straight")["history"]["train_loss"]


def test_a_stop_without_checkpoints_saves_the_rest(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(Trainer, "train_step", interrupt_at(3))
    assert train(data_dir, tmp_path, "--iters", "20", "--batch-size", "10", "--no-checkpoint") == 130
    assert "metrics.csv, history.json and curves.png are in" in capsys.readouterr().err
    assert not (tmp_path / "checkpoint.npz").exists() and (tmp_path / "history.json").exists()


def test_a_finished_run_says_so_and_is_left_alone(data_dir, tmp_path, capsys):
    assert train(data_dir, tmp_path, "--iters", "12", "--batch-size", "10") == 0
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert main(["train", "--resume", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"dlscratch: {tmp_path} finished at iteration 12 (epoch 2): nothing to resume")
    assert f"dlscratch train --resume {tmp_path} --epochs N (or --iters N)" in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files


@pytest.mark.parametrize("longer", [["--iters", "18"], ["--epochs", "3"]])
def test_a_finished_run_goes_further_as_if_it_had_been_that_long(data_dir, tmp_path, longer):
    options = ["--batch-size", "10", "--optimizer", "momentum", "--sampling", "shuffle"]
    assert train(data_dir, tmp_path / "long", "--iters", "18", *options) == 0
    assert train(data_dir, tmp_path / "run", "--iters", "12", *options) == 0
    assert main(["train", "--resume", str(tmp_path / "run"), "--quiet", *longer]) == 0
    assert same_weights(load(tmp_path / "run" / "model.npz"), load(tmp_path / "long" / "model.npz"))
    assert len(record(tmp_path / "run")["history"]["train_loss"]) == 18
    assert record(tmp_path / "run")["settings"]["iters" if "--iters" in longer else "epochs"] in (18, 3.0)


def test_going_further_is_refused_when_it_cannot_be_done(data_dir, tmp_path, capsys):
    assert train(data_dir, tmp_path / "a", "--iters", "12", "--batch-size", "10") == 0
    refused(capsys, ["train", "--resume", str(tmp_path / "a"), "--iters", "12"], "is at iteration 12 of 12")
    refused(capsys, ["train", "--resume", str(tmp_path / "a"), "--lr", "0.5"], "drop --lr")
    cosine = ["--iters", "12", "--batch-size", "10", "--lr-schedule", "cosine"]
    assert train(data_dir, tmp_path / "b", *cosine) == 0
    refused(
        capsys,
        ["train", "--resume", str(tmp_path / "b"), "--iters", "20"],
        "learning-rate schedule reached 0",
    )
    stopping = [
        "--epochs",
        "40",
        "--batch-size",
        "10",
        "--val-split",
        "0.2",
        "--early-stopping",
        "1",
        "--lr",
        "0.01",
    ]
    assert train(data_dir, tmp_path / "c", *stopping) == 0
    assert record(tmp_path / "c")["status"] == "stopped early"
    refused(
        capsys,
        ["train", "--resume", str(tmp_path / "c"), "--epochs", "50"],
        "stopped early: training it",
    )


# ---------------------------------------------------------------- the training features


def test_validation_early_stopping_schedule_and_augmentation_train_as_the_library_does(data_dir, tmp_path):
    """The command and the Trainer built by hand with the same settings end bit for bit alike."""
    options = [
        "--val-split",
        "0.2",
        "--early-stopping",
        "2",
        "--lr-schedule",
        "step",
        "--lr-step-epochs",
        "1",
    ]
    options += [
        "--lr-gamma",
        "0.5",
        "--augment",
        "shift",
        "--optimizer",
        "adam",
        "--epochs",
        "5",
        "--batch-size",
        "8",
    ]
    options += [
        "--sampling",
        "shuffle",
        "--seed",
        "3",
        "--model",
        "mlp",
        "--hidden-sizes",
        "12",
        "--dropout",
        "0.1",
    ]
    assert train(data_dir, tmp_path, *options) == 0
    saved = record(tmp_path)
    assert (
        len(saved["history"]["val_acc"]) == len(saved["history"]["train_acc"])
        and saved["history"]["test_acc"] == []
    )
    # one of the six samples of each class held out
    assert saved["data"]["validation_samples"] == 10 and saved["data"]["train_samples"] == 50

    from dlscratch import MultiLayerNetExtend
    from dlscratch.datasets import load_mnist
    from dlscratch.schedules import StepDecay

    (x, t), (x_test, t_test) = load_mnist(normalize=False, data_dir=data_dir, download=False)
    x, t, x_val, t_val = split_validation(x, t, 0.2, seed=3)
    network = MultiLayerNetExtend(784, [12], 10, weight_init_std="he", use_dropout=True, dropout_ratio=0.1,
                                  seed=3, dtype=np.float32)  # fmt: skip
    shift = {"name": "RandomShift", "max_shift": 2, "image_shape": [1, 28, 28]}
    augment = augmentation_from_config({"name": "Compose", "augmentations": [shift]}, seed=3)
    trainer = Trainer(network, x, t, x_test, t_test, epochs=5, mini_batch_size=8, optimizer="adam",
                      optimizer_param={"lr": 0.001}, verbose=False, sampling="shuffle", seed=3,
                      input_scale=1 / 255, validation=(x_val, t_val), early_stopping=2,
                      lr_schedule=StepDecay(1, 0.5), augment=augment)  # fmt: skip
    trainer.train()
    assert same_weights(load(tmp_path / "model.npz"), network)
    assert saved["history"]["train_loss"] == trainer.history.train_loss
    assert saved["status"] == ("stopped early" if trainer.stopped_early else "finished")
    assert saved["final_test_acc"] == trainer.final_test_acc


def test_the_deep_convnet_command_for_093_trains_what_its_options_say(data_dir, tmp_path):
    """The command README recommends for Fashion-MNIST, three steps on the tiny data, against the
    same run built in Python: DeepConvNet with batch norm and inverted dropout 0.3, float32,
    Adam 0.002 decayed by a cosine over 20 epochs, shuffled batches of 100, shifts and flips."""
    write_fake_mnist(tmp_path / "data", n_train=300, n_test=20)
    options = ["--dataset", "fashion-mnist", "--model", "deep-convnet", "--batchnorm", "--dropout", "0.3"]
    options += ["--inverted-dropout", "--optimizer", "adam", "--lr", "0.002", "--lr-schedule", "cosine"]
    options += ["--lr-decay-epochs", "20", "--augment", "shift,flip", "--sampling", "shuffle", "--iters", "3"]
    assert train(tmp_path / "data", tmp_path / "run", *options, "--eval-samples", "20") == 0

    from dlscratch.datasets import load_fashion_mnist

    (x, t), (x_test, t_test) = load_fashion_mnist(normalize=False, flatten=False, data_dir=tmp_path / "data")
    network = DeepConvNet((1, 28, 28), use_batchnorm=True, dropout_ratio=0.3, inverted_dropout=True, seed=0,
                          dtype=np.float32)  # fmt: skip
    parts = [{"name": "RandomShift", "max_shift": 2}, {"name": "RandomFlip", "p": 0.5}]
    augment = augmentation_from_config({"name": "Compose", "augmentations": parts}, seed=0)
    trainer = Trainer(network, x, t, x_test, t_test, iters=3, mini_batch_size=100, optimizer="adam",
                      optimizer_param={"lr": 0.002}, verbose=False, sampling="shuffle", seed=0,
                      evaluate_sample_num_per_epoch=20, input_scale=1 / 255, lr_schedule=CosineDecay(20),
                      augment=augment)  # fmt: skip
    trainer.train()
    assert same_weights(load(tmp_path / "run" / "model.npz"), network)
    assert record(tmp_path / "run")["settings"]["lr_decay_epochs"] == 20


def test_cosine_decays_over_the_whole_run_by_default(data_dir, tmp_path):
    assert train(data_dir, tmp_path, "--epochs", "2.5", "--batch-size", "10", "--lr-schedule", "cosine") == 0
    assert record(tmp_path)["settings"]["lr_decay_epochs"] == 2.5
    assert load_checkpoint(tmp_path / "checkpoint.npz")["trainer"]["lr_schedule"] == CosineDecay(2.5)
    assert isinstance(load(tmp_path / "model.npz"), TwoLayerNet)
