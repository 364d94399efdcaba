"""Pictures of training: matplotlib figures built without pyplot's global state.

Figures are made with matplotlib.figure.Figure directly, so they work headless (no
display, no backend switching) and never leak between calls.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from dlscratch.train import History

__all__ = ["plot_history", "save_figure"]


def plot_history(history: History, *, smooth: int = 50) -> Figure:
    """Two panels: the training loss per iteration (and its moving average over `smooth`
    iterations) and the train/test accuracy at each evaluation, by epoch."""
    figure = Figure(figsize=(10, 4), layout="constrained")
    loss_axes, acc_axes = figure.subplots(1, 2)

    loss = np.asarray(history.train_loss, dtype=float)
    iterations = np.arange(1, len(loss) + 1)
    loss_axes.plot(iterations, loss, color="tab:blue", alpha=0.3, linewidth=0.8, label="per iteration")
    if len(loss) >= smooth > 1:
        average = np.convolve(loss, np.ones(smooth) / smooth, mode="valid")
        loss_axes.plot(iterations[smooth - 1 :], average, color="tab:blue", label=f"mean of {smooth}")
    loss_axes.set(xlabel="iteration", ylabel="loss", title="training loss")
    loss_axes.legend()

    acc_axes.plot(history.epochs, history.train_acc, marker="o", label="train")
    acc_axes.plot(history.epochs, history.test_acc, marker="s", linestyle="--", label="test")
    acc_axes.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.0))
    acc_axes.legend(loc="lower right")
    return figure


def save_figure(figure: Figure, path: str | os.PathLike[str], dpi: int = 100) -> Path:
    """Write a figure as PNG through a temporary file and a rename, so no half-written
    picture is ever left at path."""
    path = Path(path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            figure.savefig(handle, format="png", dpi=dpi)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
