"""dlscratch.book: the book's common/ and dataset/ packages, module for module, and its runner.

Book-style scripts written for these tests (tests/book_scripts/, one per chapter 5-8) import
``common.*`` and ``dataset.mnist`` as the book's programs do. Each runs to the end through
``python -m dlscratch.book`` and again with its imports pointed at dlscratch.book by the
documented one-line change, printing the same lines both ways.
"""

from __future__ import annotations

import importlib
import io
import os
import re
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from _http import write_idx

import dlscratch
from dlscratch import book, nets, optim
from dlscratch.layers import BatchNormalization, Dropout, SoftmaxWithLoss

SCRIPTS = Path(__file__).parent / "book_scripts"

# the public names of the book's common/ and dataset/ modules, as its scripts use them
BOOK_NAMES = {
    "common.functions": "identity_function step_function sigmoid sigmoid_grad relu relu_grad softmax "
    "sum_squared_error cross_entropy_error softmax_loss",
    "common.gradient": "_numerical_gradient_1d numerical_gradient_2d numerical_gradient",
    "common.layers": "Relu Sigmoid Affine SoftmaxWithLoss Dropout BatchNormalization Convolution Pooling "
    "im2col col2im softmax cross_entropy_error",
    "common.multi_layer_net": "MultiLayerNet",
    "common.multi_layer_net_extend": "MultiLayerNetExtend",
    "common.optimizer": "SGD Momentum Nesterov AdaGrad RMSprop Adam",
    "common.trainer": "Trainer",
    "common.util": "smooth_curve shuffle_dataset conv_output_size im2col col2im",
    "dataset.mnist": "load_mnist",
}


@pytest.mark.parametrize("module", sorted(BOOK_NAMES))
def test_every_name_of_the_books_modules_is_there(module):
    stand_in = importlib.import_module(book.BOOK_MODULES[module])
    for name in BOOK_NAMES[module].split():
        assert hasattr(stand_in, name), f"{module}.{name}"


def test_star_imports_give_what_the_books_give():
    """``from common.optimizer import *`` hands the book's scripts numpy as np, too."""
    for module in ("common.functions", "common.layers", "common.optimizer", "common.util"):
        namespace: dict[str, object] = {}
        exec(f"from {book.BOOK_MODULES[module]} import *", namespace)
        assert namespace["np"] is np, module
    layers: dict[str, object] = {}
    exec("from dlscratch.book.common.layers import *", layers)
    assert layers["Relu"] is dlscratch.Relu and layers["softmax"] is dlscratch.softmax


def test_install_aliases_makes_the_books_imports_find_dlscratch(monkeypatch):
    for alias in book.BOOK_MODULES:
        monkeypatch.delitem(sys.modules, alias, raising=False)
    book.install_aliases()
    from common.layers import Affine  # importable only now
    from dataset.mnist import load_mnist

    assert Affine is dlscratch.Affine and load_mnist is dlscratch.book.dataset.mnist.load_mnist
    for alias in book.BOOK_MODULES:  # monkeypatch restores sys.modules only for names it deleted
        sys.modules.pop(alias, None)


def test_the_books_layers_are_dlscratchs_with_the_books_arithmetic(rng):
    from dlscratch.book.common import layers

    assert layers.Dropout is Dropout and not Dropout().inverted  # the book's form is dlscratch's default
    loss = layers.SoftmaxWithLoss()
    assert isinstance(loss, SoftmaxWithLoss) and not loss.exact
    bn = layers.BatchNormalization(np.ones(4), np.zeros(4))
    assert isinstance(bn, BatchNormalization) and bn.book_statistics and bn.eps == 1e-6


def test_the_books_nets_use_the_books_loss_and_batch_norm():
    from dlscratch.book.common.multi_layer_net import MultiLayerNet
    from dlscratch.book.common.multi_layer_net_extend import MultiLayerNetExtend

    net = MultiLayerNetExtend(6, [5], 3, use_batchnorm=True, seed=0)
    assert isinstance(net, nets.MultiLayerNetExtend) and not net.last_layer.exact
    assert net.layers["BatchNorm1"].book_statistics
    assert not MultiLayerNet(6, [5], 3, seed=0).last_layer.exact


def test_the_books_adam_folds_the_corrections_into_the_step(rng):
    from dlscratch.book.common.optimizer import Adam

    W, grads = rng.standard_normal(5), [rng.standard_normal(5) for _ in range(4)]
    params, rule = {"W": W.copy()}, Adam(lr=0.01)
    m, v, expected = np.zeros(5), np.zeros(5), W.copy()
    for t, g in enumerate(grads, start=1):
        rule.update(params, {"W": g})
        m = m + 0.1 * (g - m)
        v = v + 0.001 * (g * g - v)
        step_size = 0.01 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        expected = expected - step_size * m / (np.sqrt(v) + 1e-7)
    np.testing.assert_allclose(params["W"], expected, rtol=1e-14)
    assert isinstance(rule, optim.Adam)


def _tiny_net_and_data(rng):
    x = rng.standard_normal((40, 6))
    t = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)
    return nets.MultiLayerNet(6, [8], 3, seed=0), x, t


