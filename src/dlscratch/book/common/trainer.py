"""The book's common/trainer.py: dlscratch's Trainer on the book's schedule, printing the book's lines."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlscratch import train as _train
from dlscratch.book.common.optimizer import Adam
from dlscratch.optim import get_optimizer

__all__ = ["Trainer"]


class Trainer(_train.Trainer):
    """The book's Trainer: its signature, schedule and printout, on dlscratch's Trainer.

    Differences from dlscratch.Trainer, all the book's: int(epochs * iter_per_epoch)
    iterations; each records the loss after the update, from a second forward pass, and
    prints it ("train loss:..."); accuracy is evaluated after iterations 0,
    iter_per_epoch, 2 iter_per_epoch, ... (so "epoch:1" comes after the first update);
    the end prints the accuracy on the whole test set. 'adam' is the book's Adam. Batches
    come from np.random, as the book's.

    Parameters
    ----------
    network : network
        Anything with ``params``, ``gradient(x, t)``, ``loss(x, t)``, ``accuracy(x, t)``.
    x_train : ndarray, shape (N, ...)
        The training samples, floating point.
    t_train : ndarray, shape (N,) or (N, C)
        Their labels: class indices or one-hot rows.
    x_test, t_test : ndarray
        The test split, shaped likewise: (M, ...) and (M,) or (M, C).
    epochs : float, default 20
        Training runs int(epochs * iter_per_epoch) iterations (at least one), with
        iter_per_epoch = max(N / mini_batch_size, 1).
    mini_batch_size : int, default 100
        Samples per iteration, 1 to N.
    optimizer : str, default 'SGD'
        The optimizer's name, in any case: 'SGD', 'Momentum', 'Nesterov', 'AdaGrad',
        'RMSprop' or 'Adam' (the book's form of Adam).
    optimizer_param : dict of str to float, or None, default None
        Its hyperparameters; None is {'lr': 0.01}.
    evaluate_sample_num_per_epoch : int or None, default None
        Evaluate on the first n samples of each split (None: all).
    verbose : bool, default True
        Print the book's lines: each iteration's loss, each evaluation's accuracies, the
        final test accuracy.

    Raises
    ------
    ValueError
        For an unknown optimizer, or settings and data dlscratch's Trainer refuses.
    """

    def __init__(
        self,
        network: Any,
        x_train: np.ndarray,
        t_train: np.ndarray,
        x_test: np.ndarray,
        t_test: np.ndarray,
        epochs: float = 20,
        mini_batch_size: int = 100,
        optimizer: str = "SGD",
        optimizer_param: dict[str, float] | None = None,
        evaluate_sample_num_per_epoch: int | None = None,
        verbose: bool = True,
    ) -> None:
        param = {"lr": 0.01} if optimizer_param is None else optimizer_param
        rule = Adam(**param) if str(optimizer).lower() == "adam" else get_optimizer(optimizer, **param)
        iter_per_epoch = max(len(x_train) / mini_batch_size, 1)
        super().__init__(
            network,
            x_train,
            t_train,
            x_test,
            t_test,
            mini_batch_size=mini_batch_size,
            optimizer=rule,
            evaluate_sample_num_per_epoch=evaluate_sample_num_per_epoch,
            verbose=verbose,
            iters=max(int(epochs * iter_per_epoch), 1),
            progress=False,
        )
        self.epochs = epochs
        self.current_epoch = 0

    def train_step(self) -> float:
        """One batch as the book's step: gradient, update, the loss after it; an evaluation
        whenever the iteration count is a multiple of iter_per_epoch."""
        batch = self._next_batch_indices()
        x_batch, t_batch = self.x_train[batch], self.t_train[batch]
        grads = self.network.gradient(x_batch, t_batch)
        self.optimizer.update(self.network.params, grads)
        loss = self.network.loss(x_batch, t_batch)
        self.history.train_loss.append(loss)
        if self.verbose:
            print("train loss:" + str(loss))
        if self.current_iter % self.iter_per_epoch == 0:
            self.current_epoch += 1
            train_acc, test_acc = self.evaluate()
            self.history.epochs.append(self.current_epoch)
            self.history.iterations.append(self.current_iter + 1)
            self.history.train_acc.append(train_acc)
            self.history.test_acc.append(test_acc)
            if self.verbose:
                print(f"=== epoch:{self.current_epoch}, train acc:{train_acc}, test acc:{test_acc} ===")
        self.current_iter += 1
        return loss

    def train(self) -> _train.History:
        """Every iteration, then the accuracy on the whole test set (``final_test_acc``)."""
        while self.current_iter < self.max_iter:
            self.train_step()
        self.final_test_acc = self.network.accuracy(self.x_test, self.t_test)
        if self.verbose:
            print("=============== Final Test Accuracy ===============")
            print("test acc:" + str(self.final_test_acc))
        return self.history
