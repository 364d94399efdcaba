"""Write the example notebooks from the cells below: ``python examples/_build.py``.

The notebooks are stored without outputs and tests/test_examples.py runs each one, so
none can rot; it also checks that the stored notebooks are what this script writes. To
change a notebook, edit its cells here and run the script (editing the .ipynb in Jupyter
and saving it with outputs cleared works too, if you copy the change back here).

Each notebook finishes in well under a minute on two CPU cores: the subsets and iteration
counts are stated in the notebooks. They read Fashion-MNIST, which works offline
(Debian's dataset-fashion-mnist package), since MNIST cannot be downloaded everywhere.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """\
%matplotlib inline
import numpy as np

"""

CH05 = [
    new_markdown_cell("""\
# Chapter 5: backpropagation, with dlscratch

The seed notebook of chapter 5, redone with the library: the apple graph forward and
backward (and drawn), each layer with its backward checked against numerical
differentiation, the gradient check of the two-layer network, and training with loss and
accuracy curves.

Data: Fashion-MNIST, read offline with `load_fashion_mnist` (the book's MNIST cannot be
downloaded on machines without network access; the shapes and code are the same).
To keep the run under a minute, training uses the first 10000 training images and
1000 iterations (10 epochs) instead of the book's 60000 images and 10000 iterations."""),
    new_code_cell("""\
%matplotlib inline
import tempfile
from pathlib import Path

import numpy as np

from dlscratch import (
    AddLayer,
    Affine,
    History,
    MulLayer,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
    TwoLayerNet,
    gradient_check,
    numerical_gradient,
)
from dlscratch.datasets import load_fashion_mnist
from dlscratch.graph_picture import ComputationalGraph
from dlscratch.plot import plot_history

# where this notebook saves files: a new temporary folder, or put a folder of yours here
OUTPUT = Path(tempfile.mkdtemp(prefix="dlscratch-ch05-"))"""),
    new_markdown_cell("""\
## 5.4 The computational graph: buying apples

A multiplication node remembers its inputs on the way forward; on the way back it
multiplies the gradient from above by the *other* input."""),
    new_code_cell("""\
apple = 100
apple_num = 2
tax = 1.1

mul_apple_layer = MulLayer()
mul_tax_layer = MulLayer()

# forward
apple_price = mul_apple_layer.forward(apple, apple_num)
price = mul_tax_layer.forward(apple_price, tax)
print(price)

# backward
dprice = 1
dapple_price, dtax = mul_tax_layer.backward(dprice)
dapple, dapple_num = mul_apple_layer.backward(dapple_price)
print(dapple, dapple_num, dtax)"""),
    new_markdown_cell("""\
The graph as the book draws it, from the layers that just ran: one step per forward line,
named like the variables. Forward values sit above the edges, backward values (red) below."""),
    new_code_cell("""\
ComputationalGraph([
    ("apple_price", mul_apple_layer, "apple", "apple_num"),
    ("price", mul_tax_layer, "apple_price", "tax"),
])"""),
    new_markdown_cell("""\
## Apples and oranges

An addition node passes the gradient from above to both inputs unchanged."""),
    new_code_cell("""\
apple, apple_num, orange, orange_num, tax = 100, 2, 150, 3, 1.1

mul_apple_layer = MulLayer()
mul_orange_layer = MulLayer()
add_apple_orange_layer = AddLayer()
mul_tax_layer = MulLayer()

# forward
apple_price = mul_apple_layer.forward(apple, apple_num)
orange_price = mul_orange_layer.forward(orange, orange_num)
all_price = add_apple_orange_layer.forward(apple_price, orange_price)
price = mul_tax_layer.forward(all_price, tax)

# backward
dprice = 1
dall_price, dtax = mul_tax_layer.backward(dprice)
dapple_price, dorange_price = add_apple_orange_layer.backward(dall_price)
dorange, dorange_num = mul_orange_layer.backward(dorange_price)
dapple, dapple_num = mul_apple_layer.backward(dapple_price)

print(price)
print(dapple_num, dapple, dorange, dorange_num, dtax)
assert round(price, 6) == 715 and round(dapple_num, 6) == 110 and dtax == 650"""),
    new_code_cell("""\
graph = ComputationalGraph([
    ("apple_price", mul_apple_layer, "apple", "apple_num"),
    ("orange_price", mul_orange_layer, "orange", "orange_num"),
    ("all_price", add_apple_orange_layer, "apple_price", "orange_price"),
    ("price", mul_tax_layer, "all_price", "tax"),
], title="buying apples and oranges")
saved = graph.save(OUTPUT / "apple_orange.svg")  # or .png
print(f"saved {saved}")
graph"""),
    new_markdown_cell("""\
## 5.5 and 5.6 Each layer, checked

Every layer's `backward(dout)` is the gradient of `sum(forward(x) * dout)` with respect
to `x`. `numerical_gradient` computes the same thing by central differences, so the two
must agree to about 1e-8. (dlscratch's layers return new arrays from `backward`; the
book's `Relu` zeroes the caller's `dout` in place.)"""),
    new_code_cell("""\
rng = np.random.default_rng(0)

def check_layer(layer, x):
    \"\"\"Largest difference between backprop and numerical differentiation for one layer.\"\"\"
    dout = rng.standard_normal(layer.forward(x).shape)
    backprop = layer.backward(dout)
    numerical = numerical_gradient(lambda x: np.sum(layer.forward(x) * dout), x)
    return np.max(np.abs(backprop - numerical))

x = np.array([[1.0, -0.5], [-2.0, 3.0]])
relu = Relu()
print(relu.forward(x))
print("mask (where the input was <= 0):", relu.mask.tolist())

layers = {
    "Relu": (Relu(), rng.standard_normal((4, 5))),
    "Sigmoid": (Sigmoid(), rng.standard_normal((4, 5))),
    "Affine": (Affine(rng.standard_normal((5, 3)), rng.standard_normal(3)), rng.standard_normal((4, 5))),
}
for name, (layer, x) in layers.items():
    difference = check_layer(layer, x)
    print(f"{name:8s} max |backprop - numerical| = {difference:.1e}")
    assert difference < 1e-7"""),
    new_markdown_cell("""\
`Affine` also fills in the gradients of its parameters, `dW = x.T @ dout` and
`db = dout.sum(axis=0)`. `SoftmaxWithLoss` ends the network: its backward is
`(y - t) / batch_size`, the softmax output minus the one-hot labels."""),
    new_code_cell("""\
scores = np.array([[0.3, 2.9, 4.0], [2.0, 0.1, -1.0]])
labels = np.array([2, 0])
last_layer = SoftmaxWithLoss()
loss = last_layer.forward(scores, labels)
print("loss:", loss)
print("softmax:", last_layer.y.round(3).tolist())
print("dx:", last_layer.backward(1).round(3).tolist())
np.testing.assert_allclose(last_layer.backward(1), (last_layer.y - np.eye(3)[labels]) / 2)"""),
    new_markdown_cell("""\
## 5.7 The two-layer network and its gradient check

The same check on a whole network: the book's table of mean absolute differences between
`network.numerical_gradient` (slow: two forward passes per weight) and
`network.gradient` (backpropagation), on three training images."""),
    new_code_cell("""\
(x_train, t_train), (x_test, t_test) = load_fashion_mnist(normalize=True, one_hot_label=True)
network = TwoLayerNet(input_size=784, hidden_size=50, output_size=10, seed=0)
network.summary()

x_batch, t_batch = x_train[:3], t_train[:3]
grad_numerical = network.numerical_gradient(x_batch, t_batch)
grad_backprop = network.gradient(x_batch, t_batch)
for key in grad_numerical:
    diff = np.average(np.abs(grad_backprop[key] - grad_numerical[key]))
    print(key + ":" + str(diff))
    assert diff < 1e-6"""),
    new_markdown_cell("""\
`gradient_check` gives the same table, with the largest relative error beside it:"""),
    new_code_cell("""\
for key, row in gradient_check(network, x_batch, t_batch).items():
    print(f"{key}: mean |diff| {row['mean_abs_diff']:.1e}, largest relative {row['max_rel_error']:.1e}")"""),
    new_markdown_cell("""\
## Training with backpropagation

The book's loop: a random mini-batch, the gradient by backpropagation, an SGD step on
`network.params` (the layers share those arrays), and the accuracies at the end of each
epoch.
Here on 10000 training images for 1000 iterations (10 epochs); the losses and
accuracies go into a `History`, which `plot_history` draws."""),
    new_code_cell("""\
np.random.seed(0)
x_train, t_train = x_train[:10000], t_train[:10000]
network = TwoLayerNet(input_size=784, hidden_size=50, output_size=10)

iters_num = 1000
train_size = x_train.shape[0]
batch_size = 100
learning_rate = 0.1
iter_per_epoch = max(train_size // batch_size, 1)
history = History()

for i in range(iters_num):
    batch_mask = np.random.choice(train_size, batch_size)
    x_batch = x_train[batch_mask]
    t_batch = t_train[batch_mask]

    grad = network.gradient(x_batch, t_batch)
    for key in ("W1", "b1", "W2", "b2"):
        network.params[key] -= learning_rate * grad[key]

    history.train_loss.append(network.loss(x_batch, t_batch))
    if (i + 1) % iter_per_epoch == 0:
        epoch = (i + 1) // iter_per_epoch
        history.epochs.append(epoch)
        history.iterations.append(i + 1)
        history.train_acc.append(network.accuracy(x_train, t_train))
        history.test_acc.append(network.accuracy(x_test, t_test))
        print(f"epoch {epoch}: train acc {history.train_acc[-1]:.4f}, test acc {history.test_acc[-1]:.4f}")

assert history.test_acc[-1] > 0.75"""),
    new_code_cell("""\
plot_history(history, smooth=20)"""),
]

