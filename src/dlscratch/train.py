"""The training loop of chapters 4-6 as a reusable piece: the book's Trainer, made exact.

Mini-batches are drawn with replacement as in the book (or as shuffled epochs), the
optimizer updates the network in place, the loss is recorded every iteration, and train
and test accuracy once per epoch. A seeded run repeats bit for bit.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm  # the text bar: tqdm.auto warns in notebooks without ipywidgets

from dlscratch.nets.init import as_rng
from dlscratch.optim import Optimizer, get_optimizer

__all__ = ["History", "NonFiniteLossError", "Trainer"]

SAMPLING_MODES = ("replacement", "shuffle")
EVAL_CHUNK = 1000  # samples converted at a time when evaluating with input_scale


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the network still holds the last finite step's weights."""

    def __init__(self, iteration: int, loss: float) -> None:
        super().__init__(
            f"loss became {loss} at iteration {iteration}; the weights are from the step before. "
            "Try a smaller learning rate."
        )
        self.iteration = iteration
        self.loss = loss


@dataclass
class History:
    """What a training run measured.

    train_loss: one value per iteration. epochs, iterations, train_acc, test_acc: one
    entry per evaluation (epoch 0 is the untrained network; a final partial epoch counts
    as a fraction). seconds: wall time spent training, evaluations included.
    """

    train_loss: list[float] = field(default_factory=list)
    epochs: list[float] = field(default_factory=list)
    iterations: list[int] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    seconds: float = 0.0

    # the book's names
    train_loss_list = property(lambda self: self.train_loss)
    train_acc_list = property(lambda self: self.train_acc)
    test_acc_list = property(lambda self: self.test_acc)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        return cls(**data)


