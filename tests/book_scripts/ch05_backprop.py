"""Chapter 5 the book's way: a two-layer net built from common.layers, checked and trained."""

import sys
from collections import OrderedDict
from itertools import pairwise

import numpy as np
from common.gradient import numerical_gradient
from common.layers import *  # Affine, Relu, SoftmaxWithLoss, as the book's scripts
from dataset.mnist import load_mnist

np.random.seed(0)
(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, one_hot_label=True)


class Net:
    def __init__(self, sizes):
        self.params = {}
        for i, (n_in, n_out) in enumerate(pairwise(sizes), start=1):
            self.params[f"W{i}"] = 0.01 * np.random.randn(n_in, n_out)
            self.params[f"b{i}"] = np.zeros(n_out)
        self.layers = OrderedDict()
        self.layers["Affine1"] = Affine(self.params["W1"], self.params["b1"])
        self.layers["Relu1"] = Relu()
        self.layers["Affine2"] = Affine(self.params["W2"], self.params["b2"])
        self.lastLayer = SoftmaxWithLoss()

    def predict(self, x):
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x, t):
        return self.lastLayer.forward(self.predict(x), t)

    def accuracy(self, x, t):
        return np.sum(self.predict(x).argmax(axis=1) == t.argmax(axis=1)) / float(len(x))

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.lastLayer.backward(1)
        for layer in reversed(list(self.layers.values())):
            dout = layer.backward(dout)
        return {
            "W1": self.layers["Affine1"].dW,
            "b1": self.layers["Affine1"].db,
            "W2": self.layers["Affine2"].dW,
            "b2": self.layers["Affine2"].db,
        }


net = Net([784, 20, 10])
backprop = net.gradient(x_train[:3], t_train[:3])
for key in ("W1", "b1", "W2", "b2"):
    numerical = numerical_gradient(lambda W: net.loss(x_train[:3], t_train[:3]), net.params[key])
    diff = np.average(np.abs(backprop[key] - numerical))
    print(key + ":" + str(diff))
    assert diff < 1e-6, key

for i in range(300):
    mask = np.random.choice(len(x_train), 50)
    grads = net.gradient(x_train[mask], t_train[mask])
    for key in net.params:
        net.params[key] -= 0.1 * grads[key]  # in place: the layers see it
    if i % 100 == 0:
        print(net.accuracy(x_train, t_train), net.accuracy(x_test, t_test))
final = net.accuracy(x_test, t_test)
print("final", final)
sys.exit(0 if final > 0.5 else 1)
