"""Saved models on the command line: evaluate (per class, a confusion matrix, the model's own
data set, run folders), predict on a picture, the book's pickles converted and scored,
gradcheck of a trained model."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest
from matplotlib import image as mpl_image
from test_cli import refused

from dlscratch import TwoLayerNet
from dlscratch.cli import main
from dlscratch.datasets import load_fashion_mnist, load_mnist
from dlscratch.serialize import load, load_metadata

NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle"]


@pytest.fixture(scope="module")
def data_dir(tiny_mnist):
    return tiny_mnist


@pytest.fixture(scope="module")
def fashion_run(tiny_mnist, tmp_path_factory):
    """A finished run on "Fashion-MNIST" (the tiny files under that name)."""
    run = tmp_path_factory.mktemp("runs") / "fashion"
    options = [
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        str(tiny_mnist),
        "--iters",
        "12",
        "--batch-size",
        "10",
    ]
    assert main(["train", "--quiet", "--out", str(run), *options]) == 0
    return run


def test_evaluate_a_run_folder_on_its_own_data_set_per_class_with_a_confusion_matrix(
    data_dir, fashion_run, capsys
):
    assert main(["evaluate", str(fashion_run), "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    network = load(fashion_run / "model.npz")
    _, (x_test, t_test) = load_fashion_mnist(data_dir=data_dir, download=False)
    assert out[0] == f"test accuracy: {network.accuracy(x_test, t_test):.4f} (20 samples of fashion-mnist)"
    assert [line.split()[0] for line in out[1:11]] == NAMES
    predicted = network.predict(x_test).argmax(axis=1)
    assert out[1].endswith(f"({np.sum(predicted[t_test == 0] == 0)} of 2)")
    assert out[-1] == f"confusion matrix: {fashion_run / 'confusion.png'}"
    assert (fashion_run / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_another_data_set_only_when_asked_and_says_so(data_dir, fashion_run, tmp_path, capsys):
    picture = tmp_path / "mine.png"
    options = ["--data-dir", str(data_dir), "--dataset", "mnist", "--confusion", str(picture)]
    assert main(["evaluate", str(fashion_run / "model.npz"), *options]) == 0
    captured = capsys.readouterr()
    assert captured.err == "dlscratch: warning: the model learnt fashion-mnist; using mnist as asked\n"
    assert "(20 samples of mnist)" in captured.out and picture.exists()


def test_evaluate_a_run_that_did_not_finish_says_how_to_finish_it(tmp_path, capsys):
    (tmp_path / "checkpoint.npz").write_bytes(b"")
    message = f"has no model.npz: the run did not finish (continue it: dlscratch train --resume {tmp_path})"
    refused(capsys, ["evaluate", str(tmp_path)], message)
    (tmp_path / "checkpoint.npz").unlink()
    refused(capsys, ["evaluate", str(tmp_path)], "it is not a run folder of 'dlscratch train'")


def test_predict_a_picture_drawn_dark_on_white(data_dir, fashion_run, tmp_path, capsys):
    (_, _), (x_test, _) = load_fashion_mnist(
        normalize=False, flatten=False, data_dir=data_dir, download=False
    )
    drawing = 255 - np.kron(x_test[3, 0], np.ones((4, 4), np.uint8))  # 112 x 112, dark on white
    page = np.full((150, 130), 255, np.uint8)
    page[20:132, 9:121] = drawing
    mpl_image.imsave(tmp_path / "mine.png", np.stack([page] * 3, axis=2))
    assert main(["predict", str(fashion_run), str(tmp_path / "mine.png"), "--top", "3"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{tmp_path / 'mine.png'}: ") and "probability" in line and "; then " in line
    assert line.split(": ")[1].split(" (")[0].split()[0] in NAMES
    probabilities = [float(p) for p in re.findall(r"\b[01]\.\d{3}\b", line)]
    assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)


def test_predict_refuses_what_is_no_picture(fashion_run, tmp_path, capsys):
    (tmp_path / "notes.png").write_text("hello")
    refused(capsys, ["predict", str(fashion_run), str(tmp_path / "notes.png")], "is not a picture")
    blank = np.full((20, 20, 3), 255, np.uint8)
    mpl_image.imsave(tmp_path / "blank.png", blank)
    refused(capsys, ["predict", str(fashion_run), str(tmp_path / "blank.png")], "holds no drawing")


@pytest.fixture
def book_pickle(tmp_path):
    """A pickle as the book's save_params writes it: a dict of its network's params."""
    network = TwoLayerNet(784, 7, 10, weight_init_std=0.1, seed=4)
    path = tmp_path / "params.pkl"
    path.write_bytes(pickle.dumps({key: value.copy() for key, value in network.params.items()}))
    return path, network


def test_a_book_pickle_is_scored_and_converted_with_its_network_named(
    data_dir, tmp_path, book_pickle, capsys
):
    path, network = book_pickle
    _, (x_test, t_test) = load_mnist(data_dir=data_dir, download=False)
    expected = f"test accuracy: {network.accuracy(x_test, t_test):.4f} (20 samples of mnist)"
    model = ["--model", "two-layer", "--hidden-size", "7"]
    assert (
        main(
            [
                "evaluate",
                str(path),
                *model,
                "--data-dir",
                str(data_dir),
                "--confusion",
                str(tmp_path / "c.png"),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.splitlines()[0] == expected
    assert main(["convert", str(path), *model, "--out", str(tmp_path / "model.npz")]) == 0
    assert "TwoLayerNet, 5,575 parameters" in capsys.readouterr().out
    assert load_metadata(tmp_path / "model.npz")["data"]["dataset"] == "mnist"
    assert main(["evaluate", str(tmp_path / "model.npz"), "--data-dir", str(data_dir)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == expected


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "is not a dlscratch model file; if it is one of the book's pickles, say which network it holds"),
        (["--model", "convnet"], "does not fit this SimpleConvNet"),
        (
            ["--model", "two-layer", "--hidden-size", "7", "--batchnorm"],
            "--model two-layer does not take --batchnorm",
        ),
    ],
)
def test_a_book_pickle_needs_its_network_named_right(book_pickle, tmp_path, capsys, extra, message):
    refused(capsys, ["convert", str(book_pickle[0]), "--out", str(tmp_path / "m.npz"), *extra], message)
    assert not (tmp_path / "m.npz").exists()


def test_convert_never_overwrites_and_a_model_file_takes_no_network_options(fashion_run, book_pickle, capsys):
    path = book_pickle[0]
    refused(
        capsys,
        ["convert", str(path), "--model", "two-layer", "--out", str(path)],
        "exists: choose another",
    )
    refused(
        capsys,
        ["convert", str(fashion_run / "model.npz"), "--out", "x.npz"],
        "already a dlscratch model",
    )
    refused(
        capsys,
        ["evaluate", str(fashion_run), "--model", "mlp"],
        "records its own network: drop --model",
    )


def test_gradcheck_of_a_trained_model_in_float64(data_dir, fashion_run, capsys):
    assert main(["gradcheck", str(fashion_run), "--data-dir", str(data_dir), "--entries", "10"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:5]] == ["W1", "b1", "W2", "b2"] and lines[-1].startswith(
        "ok:"
    )
