"""Chapter 6 the book's way: optimizers, batch norm, dropout, weight decay, the Trainer."""

import numpy as np
from common.multi_layer_net import MultiLayerNet
from common.multi_layer_net_extend import MultiLayerNetExtend
from common.optimizer import *  # SGD, Momentum, AdaGrad, Adam and np, as the book's scripts
from common.trainer import Trainer
from common.util import shuffle_dataset, smooth_curve
from dataset.mnist import load_mnist

np.random.seed(1)
(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True)
x_train, t_train = shuffle_dataset(x_train, t_train)

losses = {}
for name, rule in {"SGD": SGD(), "Momentum": Momentum(), "AdaGrad": AdaGrad(), "Adam": Adam()}.items():
    net = MultiLayerNet(input_size=784, hidden_size_list=[30, 30], output_size=10)
    losses[name] = []
    for _ in range(60):
        mask = np.random.choice(len(x_train), 32)
        rule.update(net.params, net.gradient(x_train[mask], t_train[mask]))
        losses[name].append(net.loss(x_train[mask], t_train[mask]))
    print(name + ":" + str(losses[name][-1]))
    assert len(smooth_curve(losses[name])) == 60

point = {"x": -7.0, "y": 2.0}
rule = Momentum(lr=0.1)
for _ in range(20):
    rule.update(point, {"x": point["x"] / 10.0, "y": 2.0 * point["y"]})
print("momentum path ends at", round(point["x"], 6), round(point["y"], 6))

checked = MultiLayerNetExtend(input_size=784, hidden_size_list=[10, 10], output_size=10, use_batchnorm=True)
backprop = checked.gradient(x_train[:1], t_train[:1])  # one sample, as the book's check
numerical = checked.numerical_gradient(x_train[:1], t_train[:1])
for key in ("W1", "gamma1", "beta2", "W3"):
    print(key + ":" + str(np.average(np.abs(backprop[key] - numerical[key]))))

net = MultiLayerNetExtend(
    input_size=784,
    hidden_size_list=[40, 40],
    output_size=10,
    use_dropout=True,
    dropout_ration=0.2,
    use_batchnorm=True,
    weight_decay_lambda=0.01,
)
trainer = Trainer(
    net,
    x_train[:300],
    t_train[:300],
    x_test,
    t_test,
    epochs=4,
    mini_batch_size=100,
    optimizer="Adam",
    optimizer_param={"lr": 0.01},
    evaluate_sample_num_per_epoch=200,
)
trainer.train()
assert len(trainer.test_acc_list) == 4 and trainer.train_acc_list[-1] > 0.5
