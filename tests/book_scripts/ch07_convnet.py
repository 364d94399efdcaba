"""Chapter 7 the book's way: a convolutional net from common.layers, its gradient checked."""

import pickle
import sys
from collections import OrderedDict

import numpy as np
from common.gradient import numerical_gradient
from common.layers import *
from common.trainer import Trainer
from common.util import col2im, conv_output_size, im2col
from dataset.mnist import load_mnist

np.random.seed(2)
x = np.random.rand(2, 3, 7, 7)
col = im2col(x, 5, 5, stride=1, pad=0)
print("im2col", col.shape, "back", col2im(col, x.shape, 5, 5).shape)


class ConvNet:
    def __init__(self, input_dim=(1, 28, 28), filters=4, size=5, hidden=20, std=0.01):
        side = conv_output_size(input_dim[1], size)
        pooled = int(filters * (side / 2) * (side / 2))
        self.params = {
            "W1": std * np.random.randn(filters, input_dim[0], size, size),
            "b1": np.zeros(filters),
            "W2": std * np.random.randn(pooled, hidden),
            "b2": np.zeros(hidden),
            "W3": std * np.random.randn(hidden, 10),
            "b3": np.zeros(10),
        }
        self.layers = OrderedDict()
        self.layers["Conv1"] = Convolution(self.params["W1"], self.params["b1"], 1, 0)
        self.layers["Relu1"] = Relu()
        self.layers["Pool1"] = Pooling(pool_h=2, pool_w=2, stride=2)
        self.layers["Affine1"] = Affine(self.params["W2"], self.params["b2"])
        self.layers["Relu2"] = Relu()
        self.layers["Affine2"] = Affine(self.params["W3"], self.params["b3"])
        self.last_layer = SoftmaxWithLoss()

    def predict(self, x):
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x, t):
        return self.last_layer.forward(self.predict(x), t)

    def accuracy(self, x, t):
        return np.sum(self.predict(x).argmax(axis=1) == t) / x.shape[0]

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(list(self.layers.values())):
            dout = layer.backward(dout)
        grads = {}
        for i, name in enumerate(("Conv1", "Affine1", "Affine2"), start=1):
            grads[f"W{i}"], grads[f"b{i}"] = self.layers[name].dW, self.layers[name].db
        return grads

    def save_params(self, file_name):
        with open(file_name, "wb") as f:
            pickle.dump({key: value for key, value in self.params.items()}, f)

    def load_params(self, file_name):
        with open(file_name, "rb") as f:
            params = pickle.load(f)
        for key, value in params.items():
            self.params[key] = value
        for i, name in enumerate(("Conv1", "Affine1", "Affine2"), start=1):
            self.layers[name].W = self.params[f"W{i}"]
            self.layers[name].b = self.params[f"b{i}"]


small = ConvNet(input_dim=(1, 10, 10), filters=3, size=3, hidden=8, std=0.3)
X = np.random.rand(100).reshape((1, 1, 10, 10))
T = np.array([1]).reshape((1, 1))  # one label as a column, as the book's check
backprop = small.gradient(X, T)
for key in ("W1", "b1", "W2", "b3"):
    numerical = numerical_gradient(lambda W: small.loss(X, T), small.params[key])
    diff = np.abs(backprop[key] - numerical).mean()
    print(key, diff)
    assert diff < 1e-6, key

(x_train, t_train), (x_test, t_test) = load_mnist(flatten=False)
net = ConvNet()
trainer = Trainer(
    net,
    x_train[:500],
    t_train[:500],
    x_test[:100],
    t_test[:100],
    epochs=2,
    mini_batch_size=50,
    optimizer="Adam",
    optimizer_param={"lr": 0.001},
)
trainer.train()
net.save_params(sys.argv[1])
again = ConvNet()
again.load_params(sys.argv[1])
assert again.accuracy(x_test, t_test) == net.accuracy(x_test, t_test)
