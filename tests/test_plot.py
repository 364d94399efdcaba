"""The plotting helpers: each returns a Figure with the expected axes, lines and labels."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from dlscratch import TwoLayerNet
from dlscratch.plot import (
    plot_activation_histograms,
    plot_confusion_matrix,
    plot_filters,
    plot_histories,
    plot_history,
    plot_images,
    plot_misclassified,
    plot_optimizer_paths,
    save_figure,
)
from dlscratch.train import History


def _history(epochs: int = 3, iterations_per_epoch: int = 20, final_acc: float = 0.9) -> History:
    accuracy = list(np.linspace(0.1, final_acc, epochs + 1))
    return History(
        train_loss=list(np.linspace(2.3, 0.3, epochs * iterations_per_epoch)),
        epochs=list(range(epochs + 1)),
        iterations=[e * iterations_per_epoch for e in range(epochs + 1)],
        train_acc=accuracy,
        test_acc=[a - 0.05 for a in accuracy],
    )


def _visible_axes(figure: Figure) -> list:
    return [axes for axes in figure.axes if axes.get_visible()]


def test_plot_history_draws_loss_and_accuracy():
    figure = plot_history(_history(), smooth=10)
    loss_axes, acc_axes = figure.axes
    assert loss_axes.get_title() == "training loss" and loss_axes.get_xlabel() == "iteration"
    assert [line.get_label() for line in loss_axes.get_lines()] == ["per iteration", "mean of 10"]
    assert len(loss_axes.get_lines()[0].get_xdata()) == 60
    assert len(loss_axes.get_lines()[1].get_xdata()) == 60 - 10 + 1
    assert [line.get_label() for line in acc_axes.get_lines()] == ["train", "test"]
    assert acc_axes.get_xlabel() == "epoch" and acc_axes.get_ylim() == (0, 1.0)


def test_plot_history_shows_each_epochs_mean_loss_and_the_validation_accuracy():
    history = _history()
    history.val_acc, history.test_acc = (
        [a - 0.02 for a in history.train_acc],
        [],
    )  # the test set at the end only
    loss_axes, acc_axes = plot_history(history).axes
    steps = next(c for c in loss_axes.collections if c.get_label() == "mean of each epoch")
    segments = steps.get_segments()
    assert [tuple(s[:, 0]) for s in segments] == [(0, 20), (20, 40), (40, 60)]
    for segment, mean in zip(segments, history.epoch_losses()[1:], strict=True):
        assert segment[0, 1] == segment[1, 1] == pytest.approx(mean)
    assert [line.get_label() for line in acc_axes.get_lines()] == ["train", "validation"]


def test_plot_confusion_matrix_shades_rows_and_writes_counts():
    matrix = np.array([[8, 2, 0], [1, 9, 0], [0, 0, 0]])
    figure = plot_confusion_matrix(matrix, class_names=["cat", "dog", "fox"], title="pets")
    axes = figure.axes[0]
    assert axes.get_title() == "pets" and axes.get_xlabel() == "predicted"
    assert sorted(text.get_text() for text in axes.texts) == sorted(str(v) for v in matrix.ravel())
    assert [label.get_text() for label in axes.get_yticklabels()] == ["cat (80.0%)", "dog (90.0%)", "fox"]
    shades = axes.images[0].get_array()
    np.testing.assert_allclose(shades[0], [0.8, 0.2, 0.0])  # a row's share, not its count


@pytest.mark.parametrize(
    ("matrix", "names", "message"),
    [(np.zeros((2, 3)), None, "square"), (np.zeros((2, 2)), ["a"], "2 classes but 1 class names")],
)
def test_plot_confusion_matrix_refuses_bad_input(matrix, names, message):
    with pytest.raises(ValueError, match=message):
        plot_confusion_matrix(matrix, class_names=names)


def test_plot_histories_draws_one_line_per_run_in_each_panel():
    runs = {"with BN": _history(final_acc=0.95), "without BN": _history(final_acc=0.6)}
    figure = plot_histories(runs, ("train_loss", "train_acc", "test_acc"), smooth=5)
    assert [axes.get_title() for axes in figure.axes] == ["training loss", "train accuracy", "test accuracy"]
    for axes in figure.axes:
        assert [line.get_label() for line in axes.get_lines()] == ["with BN", "without BN"]
    np.testing.assert_allclose(figure.axes[1].get_lines()[0].get_ydata()[-1], 0.95)
    assert len(figure.axes[0].get_lines()[0].get_xdata()) == 60 - 5 + 1


def test_plot_histories_refuses_unknown_metrics_and_no_runs():
    with pytest.raises(ValueError, match="metrics must be some of"):
        plot_histories({"run": _history()}, ("accuracy",))
    with pytest.raises(ValueError, match="at least one history"):
        plot_histories({})


@pytest.mark.parametrize(
    ("shape", "picture_shape"),
    [((5, 28, 28), (28, 28)), ((5, 1, 8, 6), (8, 6)), ((5, 3, 4, 4), (4, 4, 3)), ((5, 784), (28, 28))],
)
def test_plot_images_accepts_the_usual_layouts(shape, picture_shape, rng):
    figure = plot_images(rng.standard_normal(shape), ncols=2, titles=[f"#{i}" for i in range(5)])
    assert len(figure.axes) == 6  # a 3 x 2 grid, the sixth hidden
    shown = _visible_axes(figure)
    assert len(shown) == 5
    assert [axes.get_title() for axes in shown] == ["#0", "#1", "#2", "#3", "#4"]
    assert shown[0].get_images()[0].get_array().shape == picture_shape
    assert not shown[0].get_xticks().size


def test_plot_images_refuses_what_is_not_an_image(rng):
    with pytest.raises(ValueError, match="not square"):
        plot_images(rng.standard_normal((3, 10)))
    with pytest.raises(ValueError, match="2 titles"):
        plot_images(rng.standard_normal((3, 4, 4)), titles=["a", "b"])


def test_plot_filters_shows_the_first_channel_of_each_filter(rng):
    weights = rng.standard_normal((30, 1, 5, 5))
    figure = plot_filters(weights, ncols=10)
    shown = _visible_axes(figure)
    assert len(shown) == 30
    np.testing.assert_array_equal(shown[7].get_images()[0].get_array(), weights[7, 0])
    with pytest.raises(ValueError, match="FN, C, FH, FW"):
        plot_filters(weights[:, 0])


class _Fixed:
    """A 'network' whose predictions are given: class = the sample's index mod 3."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.eye(3)[np.arange(len(x)) % 3]


