"""Run folders of ``dlscratch train``: made unique, held by one process, cleaned up when a
run fails before it starts; the files a run leaves; a clean stop on Ctrl-C or SIGTERM.

A run folder holds model.npz (a finished run), metrics.csv, history.json, curves.png and
checkpoint.npz. A new run never shares or overwrites one: the default name is the date and
time, with "-2", "-3", ... added when another run took it in the same second; a folder
named with --out that already holds a run is refused. A run that fails before its first
training step removes the folders it made, so failures leave nothing behind.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dlscratch.files import (
    LOCK_NAME,
    FolderInUseError,
    lock_folder,
    remove_stale_temporaries,
    write_atomically,
)
from dlscratch.train import History, Trainer

CHECKPOINT = "checkpoint.npz"
MODEL = "model.npz"
RUN_FILES = (MODEL, "metrics.csv", "history.json", "curves.png", CHECKPOINT)
SIGNAL_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal's number, as shells report


class RunFolderError(Exception):
    """The run folder cannot be used (taken, busy, unwritable): the user's to fix."""


class RunFolder:
    """A run folder held by this process (see the module's notes). ``path``: the folder."""

    def __init__(self, path: Path, created: list[Path]) -> None:
        self.path = path
        self._created = created  # folders this run made, outermost first
        self._kept = not created

    def keep(self) -> None:
        """The run has started: from here on the folder stays, whatever happens."""
        self._kept = True

    @classmethod
    @contextlib.contextmanager
    def new(cls, out: Path | None) -> Iterator[RunFolder]:
        """A folder for a new run: out, or runs/<date-time>[-n]; held for the block, and
        removed at its end unless keep() was called (nothing else having been put there)."""
        path, created = _make_folder(out)
        folder = cls(path, created)
        try:
            with _held(path):
                yield folder
        finally:
            if not folder._kept:
                folder._remove_what_was_made()

    @classmethod
    @contextlib.contextmanager
    def existing(cls, path: Path) -> Iterator[RunFolder]:
        """A run's folder, held for the block (to resume it); never removed."""
        with _held(path):
            yield cls(path, [])

    def _remove_what_was_made(self) -> None:
        with contextlib.suppress(OSError):
            (self.path / LOCK_NAME).unlink()
        for folder in reversed(self._created):
            with contextlib.suppress(OSError):  # not empty: something else is there now; keep it
                folder.rmdir()


def _make_folder(out: Path | None) -> tuple[Path, list[Path]]:
    """(the folder, the folders made for it, outermost first), writable."""
    if out is None:
        base = Path("runs") / time.strftime("%Y%m%d-%H%M%S")
        created = _missing_parents(base.parent)
        _mkdir(base.parent, parents=True)
        for attempt in range(1, 1000):
            path = base if attempt == 1 else base.with_name(f"{base.name}-{attempt}")
            try:
                path.mkdir()
            except FileExistsError:
                continue
            except OSError as error:
                raise RunFolderError(f"cannot write to {path}: {error.strerror or error}") from None
            _check_writable(path)
            return path, [*created, path]
        raise RunFolderError(f"cannot find a free folder name like {base} (1000 are taken)")
    if out.is_dir():
        taken = [name for name in RUN_FILES if (out / name).exists()]
        if taken:
            raise RunFolderError(
                f"{out} already holds a run ({', '.join(taken)}): choose another --out, "
                f"or continue that run with --resume {out}"
            )
        _check_writable(out)
        return out, []
    created = _missing_parents(out)
    _mkdir(out, parents=True)
    _check_writable(out)
    return out, created


def _missing_parents(path: Path) -> list[Path]:
    """path and those of its parents that do not exist, outermost first."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    return missing[::-1]


def _mkdir(path: Path, parents: bool) -> None:
    try:
        path.mkdir(parents=parents, exist_ok=True)
    except OSError as error:
        raise RunFolderError(f"cannot write to {path}: {error.strerror or error}") from None


def _check_writable(path: Path) -> None:
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise RunFolderError(f"cannot write to {path}: {error.strerror or error}") from None


@contextlib.contextmanager
def _held(path: Path) -> Iterator[None]:
    """Hold the folder for this process (a lock) and clear what a killed run left in it."""
    try:
        with lock_folder(path):
            remove_stale_temporaries(path, RUN_FILES)
            yield
    except FolderInUseError as error:
        raise RunFolderError(f"{error}: wait for it to finish, or choose another folder") from None


# ---------------------------------------------------------------- what a run leaves


def metrics_csv(history: History) -> str:
    """One row per evaluation: epoch, iteration, the mean training loss of the iterations
    since the evaluation before (empty for the untrained network), and each accuracy
    measured (empty where a split was not scored)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["epoch", "iteration", "train_loss", "train_acc", "val_acc", "test_acc"])
    losses = history.epoch_losses()
    for index, (epoch, iteration) in enumerate(zip(history.epochs, history.iterations, strict=True)):
        row = [epoch, iteration, "" if losses[index] is None else losses[index], history.train_acc[index]]
        row += [values[index] if values else "" for values in (history.val_acc, history.test_acc)]
        writer.writerow(row)
    return buffer.getvalue()


def write_progress(folder: Path, history: History, record: dict[str, Any]) -> None:
    """metrics.csv, history.json (record, with the history) and curves.png."""
    from dlscratch.plot import plot_history, save_figure

    write_atomically(folder / "metrics.csv", lambda f: f.write(metrics_csv(history).encode()))
    full = {**record, "history": history.to_dict()}
    write_atomically(folder / "history.json", lambda f: f.write(json.dumps(full, indent=1).encode()))
    save_figure(plot_history(history), folder / "curves.png")


# ---------------------------------------------------------------- stopping on a signal


@contextlib.contextmanager
def stop_on_signals(trainer: Trainer) -> Iterator[list[int]]:
    """While the block runs, SIGINT (Ctrl-C) and SIGTERM ask the trainer to stop at its next
    safe point; a second one raises KeyboardInterrupt at once. Yields the list of signals
    received. Outside the main thread (where handlers cannot be set) it does nothing."""
    received: list[int] = []

    def ask_to_stop(signum: int, frame: Any) -> None:
        if received:
            raise KeyboardInterrupt
        received.append(signum)
        trainer.request_stop()
        # os.write, not print: safe whatever the interrupted code was writing
        os.write(2, b"\ndlscratch: stopping after this step and saving (Ctrl-C again to stop at once)\n")

    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {number: signal.signal(number, ask_to_stop) for number in SIGNAL_STATUS}
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
