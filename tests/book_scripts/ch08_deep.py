"""Chapter 8 the book's way: a deeper net with dropout, evaluated with float16 input."""

import numpy as np
from common.layers import *
from common.trainer import Trainer
from dataset.mnist import load_mnist

np.random.seed(3)


class DeepNet:
    def __init__(self):
        shapes = [(8, 1, 3, 3), (8, 8, 3, 3)]
        self.params = {}
        for i, shape in enumerate(shapes, start=1):
            self.params[f"W{i}"] = np.sqrt(2.0 / np.prod(shape[1:])) * np.random.randn(*shape)
            self.params[f"b{i}"] = np.zeros(shape[0])
        self.params["W3"] = np.sqrt(2.0 / 392) * np.random.randn(392, 10)
        self.params["b3"] = np.zeros(10)
        self.layers = [
            Convolution(self.params["W1"], self.params["b1"], 1, 1),
            Relu(),
            Convolution(self.params["W2"], self.params["b2"], 1, 1),
            Relu(),
            Pooling(pool_h=2, pool_w=2, stride=2),
            Pooling(pool_h=2, pool_w=2, stride=2),
            Affine(self.params["W3"], self.params["b3"]),
            Dropout(0.3),
        ]
        self.last_layer = SoftmaxWithLoss()

    def predict(self, x, train_flg=False):
        for layer in self.layers:
            x = layer.forward(x, train_flg) if isinstance(layer, Dropout) else layer.forward(x)
        return x

    def loss(self, x, t):
        return self.last_layer.forward(self.predict(x, train_flg=True), t)

    def accuracy(self, x, t, batch_size=100):
        correct = 0
        for i in range(int(x.shape[0] / batch_size)):
            tx, tt = x[i * batch_size : (i + 1) * batch_size], t[i * batch_size : (i + 1) * batch_size]
            correct += np.sum(np.argmax(self.predict(tx), axis=1) == tt)
        return correct / x.shape[0]

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        grads = {}
        for i, layer in enumerate((self.layers[0], self.layers[2], self.layers[6]), start=1):
            grads[f"W{i}"], grads[f"b{i}"] = layer.dW, layer.db
        return grads


(x_train, t_train), (x_test, t_test) = load_mnist(flatten=False)
net = DeepNet()
Trainer(
    net,
    x_train[:400],
    t_train[:400],
    x_test,
    t_test,
    epochs=2,
    mini_batch_size=40,
    optimizer="Adam",
    optimizer_param={"lr": 0.002},
    evaluate_sample_num_per_epoch=100,
).train()
print("float64 accuracy:", net.accuracy(x_test, t_test))
half = x_test.astype(np.float16)
print("float16 input accuracy:", net.accuracy(half, t_test))
print("output dtype with float16 input:", net.predict(half[:2]).dtype)