CH06 = [
    new_markdown_cell("""\
# Chapter 6: techniques for learning

The optimizers on the book's function f(x, y) = x²/20 + y² (their paths drawn), weight
initialisation and the activations it produces, batch normalization on and off, and
weight decay and dropout against overfitting.

Data: Fashion-MNIST, offline (MNIST cannot be downloaded everywhere). To keep the run
under a minute the experiments are small: batch norm on 1000 training images for 20
epochs, overfitting on 300 images for 200 epochs, accuracies on the first 1000 test images."""),
    new_code_cell(
        SETUP
        + """\
from dlscratch import (
    SGD,
    AdaGrad,
    Adam,
    Momentum,
    MultiLayerNetExtend,
    Nesterov,
    RMSprop,
    Trainer,
    relu,
    sigmoid,
)
from dlscratch.datasets import load_fashion_mnist
from dlscratch.plot import plot_activation_histograms, plot_histories, plot_optimizer_paths"""
    ),
    new_markdown_cell("""\
## 6.1 The optimizers' paths

f is 20 times steeper along y than along x. SGD zigzags across the valley; Momentum
rolls along it; AdaGrad, RMSprop and Adam scale each direction's step by its own
gradient history. Each starts at (-7, 2) and takes 30 steps, with the book's learning
rates (dlscratch's Adam uses the paper's bias correction, so its path differs slightly
from the book's figure)."""),
    new_code_cell("""\
def f(x, y):
    return x**2 / 20.0 + y**2

def df(x, y):
    return x / 10.0, 2.0 * y

optimizers = {
    "SGD": SGD(lr=0.95),
    "Momentum": Momentum(lr=0.1),
    "Nesterov": Nesterov(lr=0.1),
    "AdaGrad": AdaGrad(lr=1.5),
    "RMSprop": RMSprop(lr=0.15),
    "Adam": Adam(lr=0.3),
}
paths = {}
for name, optimizer in optimizers.items():
    params = {"x": np.array(-7.0), "y": np.array(2.0)}  # 0-d arrays: updated in place
    path = []
    for _ in range(30):
        path.append((params["x"].item(), params["y"].item()))
        grad_x, grad_y = df(params["x"], params["y"])
        optimizer.update(params, {"x": grad_x, "y": grad_y})
    paths[name] = np.array(path)
    print(f"{name:9s} ends at ({params['x']:+.3f}, {params['y']:+.3f})")

plot_optimizer_paths(paths, f, xlim=(-10, 10), ylim=(-5, 5))"""),
    new_markdown_cell("""\
## 6.2 Weight initialisation: the activations it produces

The book's experiment: 1000 random samples through 5 layers of 100 units. With weights
of standard deviation 1 sigmoid outputs pile up at 0 and 1 (vanishing gradients); with
0.01 they all sit near 0.5 (every unit the same); Xavier's sqrt(1/n) keeps them spread.
For ReLU, He's sqrt(2/n) does the same."""),
    new_code_cell("""\
def activations(activation, weight_std, layers=5, nodes=100, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1000, nodes))
    result = {}
    for i in range(layers):
        w = rng.standard_normal((nodes, nodes)) * weight_std
        x = activation(x @ w)
        result[f"{i + 1}-layer"] = x
    return result

n = 100
settings = {
    "sigmoid, std 1": (sigmoid, 1.0),
    "sigmoid, std 0.01": (sigmoid, 0.01),
    "sigmoid, Xavier sqrt(1/n)": (sigmoid, np.sqrt(1 / n)),
}
for title, (activation, std) in settings.items():
    display(plot_activation_histograms(activations(activation, std), title=title))"""),
    new_code_cell("""\
he = activations(relu, np.sqrt(2 / n))
plot_activation_histograms(he, value_range=(0, 2), title="ReLU, He sqrt(2/n)")"""),
    new_markdown_cell("""\
## 6.3 Batch normalization on and off

Five hidden layers of 100 units on 1000 training images, SGD at 0.01 for 20 epochs, with
initial weights of standard deviation 0.1, which make the plain network learn slowly. With
batch norm each layer's input is renormalised over the mini-batch and training goes much
faster (the book compares 16 weight scales; try others here)."""),
    new_code_cell("""\
(x_train, t_train), (x_test, t_test) = load_fashion_mnist()
x_small, t_small = x_train[:1000], t_train[:1000]
x_val, t_val = x_test[:1000], t_test[:1000]

def train(network, x, t, epochs, lr=0.01):
    trainer = Trainer(network, x, t, x_val, t_val, epochs=epochs, mini_batch_size=100,
                      optimizer="SGD", optimizer_param={"lr": lr}, verbose=False, seed=0)
    return trainer.train()

runs = {}
for use_batchnorm in (True, False):
    network = MultiLayerNetExtend(784, [100] * 5, 10, weight_init_std=0.1,
                                  use_batchnorm=use_batchnorm, seed=0)
    runs["with batch norm" if use_batchnorm else "without"] = train(network, x_small, t_small, epochs=20)
for name, history in runs.items():
    print(f"{name:16s} train accuracy {history.train_acc[-1]:.3f}, test {history.test_acc[-1]:.3f}")
assert runs["with batch norm"].train_acc[-1] > runs["without"].train_acc[-1]
plot_histories(runs, ("train_acc", "test_acc"))"""),
    new_markdown_cell("""\
## 6.4 Overfitting, weight decay and dropout

Six hidden layers of 100 units learn 300 training images by heart: training accuracy
reaches 100% while test accuracy stays far below. Weight decay (an L2 penalty,
λ = 0.1) and dropout (15% of the units dropped at each step) narrow the gap between the
two, at the price of slower learning. 200 epochs of SGD at 0.01, as in the book."""),
    new_code_cell("""\
x_tiny, t_tiny = x_train[:300], t_train[:300]
settings = {
    "plain": {},
    "weight decay 0.1": {"weight_decay_lambda": 0.1},
    "dropout 0.15": {"use_dropout": True, "dropout_ratio": 0.15},
}
runs = {}
for name, options in settings.items():
    network = MultiLayerNetExtend(784, [100] * 6, 10, seed=0, **options)
    runs[name] = train(network, x_tiny, t_tiny, epochs=200)
gaps = {name: history.train_acc[-1] - history.test_acc[-1] for name, history in runs.items()}
for name, history in runs.items():
    train_acc, test_acc = history.train_acc[-1], history.test_acc[-1]
    print(f"{name:16s} train {train_acc:.3f}, test {test_acc:.3f}, gap {gaps[name]:.3f}")
assert runs["plain"].train_acc[-1] > 0.95
assert gaps["weight decay 0.1"] < gaps["plain"] and gaps["dropout 0.15"] < gaps["plain"]
plot_histories(runs, ("train_acc", "test_acc"))"""),
]