def test_the_books_trainer_follows_the_books_schedule_and_printout(rng):
    from dlscratch.book.common.trainer import Trainer

    net, x, t = _tiny_net_and_data(rng)
    trainer = Trainer(net, x, t, x[:10], t[:10], epochs=3, mini_batch_size=20, optimizer="adam")
    printed = io.StringIO()
    with redirect_stdout(printed):
        trainer.train()
    lines = printed.getvalue().splitlines()
    # int(3 * 40 / 20) = 6 steps, each printing its loss after the update; an evaluation
    # after steps 0, 2 and 4 (the first right after the first update), then the whole test set
    assert [line.split(":")[0] for line in lines if not line.startswith("train loss:")] == [
        "=== epoch",
        "=== epoch",
        "=== epoch",
        "=============== Final Test Accuracy ===============",
        "test acc",
    ]
    assert len([line for line in lines if line.startswith("train loss:")]) == 6
    assert re.fullmatch(r"=== epoch:1, train acc:[\d.]+, test acc:[\d.]+ ===", lines[1])
    assert trainer.history.iterations == [1, 3, 5] and len(trainer.train_loss_list) == 6
    assert lines[-1] == f"test acc:{trainer.final_test_acc}"


def test_the_books_trainer_takes_the_books_adam_by_name(rng):
    from dlscratch.book.common.optimizer import Adam
    from dlscratch.book.common.trainer import Trainer

    net, x, t = _tiny_net_and_data(rng)
    trainer = Trainer(net, x, t, x, t, optimizer="Adam", optimizer_param={"lr": 0.1}, verbose=False)
    assert type(trainer.optimizer) is Adam and trainer.optimizer.lr == 0.1


def test_the_books_load_mnist_gives_the_books_label_types(data_dir, monkeypatch):
    from dlscratch.book.dataset.mnist import load_mnist

    monkeypatch.setenv("DLSCRATCH_DATA_DIR", str(data_dir))
    (_, t_train), (x_test, t_test) = load_mnist(normalize=False, flatten=False)
    (_, ours), _ = dlscratch.datasets.load_mnist()
    assert t_train.dtype == np.uint8 and x_test.shape[1:] == (1, 28, 28)
    np.testing.assert_array_equal(t_train, ours)
    _, (_, one_hot) = load_mnist(one_hot_label=True)
    assert one_hot.dtype == np.float64 and np.array_equal(one_hot.argmax(axis=1), t_test)


def test_conv_output_size_is_the_books_formula():
    from dlscratch.book.common.util import conv_output_size

    assert conv_output_size(28, 5) == 24.0 and conv_output_size(9, 2, 2) == 4.5


# ---------------------------------------------------------------- the scripts


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A learnable stand-in for MNIST: 600 training and 200 test images, each class a bright
    block at its own place on a noisy background (tests never download)."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    arrays = []
    for n in (600, 200):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            row, col = divmod(int(label), 4)
            images[i, 2 + 8 * row : 8 + 8 * row, 2 + 6 * col : 8 + 6 * col] = 230
        arrays += [images, labels]
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    names += ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    (root / "mnist").mkdir()
    for name, array in zip(names, arrays, strict=True):
        write_idx(root / "mnist" / name, array)
    return root


def _run(command: list[str], cwd: Path, data_dir: Path) -> str:
    env = {**os.environ, "DLSCRATCH_DATA_DIR": str(data_dir), "MPLBACKEND": "Agg"}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _pointed_at_dlscratch(source: str) -> str:
    """The documented one-line change: common.X -> dlscratch.book.common.X, dataset.X likewise."""
    return re.sub(r"^from (common|dataset)\.", r"from dlscratch.book.\1.", source, flags=re.MULTILINE)


@pytest.mark.parametrize(
    "script",
    ["ch05_backprop.py", "ch06_learning.py", "ch07_convnet.py", "ch08_deep.py"],
)
def test_book_style_scripts_run_unchanged_and_with_the_import_change_alike(script, data_dir, tmp_path):
    source = (SCRIPTS / script).read_text(encoding="utf-8")
    (tmp_path / script).write_text(source, encoding="utf-8")
    unchanged = _run([sys.executable, "-m", "dlscratch.book", script, "params.pkl"], tmp_path, data_dir)
    edited = tmp_path / f"edited_{script}"
    edited.write_text(_pointed_at_dlscratch(source), encoding="utf-8")
    assert "from dlscratch.book.common." in edited.read_text(encoding="utf-8")
    assert _run([sys.executable, edited.name, "params.pkl"], tmp_path, data_dir) == unchanged
    assert unchanged.strip()


def test_the_float16_input_of_chapter_8_is_computed_in_float64(data_dir, tmp_path):
    source = (SCRIPTS / "ch08_deep.py").read_text(encoding="utf-8")
    (tmp_path / "ch08_deep.py").write_text(source, encoding="utf-8")
    printed = _run([sys.executable, "-m", "dlscratch.book", "ch08_deep.py"], tmp_path, data_dir)
    assert "output dtype with float16 input: float64" in printed


def test_the_runner_explains_its_usage_and_refuses_a_missing_script(tmp_path):
    from dlscratch.book.__main__ import main

    assert main(["--help"]) == 0
    assert main([]) == 2 and main([str(tmp_path / "nowhere.py")]) == 2