class Trainer:
    """Trains a network with mini-batches; the book's signature plus keyword-only extras.

    network: anything with ``params``, ``gradient(x, t)``, ``loss(x, t)``,
    ``accuracy(x, t)`` (a ``loss_and_gradient`` method, when present, saves a forward pass).
    x_train (N, ...), t_train (N,) or (N, C); likewise the test split.
    epochs and mini_batch_size fix the number of iterations, ceil(epochs * N / batch),
    unless ``iters`` is given. optimizer: a name ('SGD', 'Adam', ...) with optimizer_param,
    or an Optimizer. evaluate_sample_num_per_epoch: evaluate on the first n samples of
    each split (None: all). verbose: print a line per epoch, and at the end the accuracy
    on the whole test set (also kept as ``final_test_acc``), as the book's Trainer does.

    Extras: ``iters``; ``sampling`` 'replacement' (the book: np.random.choice per batch) or
    'shuffle' (each epoch a permutation); ``seed`` for the batch sampler (None: np.random's
    global state, as the book); ``progress`` a tqdm bar (default: when verbose);
    ``callbacks``: functions called as f(trainer) after every iteration; ``input_scale``:
    keep integer data (e.g. uint8 pixels from ``load_mnist(normalize=False)``) and turn
    each batch, and each evaluated chunk, into the network's dtype times this factor as it
    is used. With ``input_scale=1/255`` the network sees the values ``normalize=True``
    gives (to the last bit or one rounding: x * (1/255) rather than x / 255) while the
    data set takes a quarter of float32's memory and batches are gathered faster.
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
        optimizer: str | Optimizer = "SGD",
        optimizer_param: dict[str, float] | None = None,
        evaluate_sample_num_per_epoch: int | None = None,
        verbose: bool = True,
        *,
        iters: int | None = None,
        sampling: str = "replacement",
        seed: Any = None,
        progress: bool | None = None,
        callbacks: list[Callable[[Trainer], None]] | None = None,
        input_scale: float | None = None,
    ) -> None:
        if input_scale is not None and not (math.isfinite(input_scale) and input_scale > 0):
            raise ValueError(f"input_scale must be a finite number > 0, got {input_scale!r}")
        _check_split("train", x_train, t_train, scaled=input_scale is not None)
        _check_split("test", x_test, t_test, scaled=input_scale is not None)
        if not isinstance(mini_batch_size, (int, np.integer)) or mini_batch_size < 1:
            raise ValueError(f"mini_batch_size must be a positive int, got {mini_batch_size!r}")
        if sampling not in SAMPLING_MODES:
            raise ValueError(f"sampling must be one of {SAMPLING_MODES}, got {sampling!r}")
        self.network = network
        self.x_train, self.t_train, self.x_test, self.t_test = x_train, t_train, x_test, t_test
        self.batch_size = int(mini_batch_size)
        self.train_size = len(x_train)
        self.iter_per_epoch = max(self.train_size / self.batch_size, 1)
        if iters is None:
            if not epochs > 0:
                raise ValueError(f"epochs must be > 0, got {epochs!r}")
            iters = math.ceil(epochs * self.iter_per_epoch)
        if not isinstance(iters, (int, np.integer)) or iters < 1:
            raise ValueError(f"iters must be a positive int, got {iters!r}")
        self.max_iter = int(iters)
        if optimizer_param is None:
            optimizer_param = {"lr": 0.01}
        self.optimizer = get_optimizer(optimizer, **optimizer_param)
        self.evaluate_sample_num_per_epoch = evaluate_sample_num_per_epoch
        self.verbose = verbose
        self.sampling = sampling
        self.rng = as_rng(seed)
        self.show_progress = verbose if progress is None else progress
        self.callbacks = list(callbacks or [])
        self.current_iter = 0
        self.history = History()
        self.final_test_acc: float | None = None  # on the whole test set, once train() ends
        self._order = np.arange(0)  # the shuffled epoch being consumed, sampling="shuffle"
        self.input_scale = input_scale
        self._input_dtype = _float_dtype_of(network)

    # the book's attribute names
    train_loss_list = property(lambda self: self.history.train_loss)
    train_acc_list = property(lambda self: self.history.train_acc)
    test_acc_list = property(lambda self: self.history.test_acc)

    def _next_batch_indices(self) -> np.ndarray:
        if self.sampling == "replacement":
            if isinstance(self.rng, np.random.Generator):
                # the very numbers choice(train_size, batch_size) draws, without its checks
                return self.rng.integers(0, self.train_size, self.batch_size)
            return self.rng.choice(self.train_size, self.batch_size)
        start = (self.current_iter * self.batch_size) % self.train_size
        if start == 0 or len(self._order) != self.train_size:
            self._order = self.rng.permutation(self.train_size)
        stop = start + self.batch_size
        if stop <= self.train_size:
            return self._order[start:stop]
        # the batch straddles two epochs: finish this permutation, start the next
        head = self._order[start:]
        self._order = self.rng.permutation(self.train_size)
        return np.concatenate([head, self._order[: stop - self.train_size]])

    def train_step(self) -> float:
        """One mini-batch: gradient, update, loss recorded. Returns the loss."""
        batch = self._next_batch_indices()
        x_batch, t_batch = self._as_input(self.x_train[batch]), self.t_train[batch]
        if hasattr(self.network, "loss_and_gradient"):
            loss, grads = self.network.loss_and_gradient(x_batch, t_batch)
        else:
            grads = self.network.gradient(x_batch, t_batch)
            loss = self.network.loss(x_batch, t_batch)
        loss = float(loss)
        if not math.isfinite(loss):
            raise NonFiniteLossError(self.current_iter, loss)
        self.optimizer.update(self.network.params, grads)
        self.history.train_loss.append(loss)
        self.current_iter += 1
        return loss

    def _as_input(self, x: np.ndarray) -> np.ndarray:
        """Stored samples as the network takes them: x itself, or scaled floats (input_scale)."""
        if self.input_scale is None:
            return x
        x = x.astype(self._input_dtype)
        x *= self._input_dtype.type(self.input_scale)
        return x

    def accuracy(self, x: np.ndarray, t: np.ndarray) -> float:
        """The network's accuracy on (x, t), stored like x_train (scaled by input_scale if set)."""
        if self.input_scale is None:
            return float(self.network.accuracy(x, t))
        # a chunk at a time, so the data set is never held as floats
        correct = 0
        for start in range(0, len(x), EVAL_CHUNK):
            chunk = self._as_input(x[start : start + EVAL_CHUNK])
            correct += round(self.network.accuracy(chunk, t[start : start + EVAL_CHUNK]) * len(chunk))
        return correct / len(x)

    def evaluate(self) -> tuple[float, float]:
        """Train and test accuracy (on the first n samples when that option is set)."""
        n = self.evaluate_sample_num_per_epoch
        train_acc = self.accuracy(self.x_train[:n], self.t_train[:n])
        test_acc = self.accuracy(self.x_test[:n], self.t_test[:n])
        return train_acc, test_acc

    def _record_evaluation(self) -> None:
        train_acc, test_acc = self.evaluate()
        epoch = round(self.current_iter * self.batch_size / self.train_size, 4)
        h = self.history
        h.epochs.append(epoch)
        h.iterations.append(self.current_iter)
        h.train_acc.append(train_acc)
        h.test_acc.append(test_acc)
        if self.verbose:
            tqdm.write(
                f"epoch {epoch:g}: train acc {train_acc:.4f}, test acc {test_acc:.4f}"
                + (f", loss {h.train_loss[-1]:.4f}" if h.train_loss else ""),
                file=sys.stdout,
            )

    def _completes_epoch(self) -> bool:
        """True when the iteration just done carried the sample count past an epoch's end."""
        seen_before = (self.current_iter - 1) * self.batch_size
        seen_now = self.current_iter * self.batch_size
        return seen_now // self.train_size > seen_before // self.train_size

    def train(self) -> History:
        """Run to max_iter (continuing from current_iter) and return the history."""
        clock = time.perf_counter()

        def count_time() -> None:
            # added as it passes, so a checkpoint taken mid-run holds the time spent so far
            nonlocal clock
            now = time.perf_counter()
            self.history.seconds += now - clock
            clock = now

        if self.current_iter == 0 and not self.history.epochs:
            self._record_evaluation()
        bar = tqdm(
            total=self.max_iter,
            initial=self.current_iter,
            disable=not self.show_progress,
            unit="it",
            leave=False,
            file=sys.stderr,
        )
        try:
            while self.current_iter < self.max_iter:
                loss = self.train_step()
                if self.show_progress:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                if self._completes_epoch() or self.current_iter == self.max_iter:
                    self._record_evaluation()
                count_time()
                for callback in self.callbacks:
                    callback(self)
        finally:
            bar.close()
            count_time()
        self.final_test_acc = self._final_test_accuracy()
        if self.verbose:
            print(f"final test accuracy (all {len(self.x_test)} test samples): {self.final_test_acc:.4f}")
        return self.history

    def _final_test_accuracy(self) -> float:
        """Accuracy on the whole test set, as the book's Trainer ends: the last evaluation's
        when it already used every test sample, else a new one."""
        n = self.evaluate_sample_num_per_epoch
        if n is None or n >= len(self.x_test):
            return self.history.test_acc[-1]
        return self.accuracy(self.x_test, self.t_test)