CH07 = [
    new_markdown_cell("""\
# Chapter 7: a convolutional network

The book's SimpleConvNet (conv 30 filters 5x5 → ReLU → 2x2 max pool → affine 100 → ReLU
→ affine 10) trained on Fashion-MNIST, its first-layer filters before and after, and
some of the test images it gets wrong.

Data: Fashion-MNIST, offline. To keep the run under a minute: 5000 training images, 3
epochs (150 iterations of batch 100) with Adam, in float32, accuracies on 1000 test
images. The book trains on all 60000 for 20 epochs; `dlscratch train --model convnet`
does the full run."""),
    new_code_cell(
        SETUP
        + """\
from dlscratch import SimpleConvNet, Trainer
from dlscratch.datasets import load_fashion_mnist
from dlscratch.plot import plot_filters, plot_history, plot_images, plot_misclassified

CLASSES = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]"""
    ),
    new_code_cell("""\
(x_train, t_train), (x_test, t_test) = load_fashion_mnist(flatten=False)
x_train, t_train = x_train[:5000], t_train[:5000]
x_test, t_test = x_test[:1000], t_test[:1000]
print(x_train.shape, x_train.dtype)
plot_images(x_train[:20], titles=[CLASSES[t] for t in t_train[:20]])"""),
    new_code_cell("""\
network = SimpleConvNet(input_dim=(1, 28, 28),
                        conv_param={"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1},
                        hidden_size=100, output_size=10, weight_init_std=0.01,
                        seed=0, dtype=np.float32)
network.summary()
plot_filters(network.params["W1"].copy())  # random at first"""),
    new_code_cell("""\
trainer = Trainer(network, x_train, t_train, x_test, t_test, epochs=3, mini_batch_size=100,
                  optimizer="Adam", optimizer_param={"lr": 0.001}, verbose=False, seed=0)
history = trainer.train()
print(f"test accuracy {history.test_acc[-1]:.3f} after {trainer.current_iter} iterations")
assert history.test_acc[-1] > 0.7
plot_history(history, smooth=10)"""),
    new_markdown_cell("""\
The first layer's filters after training (dark is a large weight): after only 150
iterations some already respond to edges and blobs; longer training makes them cleaner."""),
    new_code_cell("""\
plot_filters(network.params["W1"])"""),
    new_markdown_cell("""\
Test images the network gets wrong, titled *label > prediction*: mostly the classes
that look alike (shirts, T-shirts, pullovers and coats)."""),
    new_code_cell("""\
plot_misclassified(network, x_test, t_test, class_names=CLASSES, count=20)"""),
]

NOTEBOOKS = {
    "ch05_backprop.ipynb": CH05,
    "ch06_learning_techniques.ipynb": CH06,
    "ch07_convnet.ipynb": CH07,
}


def build(cells: list) -> nbformat.NotebookNode:
    """A notebook of the given cells for a Python 3 kernel, with no outputs."""
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index}"  # stable ids, so rebuilding changes nothing
    return notebook


def main() -> int:
    for name, cells in NOTEBOOKS.items():
        nbformat.write(build(cells), HERE / name)
        print(f"wrote {HERE / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
