"""A training process killed with SIGKILL resumes to exactly the weights of an unbroken run."""

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
