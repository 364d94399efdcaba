"""Run folders: unique names, refused when taken, removed when a run fails before it starts;
the metrics a run leaves; Ctrl-C and SIGTERM asking the trainer to stop."""

from __future__ import annotations

import csv
import io
import os
import signal

import numpy as np
import pytest

from dlscratch import _runs
from dlscratch._runs import RunFolder, RunFolderError, metrics_csv, stop_on_signals
from dlscratch.files import LOCK_NAME
from dlscratch.train import History


@pytest.fixture
def same_second(monkeypatch, tmp_path):
    """Work in tmp_path, where every run starts in the same second."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_runs.time, "strftime", lambda fmt: "20261201-120000")


def test_runs_started_in_the_same_second_get_folders_of_their_own(same_second, tmp_path):
    with RunFolder.new(None) as first, RunFolder.new(None) as second:
        first.keep()
        second.keep()
    with RunFolder.new(None) as third:
        third.keep()
    names = [folder.path.name for folder in (first, second, third)]
    assert names == ["20261201-120000", "20261201-120000-2", "20261201-120000-3"]
    assert all((tmp_path / "runs" / name).is_dir() for name in names)


def test_a_run_that_never_started_leaves_no_folder(same_second, tmp_path):
    with pytest.raises(ValueError), RunFolder.new(None):
        raise ValueError("the data could not be read")
    assert not (tmp_path / "runs").exists()
    with pytest.raises(KeyboardInterrupt), RunFolder.new(tmp_path / "a" / "b"):
        raise KeyboardInterrupt
    assert not (tmp_path / "a").exists()


def test_a_folder_of_the_users_stays_but_a_run_in_it_is_never_overwritten(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(ValueError), RunFolder.new(mine):
        raise ValueError
    assert sorted(p.name for p in mine.iterdir()) == [LOCK_NAME, "notes.txt"]
    (mine / "history.json").write_text("{}")
    with pytest.raises(
        RunFolderError, match=r"mine already holds a run \(history.json\): choose another --out"
    ):
        RunFolder.new(mine).__enter__()


def test_metrics_csv_has_the_mean_loss_of_each_epoch_and_empty_cells_for_splits_not_scored():
    history = History(
        train_loss=[1.0, 3.0, 0.5, 0.25, 0.75],
        epochs=[0, 1, 2],
        iterations=[0, 2, 5],
        train_acc=[0.1, 0.5, 0.7],
        val_acc=[0.2, 0.4, 0.6],
    )
    rows = list(csv.DictReader(io.StringIO(metrics_csv(history))))
    assert [row["train_loss"] for row in rows] == ["", "2.0", "0.5"]
    assert [row["val_acc"] for row in rows] == ["0.2", "0.4", "0.6"] and {
        row["test_acc"] for row in rows
    } == {""}


class Stoppable:
    def __init__(self) -> None:
        self.requests = 0

    def request_stop(self) -> None:
        self.requests += 1


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_asks_for_a_stop_and_a_second_one_stops_at_once(number, capfd):
    trainer = Stoppable()
    before = {n: signal.getsignal(n) for n in (signal.SIGINT, signal.SIGTERM)}
    with stop_on_signals(trainer) as received:  # type: ignore[arg-type]
        os.kill(os.getpid(), number)
        assert trainer.requests == 1 and received == [number]
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), number)
    assert "stopping after this step and saving (Ctrl-C again to stop at once)" in capfd.readouterr().err
    assert {n: signal.getsignal(n) for n in before} == before  # the previous handlers are back


def test_metrics_csv_rounds_nothing():
    history = History(
        train_loss=[np.float64(1 / 3)] * 3, epochs=[0, 1.5], iterations=[0, 3], train_acc=[0, 1]
    )
    assert list(csv.DictReader(io.StringIO(metrics_csv(history))))[1]["train_loss"] == str(1 / 3)