def _float_dtype_of(network: Any) -> np.dtype:
    """The dtype of the network's parameters (float64 if it has none that are floats)."""
    for param in getattr(network, "params", {}).values():
        if np.issubdtype(np.asarray(param).dtype, np.floating):
            return np.asarray(param).dtype
    return np.dtype(np.float64)


def _check_split(name: str, x: np.ndarray, t: np.ndarray, scaled: bool = False) -> None:
    """Refuse, before any training, data that would fail (or silently mislead) later."""
    x, t = np.asarray(x), np.asarray(t)
    if len(x) == 0:
        raise ValueError(f"the {name} split is empty")
    if len(x) != len(t):
        raise ValueError(f"the {name} split has {len(x)} samples but {len(t)} labels")
    if scaled and not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(f"x_{name} must hold numbers to scale with input_scale, got {x.dtype}")
    if not scaled and not np.issubdtype(x.dtype, np.floating):
        raise ValueError(
            f"x_{name} must be floating point, got {x.dtype} (load with normalize=True, use "
            "x.astype(np.float32), or keep integers and pass input_scale=1/255)"
        )
    if t.ndim == 1:
        if not np.issubdtype(t.dtype, np.integer):
            raise ValueError(f"t_{name} as class indices must be integers, got {t.dtype}")
        if t.min() < 0:
            raise ValueError(f"t_{name} holds a negative class index ({t.min()})")
    elif t.ndim != 2:
        raise ValueError(f"t_{name} must be class indices (N,) or one-hot (N, C), got shape {t.shape}")
