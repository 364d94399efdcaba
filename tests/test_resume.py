"""Runs stopped from outside (SIGKILL, Ctrl-C) resume to exactly the weights of an unbroken run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from _http import write_fake_mnist

from dlscratch.checkpoint import load_checkpoint
from dlscratch.serialize import load

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

ITERS = 300


def _train(data_dir, *options):
    command = [sys.executable, "-m", "dlscratch.cli", "train", "--quiet", *options]
    if "--resume" not in options:
        command += ["--data-dir", str(data_dir), "--no-download", "--iters", str(ITERS), "--batch-size", "10"]
        command += ["--optimizer", "adam", "--sampling", "shuffle", "--seed", "5", "--checkpoint-every", "1"]
    return command


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    write_fake_mnist(folder, n_train=50, n_test=10)
    return folder


def test_killed_run_resumes_bit_identical_and_no_checkpoint_is_ever_torn(data_dir, tmp_path):
    subprocess.run(_train(data_dir, "--out", str(tmp_path / "straight")), check=True)

    run = tmp_path / "killed"
    checkpoint = run / "checkpoint.npz"
    victim = subprocess.Popen(_train(data_dir, "--out", str(run)))
    reads, deadline = 0, time.monotonic() + 120
    while time.monotonic() < deadline and victim.poll() is None:
        if checkpoint.exists():
            # every checkpoint visible at any moment is whole: this read must never fail
            reached = load_checkpoint(checkpoint)["trainer"]["current_iter"]
            reads += 1
            if reached >= ITERS // 3:
                break
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    stopped_at = load_checkpoint(checkpoint)["trainer"]["current_iter"]
    assert 0 < stopped_at < ITERS and reads > 0
    assert not (run / "model.npz").exists()

    subprocess.run(_train(data_dir, "--resume", str(run)), check=True)

    straight, resumed = load(tmp_path / "straight" / "model.npz"), load(run / "model.npz")
    for key, value in straight.params.items():
        assert np.array_equal(value, resumed.params[key]), key
    assert load_checkpoint(checkpoint)["trainer"]["current_iter"] == ITERS
    assert not list(run.glob(".*.tmp"))


def test_resume_without_a_checkpoint_is_refused(tmp_path, capsys):
    from dlscratch.cli import main

    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "no checkpoint to resume" in capsys.readouterr().err


def test_ctrl_c_saves_the_run_and_the_printed_command_finishes_it_bit_identical(tmp_path):
    """A real Ctrl-C (SIGINT to the process) after the first epoch: the folder holds the
    checkpoint, metrics, history and curves; the command printed resumes to the very weights
    of an unbroken run."""
    write_fake_mnist(tmp_path / "data", n_train=1000, n_test=10)  # 100 steps an epoch
    settings = [
        "--data-dir",
        str(tmp_path / "data"),
        "--no-download",
        "--iters",
        "1000",
        "--batch-size",
        "10",
    ]
    settings += ["--optimizer", "adam", "--sampling", "shuffle", "--seed", "2", "--eval-samples", "5"]
    command = [sys.executable, "-m", "dlscratch", "train", "--quiet", *settings]
    subprocess.run([*command, "--out", str(tmp_path / "straight")], check=True)

    run = tmp_path / "stopped"
    victim = subprocess.Popen([*command, "--out", str(run)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "checkpoint.npz").exists() and time.monotonic() < deadline and victim.poll() is None:
        time.sleep(0.01)
    victim.send_signal(signal.SIGINT)
    _, err = victim.communicate(timeout=120)
    assert victim.returncode == 130, err
    assert {"checkpoint.npz", "metrics.csv", "history.json", "curves.png"} <= {p.name for p in run.iterdir()}
    assert not (run / "model.npz").exists()
    stopped_at = load_checkpoint(run / "checkpoint.npz")["trainer"]["current_iter"]
    assert 100 <= stopped_at < 1000
    resume = err.rstrip().splitlines()[-1]
    assert resume == f"dlscratch: resume with: dlscratch train --resume {run}"

    subprocess.run(
        [sys.executable, "-m", "dlscratch", *resume.split("dlscratch ")[-1].split(), "--quiet"], check=True
    )
    straight, resumed = load(tmp_path / "straight" / "model.npz"), load(run / "model.npz")
    for key, value in straight.params.items():
        assert np.array_equal(value, resumed.params[key]), key