def test_plot_misclassified_titles_label_and_prediction(rng):
    x = rng.random((9, 1, 4, 4))
    t = np.array([0, 1, 2, 1, 1, 2, 0, 1, 0])
    predicted = np.arange(9) % 3  # wrong at 3, 7 and 8
    wrong = np.flatnonzero(predicted != t)
    figure = plot_misclassified(_Fixed(), x, t, class_names=["cat", "dog", "cow"])
    shown = _visible_axes(figure)
    assert len(shown) == len(wrong)
    names = ["cat", "dog", "cow"]
    assert [a.get_title() for a in shown] == [f"{names[t[i]]} > {names[predicted[i]]}" for i in wrong]
    np.testing.assert_array_equal(shown[0].get_images()[0].get_array(), x[wrong[0], 0])
    # one-hot labels work too, and count limits the grid
    one_hot = np.eye(3)[t]
    assert len(_visible_axes(plot_misclassified(_Fixed(), x, one_hot, count=2))) == 2


def test_plot_misclassified_says_so_when_nothing_is_wrong(rng):
    x = rng.random((6, 16))
    figure = plot_misclassified(_Fixed(), x, np.arange(6) % 3)
    assert "all 6 samples classified correctly" in figure.texts[0].get_text()


def test_plot_misclassified_with_a_real_network(rng):
    network = TwoLayerNet(16, 5, 3, seed=0)
    x, t = rng.random((20, 16)), rng.integers(0, 3, 20)
    wrong = np.sum(network.predict(x).argmax(axis=1) != t)
    assert len(_visible_axes(plot_misclassified(network, x, t))) == min(wrong, 20)


def test_plot_activation_histograms_draws_one_histogram_per_layer(rng):
    activations = {f"{i}-layer": rng.random((100, 10)) for i in range(1, 6)}
    figure = plot_activation_histograms(activations, bins=20, title="sigmoid, std 1")
    assert [axes.get_title() for axes in figure.axes] == list(activations)
    assert all(len(axes.patches) == 20 for axes in figure.axes)
    assert figure.get_suptitle() == "sigmoid, std 1"
    heights = [patch.get_height() for patch in figure.axes[0].patches]
    assert sum(heights) == 1000


def test_plot_optimizer_paths_draws_a_path_and_contours_per_optimizer():
    path = np.column_stack([np.linspace(-7, 0, 30), np.linspace(2, 0, 30)])
    paths = {"SGD": path, "Adam": path / 2}
    figure = plot_optimizer_paths(paths, lambda x, y: x**2 / 20 + y**2, ncols=3)
    assert [axes.get_title() for axes in figure.axes] == ["SGD", "Adam"]
    for axes in figure.axes:
        path_line, minimum = axes.get_lines()
        assert len(path_line.get_xdata()) == 30
        assert (minimum.get_xdata()[0], minimum.get_ydata()[0]) == (0.0, 0.0)
        assert axes.collections  # the contour lines
        assert axes.get_xlabel() == "x" and axes.get_ylabel() == "y"
    with pytest.raises(ValueError, match="shape"):
        plot_optimizer_paths({"SGD": np.zeros((5, 3))})


@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")])
def test_save_figure_writes_the_format_of_the_suffix(tmp_path, suffix, magic):
    path = save_figure(plot_history(_history()), tmp_path / f"curves{suffix}")
    assert path.read_bytes().startswith(magic)
    assert [p.name for p in tmp_path.iterdir()] == [f"curves{suffix}"]  # no temporary left behind
