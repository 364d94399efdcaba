"""Pictures of training and of networks: matplotlib figures built without pyplot.

Every function returns a matplotlib.figure.Figure made directly (not through pyplot's
global state), so they work headless, never leak between calls, and show themselves in a
notebook after ``%matplotlib inline``. ``save_figure`` writes one to a file.

- plot_history: one run's loss per iteration and per epoch, and its accuracies per epoch
  (``dlscratch train``'s PNG)
- plot_histories: several runs side by side, e.g. batch norm on and off
- plot_images: a grid of images: samples, filters, misclassified examples
- plot_filters, plot_misclassified: the two grids chapter 7 shows
- plot_activation_histograms: the histograms of chapter 6's weight-initialisation experiment
- plot_optimizer_paths: the optimizers' paths over a function's contours (chapter 6)
- plot_confusion_matrix: which classes are taken for which (``dlscratch evaluate``'s PNG)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from dlscratch.files import write_atomically
from dlscratch.functions import as_class_indices
from dlscratch.train import History

__all__ = [
    "plot_activation_histograms",
    "plot_confusion_matrix",
    "plot_filters",
    "plot_histories",
    "plot_history",
    "plot_images",
    "plot_misclassified",
    "plot_optimizer_paths",
    "save_figure",
]

METRICS = {
    "train_loss": "training loss",
    "train_acc": "train accuracy",
    "val_acc": "validation accuracy",
    "test_acc": "test accuracy",
}


def plot_history(history: History, *, smooth: int = 50) -> Figure:
    """Two panels: the training loss per iteration (with its moving average over `smooth`
    iterations, and each epoch's mean as a step), and the accuracies at each evaluation
    (train; validation and test when the run scored them), by epoch."""
    figure = Figure(figsize=(10, 4), layout="constrained")
    loss_axes, acc_axes = figure.subplots(1, 2)

    loss = np.asarray(history.train_loss, dtype=float)
    iterations = np.arange(1, len(loss) + 1)
    loss_axes.plot(iterations, loss, color="tab:blue", alpha=0.3, linewidth=0.8, label="per iteration")
    if len(loss) >= smooth > 1:
        loss_axes.plot(*_moving_average(loss, smooth), color="tab:blue", label=f"mean of {smooth}")
    starts = [0, *history.iterations[:-1]]
    spans = [
        (start, end, mean)
        for start, end, mean in zip(starts, history.iterations, history.epoch_losses(), strict=True)
        if mean is not None
    ]
    if spans:
        begin, end, mean = zip(*spans, strict=True)
        loss_axes.hlines(mean, begin, end, color="tab:orange", linewidth=2, label="mean of each epoch")
    loss_axes.set(xlabel="iteration", ylabel="loss", title="training loss")
    loss_axes.legend()

    acc_axes.plot(history.epochs, history.train_acc, marker="o", label="train")
    if history.val_acc:
        acc_axes.plot(history.epochs, history.val_acc, marker="^", linestyle="-.", label="validation")
    if history.test_acc:
        acc_axes.plot(history.epochs, history.test_acc, marker="s", linestyle="--", label="test")
    _accuracy_axes(acc_axes, "accuracy")
    return figure


def plot_histories(
    histories: Mapping[str, History],
    metrics: Sequence[str] = ("train_acc", "test_acc"),
    *,
    smooth: int = 1,
) -> Figure:
    """Several runs compared: one panel per metric, one line per run (labelled by its key).

    metrics: any of 'train_loss' (by iteration, as a moving average over `smooth`
    iterations), 'train_acc' and 'test_acc' (by epoch).
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ValueError(f"metrics must be some of {sorted(METRICS)}, got {list(metrics)}")
    if not histories:
        raise ValueError("plot_histories needs at least one history")
    figure = Figure(figsize=(5 * len(metrics), 4), layout="constrained")
    for axes, metric in zip(np.atleast_1d(figure.subplots(1, len(metrics))), metrics, strict=True):
        for label, history in histories.items():
            values = np.asarray(getattr(history, metric), dtype=float)
            if metric == "train_loss":
                axes.plot(*_moving_average(values, max(1, min(smooth, len(values)))), label=label)
            else:
                axes.plot(history.epochs, values, marker="o", markersize=3, label=label)
        if metric == "train_loss":
            axes.set(xlabel="iteration", ylabel="loss", title=METRICS[metric])
            axes.legend()
        else:
            _accuracy_axes(axes, METRICS[metric])
    return figure


def plot_images(
    images: np.ndarray,
    *,
    titles: Sequence[str] | None = None,
    ncols: int = 10,
    cmap: str = "gray",
    size: float = 1.2,
) -> Figure:
    """A grid of images, one axes each, without ticks.

    images: (N, H, W) grey, (N, 1, H, W) grey, (N, 3, H, W) colour, or (N, D) rows of a
    square image (784 -> 28x28). Grey images are scaled each to its own range, so filters
    with negative weights show too. titles: one short text per image. size: inches per image.
    """
    pictures = _as_pictures(np.asarray(images))
    if titles is not None and len(titles) != len(pictures):
        raise ValueError(f"plot_images got {len(pictures)} images but {len(titles)} titles")
    ncols = max(1, min(ncols, len(pictures)))
    nrows = max(1, math.ceil(len(pictures) / ncols))
    title_room = 0.35 if titles is not None else 0.0
    figure = Figure(figsize=(size * ncols, (size + title_room) * nrows), layout="constrained")
    for index, axes in enumerate(np.ravel(figure.subplots(nrows, ncols, squeeze=False))):
        if index >= len(pictures):
            axes.set_visible(False)
            continue
        axes.imshow(pictures[index], cmap=cmap, interpolation="nearest")
        axes.set_xticks([])
        axes.set_yticks([])
        if titles is not None:
            axes.set_title(titles[index], fontsize=8)
    return figure


def plot_filters(weights: np.ndarray, *, ncols: int = 10) -> Figure:
    """A convolution's filters as images, as the book shows the first layer's.

    weights: (FN, C, FH, FW), e.g. ``network.params["W1"]``; each filter's first channel
    is drawn, dark for large weights (grey reversed), as in the book.
    """
    weights = np.asarray(weights)
    if weights.ndim != 4:
        raise ValueError(f"plot_filters expected weights of shape (FN, C, FH, FW), got shape {weights.shape}")
    return plot_images(weights[:, 0], ncols=ncols, cmap="gray_r")


def plot_misclassified(
    network: Any,
    x: np.ndarray,
    t: np.ndarray,
    *,
    class_names: Sequence[str] | None = None,
    count: int = 20,
    ncols: int = 10,
) -> Figure:
    """The first `count` samples of x the network gets wrong, titled "label > prediction".

    network: anything with ``predict(x)`` returning scores (N, classes). t: class indices
    or one-hot. class_names: names to show instead of class numbers.
    """
    scores = np.asarray(network.predict(x))
    predicted, labels = scores.argmax(axis=1), as_class_indices(scores, t)
    wrong = np.flatnonzero(predicted != labels)[:count]
    if len(wrong) == 0:
        figure = Figure(figsize=(4, 1), layout="constrained")
        figure.text(0.5, 0.5, f"all {len(x)} samples classified correctly", ha="center", va="center")
        return figure

    def name(index: int) -> str:
        return str(index) if class_names is None else class_names[index]

    titles = [f"{name(labels[i])} > {name(predicted[i])}" for i in wrong]
    figure = plot_images(x[wrong], titles=titles, ncols=ncols, size=1.4)
    figure.suptitle(f"{len(wrong)} misclassified (label > prediction)")
    return figure


def plot_activation_histograms(
    activations: Mapping[str, np.ndarray],
    *,
    bins: int = 30,
    value_range: tuple[float, float] = (0.0, 1.0),
    title: str | None = None,
) -> Figure:
    """One histogram per layer of its activations, side by side on a shared y axis.

    activations: layer name -> array of that layer's outputs (any shape), e.g. from the
    book's experiment of 5 layers of 100 sigmoid units fed 1000 random samples.
    """
    if not activations:
        raise ValueError("plot_activation_histograms needs at least one layer's activations")
    figure = Figure(figsize=(2.4 * len(activations), 2.6), layout="constrained")
    row = np.atleast_1d(figure.subplots(1, len(activations), sharey=True))
    for axes, (name, values) in zip(row, activations.items(), strict=True):
        axes.hist(np.ravel(values), bins=bins, range=value_range)
        axes.set_title(name)
    row[0].set_ylabel("count")
    if title:
        figure.suptitle(title)
    return figure


def plot_optimizer_paths(
    paths: Mapping[str, np.ndarray],
    f: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    *,
    xlim: tuple[float, float] = (-10, 10),
    ylim: tuple[float, float] = (-10, 10),
    ncols: int = 3,
    minimum: tuple[float, float] = (0.0, 0.0),
) -> Figure:
    """Each optimizer's path over the contour lines of f(x, y), one panel per optimizer.

    paths: name -> array (steps, 2) of the (x, y) points visited, start first.
    f: the function minimised, vectorised over arrays (e.g. x**2 / 20 + y**2), drawn as
    contours; minimum: marked with "+".
    """
    if not paths:
        raise ValueError("plot_optimizer_paths needs at least one path")
    ncols = min(ncols, len(paths))
    nrows = math.ceil(len(paths) / ncols)
    figure = Figure(figsize=(4 * ncols, 3.4 * nrows), layout="constrained")
    all_axes = np.ravel(figure.subplots(nrows, ncols, squeeze=False))
    grid_x, grid_y = np.meshgrid(np.linspace(*xlim, 200), np.linspace(*ylim, 200))
    for axes, (name, path) in zip(all_axes, paths.items(), strict=False):
        path = np.asarray(path, dtype=float)
        if path.ndim != 2 or path.shape[1] != 2:
            raise ValueError(f"the path of {name} must have shape (steps, 2), got {path.shape}")
        if f is not None:
            axes.contour(grid_x, grid_y, f(grid_x, grid_y), levels=12, colors="0.6", linewidths=0.8)
        axes.plot(path[:, 0], path[:, 1], "o-", color="tab:red", markersize=3, linewidth=1, label=name)
        axes.plot(*minimum, "+", color="black", markersize=10)
        axes.set(xlim=xlim, ylim=ylim, xlabel="x", ylabel="y", title=name)
    for axes in all_axes[len(paths) :]:
        axes.set_visible(False)
    return figure


def plot_confusion_matrix(
    matrix: np.ndarray, *, class_names: Sequence[str] | None = None, title: str | None = None
) -> Figure:
    """A confusion matrix as a grid: row i, column j counts samples of class i predicted as j.

    Parameters
    ----------
    matrix
        (C, C) counts, e.g. from dlscratch.metrics.confusion_matrix.
    class_names
        C names for the rows and columns (default: 0 to C-1).
    title
        The figure's title (default: "confusion matrix").

    Returns
    -------
    matplotlib.figure.Figure
        Each cell shaded by its share of its row (a rare class shows as clearly as a
        common one) and labelled with its count; each row's accuracy beside its name.

    Raises
    ------
    ValueError
        For a matrix that is not square, or names that do not match it.
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"plot_confusion_matrix expected a square (C, C) matrix, got shape {matrix.shape}")
    size = len(matrix)
    names = [str(i) for i in range(size)] if class_names is None else list(class_names)
    if len(names) != size:
        raise ValueError(f"plot_confusion_matrix got {size} classes but {len(names)} class names")
    totals = matrix.sum(axis=1, keepdims=True)
    shares = matrix / np.where(totals > 0, totals, 1)
    side = max(4.0, 0.55 * size + 2)
    figure = Figure(figsize=(side + 1.2, side), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(size):
        for j in range(size):
            colour = "white" if shares[i, j] > 0.5 else "black"
            axes.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7, color=colour)
    axes.set_xticks(range(size), names, rotation=45, ha="right", fontsize=8)
    rows = [
        f"{name} ({matrix[i, i] / totals[i, 0]:.1%})" if totals[i, 0] else name
        for i, name in enumerate(names)
    ]
    axes.set_yticks(range(size), rows, fontsize=8)
    axes.set(xlabel="predicted", ylabel="true class (accuracy)", title=title or "confusion matrix")
    figure.colorbar(image, ax=axes, label="share of the true class")
    return figure


def save_figure(figure: Figure, path: str | os.PathLike[str], dpi: int = 100) -> Path:
    """Write a figure through a temporary file and a rename, so no half-written picture
    is ever left at path. The format follows the suffix (.png, .svg, .pdf; PNG if none)."""
    path = Path(path)
    file_format = path.suffix.lstrip(".").lower() or "png"
    write_atomically(path, lambda handle: figure.savefig(handle, format=file_format, dpi=dpi))
    return path


def _moving_average(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(iterations, means): the mean of each `window` consecutive values, at the window's last iteration."""
    if len(values) < window:
        return np.arange(0), np.zeros(0)
    means = np.convolve(values, np.ones(window) / window, mode="valid")
    return np.arange(window, len(values) + 1), means


def _accuracy_axes(axes: Axes, title: str) -> None:
    axes.set(xlabel="epoch", ylabel="accuracy", title=title, ylim=(0, 1.0))
    axes.legend(loc="lower right")


def _as_pictures(images: np.ndarray) -> np.ndarray:
    """(N, H, W) grey or (N, H, W, 3) colour images from the shapes plot_images accepts."""
    if images.ndim == 2:
        side = math.isqrt(images.shape[1])
        if side * side != images.shape[1]:
            raise ValueError(f"rows of {images.shape[1]} values are not square images (shape {images.shape})")
        return images.reshape(len(images), side, side)
    if images.ndim == 3:
        return images
    if images.ndim == 4 and images.shape[1] == 1:
        return images[:, 0]
    if images.ndim == 4 and images.shape[1] == 3:
        return _to_unit_range(images.transpose(0, 2, 3, 1))
    raise ValueError(
        f"expected images of shape (N, H, W), (N, 1|3, H, W) or (N, H*W), got shape {images.shape}"
    )


def _to_unit_range(images: np.ndarray) -> np.ndarray:
    """Colour images scaled each into [0, 1], as imshow needs for RGB."""
    low = images.min(axis=(1, 2, 3), keepdims=True)
    span = images.max(axis=(1, 2, 3), keepdims=True) - low
    return (images - low) / np.where(span > 0, span, 1)
