"""The training loop of chapters 4-6 as a reusable piece: the book's Trainer, made exact.

Mini-batches are drawn with replacement as in the book (or as shuffled epochs), the
optimizer updates the network in place, the loss is recorded every iteration, and train
and test accuracy once per epoch. A seeded run repeats bit for bit.

Beyond the book, what a run needs to be trusted: a validation split and early stopping
(dlscratch.validation), a learning-rate schedule (dlscratch.schedules), data augmentation
(dlscratch.augment), a stop on divergence, and a clean stop on request (``request_stop``:
the command line asks for one on Ctrl-C) whose state a checkpoint can continue.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm  # the text bar: tqdm.auto warns in notebooks without ipywidgets

from dlscratch import train_state
from dlscratch.nets.init import as_rng
from dlscratch.optim import Optimizer, get_optimizer
from dlscratch.schedules import Schedule
from dlscratch.train_state import SAMPLING_MODES
from dlscratch.validation import EarlyStopping, split_validation

__all__ = [
    "DivergenceError",
    "History",
    "NonFiniteLossError",
    "NonFiniteWeightsError",
    "ResumeWarning",
    "Trainer",
]

EVAL_CHUNK = 1000  # samples evaluated at a time (converted at a time with input_scale)
MAX_ITERS = 2**63 - 1  # what a checkpoint's counters can hold
#: iterations whose mean loss the divergence check compares with the first loss
DIVERGENCE_WINDOW = 20


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the network still holds the last finite step's weights.

    Each parameter is kept as the attribute of its name.

    Parameters
    ----------
    iteration : int
        The step whose loss it was: the iterations done before it.
    loss : float
        The loss, NaN or infinite.
    """

    def __init__(self, iteration: int, loss: float) -> None:
        super().__init__(
            f"loss became {loss} at iteration {iteration}; the weights are from the step before. "
            "Try a smaller learning rate."
        )
        self.iteration = iteration
        self.loss = loss


class NonFiniteWeightsError(NonFiniteLossError):
    """An update made a weight NaN or infinite (e.g. float32 overflow); it was undone, so the
    network and the optimizer hold the last finite step's state.

    Each parameter is kept as the attribute of its name.

    Parameters
    ----------
    iteration : int
        The step that made it: the iterations done before it.
    loss : float
        The step's loss, still finite.
    name : str
        The array the update made so: a key of the network's params, or
        ``"<layer>/<buffer>"`` for a layer's running statistics.
    """

    def __init__(self, iteration: int, loss: float, name: str) -> None:
        FloatingPointError.__init__(
            self,
            f"the update at iteration {iteration} made {name} NaN or infinite (loss {loss:.4g}); "
            "the weights are from the step before. Try a smaller learning rate.",
        )
        self.iteration, self.loss, self.name = iteration, loss, name


class DivergenceError(FloatingPointError):
    """The loss grew far past its starting value: the mean of the last DIVERGENCE_WINDOW
    losses exceeded ``factor`` times the first iteration's loss (see Trainer's
    divergence_factor). The network holds the weights of the last step, as they are.
    Each parameter is kept as the attribute of its name.

    Parameters
    ----------
    iteration : int
        The iterations done, the last one included.
    loss : float
        The mean loss of the last DIVERGENCE_WINDOW iterations.
    start : float
        The first iteration's loss.
    factor : float
        The Trainer's divergence_factor: loss exceeded factor * start.
    """

    def __init__(self, iteration: int, loss: float, start: float, factor: float) -> None:
        super().__init__(
            f"training diverged at iteration {iteration}: the mean loss of the last {DIVERGENCE_WINDOW} "
            f"iterations is {loss:.4g}, more than {factor:g} times the first loss ({start:.4g}). "
            "Try a smaller learning rate."
        )
        self.iteration, self.loss, self.start, self.factor = iteration, loss, start, factor


class ResumeWarning(UserWarning):
    """A run continues where its arithmetic differs from where it was saved (another
    NumPy): the result may differ from an unbroken run's in the last bits."""


@dataclass
class History:
    """What a training run measured.

    Every list starts empty; the Trainer appends to them as it runs.

    Parameters
    ----------
    train_loss : list of float, default []
        One value per iteration.
    epochs : list of float, default []
        One entry per evaluation: the epoch it came after (epoch 0 is the untrained
        network; a final partial epoch counts as a fraction).
    iterations : list of int, default []
        One entry per evaluation: the iterations done before it.
    train_acc : list of float, default []
        One entry per evaluation: the accuracy on the training set.
    test_acc : list of float, default []
        One per evaluation when the test set is scored every epoch (the book's way, and
        the default without a validation set), else empty.
    val_acc : list of float, default []
        One per evaluation when the run has a validation set, else empty.
    seconds : float, default 0.0
        Wall time spent training, evaluations included.
    """

    train_loss: list[float] = field(default_factory=list)
    epochs: list[float] = field(default_factory=list)
    iterations: list[int] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    seconds: float = 0.0

    # the book's names
    train_loss_list = property(lambda self: self.train_loss)
    train_acc_list = property(lambda self: self.train_acc)
    test_acc_list = property(lambda self: self.test_acc)

    def epoch_losses(self) -> list[float | None]:
        """Per evaluation, the mean loss of the iterations since the one before (None for
        an evaluation with none before it: the untrained network's).

        This is the loss of an epoch; one iteration's loss, what the book prints, jumps up
        and down from batch to batch.
        """
        means: list[float | None] = []
        previous = 0
        for iteration in self.iterations:
            losses = self.train_loss[previous:iteration]
            means.append(math.fsum(losses) / len(losses) if losses else None)
            previous = iteration
        return means

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        return cls(**data)


class _EvaluationAbandonedError(Exception):
    """A stop was requested while an evaluation ran: nothing of it is recorded."""


class Trainer:
    """Trains a network with mini-batches; the book's signature plus keyword-only extras.

    A step whose loss is NaN or infinite, or whose update would leave a weight so, raises
    NonFiniteLossError (NonFiniteWeightsError) with everything as it was before the step.
    ``request_stop()`` (safe from a signal handler) ends train() after the step in
    progress, or abandons an evaluation in progress (the next train() redoes it);
    ``interrupted`` then says so. ``state_dict()`` and ``load_state_dict()`` save and
    continue a run (dlscratch.checkpoint stores them in a file); the data must not change
    during a run.

    Parameters
    ----------
    network : network
        Anything with ``params``, ``gradient(x, t)``, ``loss(x, t)``, ``accuracy(x, t)``
        (a ``loss_and_gradient`` method, when present, saves a forward pass).
    x_train : ndarray, shape (N, ...)
        The training samples: floating point, or numbers of any kind with input_scale.
    t_train : ndarray, shape (N,) or (N, C)
        Their labels: class indices (integers >= 0) or one-hot rows.
    x_test, t_test : ndarray
        The test split, shaped likewise: (M, ...) and (M,) or (M, C).
    epochs : float, default 20
        With mini_batch_size, fixes the number of iterations, ceil(epochs * N /
        mini_batch_size), unless iters is given; finite and > 0.
    mini_batch_size : int, default 100
        Samples per iteration, 1 to N.
    optimizer : str or Optimizer, default 'SGD'
        A name ('SGD', 'Momentum', 'Nesterov', 'AdaGrad', 'RMSprop', 'Adam', in any case)
        made with optimizer_param, or an Optimizer (optimizer_param is then unused).
    optimizer_param : dict of str to float, or None, default None
        The named optimizer's hyperparameters; None is {'lr': 0.01}.
    evaluate_sample_num_per_epoch : int or None, default None
        Evaluate on the first n samples of each split (None: all).
    verbose : bool, default True
        Print a line per epoch, and at the end the accuracy on the whole test set (also
        kept as ``final_test_acc``), as the book's Trainer does.
    iters : int or None, default None
        The number of iterations, in place of epochs' (1 to 2**63 - 1).
    sampling : str, default 'replacement'
        'replacement' (the book: np.random.choice per batch) or 'shuffle' (each epoch a
        permutation).
    seed : int, np.random.Generator or None, default None
        Seeds the batch sampler (None: np.random's global state, as the book).
    progress : bool or None, default None
        Show a tqdm bar (None: when verbose).
    callbacks : list of callables, or None, default None
        Functions called as f(trainer) after every iteration.
    input_scale : float or None, default None
        Keep integer data (e.g. uint8 pixels from ``load_mnist(normalize=False)``) and turn
        each batch, and each evaluated chunk, into the network's dtype times this factor
        (finite, > 0) as it is used. With ``input_scale=1/255`` the network sees the values
        ``normalize=True`` gives (to the last bit or one rounding: x * (1/255) rather than
        x / 255) while the data set takes a quarter of float32's memory and batches are
        gathered faster.
    validation : float, (ndarray, ndarray) or None, default None
        A fraction of the training set to hold out (``split_validation`` with the int
        seed, or 0) or a pair (x_val, t_val) shaped as the training split. Each evaluation
        then scores train and validation accuracy (``history.val_acc``), and the test set
        only at the end, unless test_each_epoch.
    test_each_epoch : bool or None, default None
        Score the test set at every evaluation (None: True without a validation set, as
        the book).
    early_stopping : int, EarlyStopping or None, default None
        A patience (evaluations without a better validation accuracy) or an EarlyStopping;
        needs a validation set. Training ends early when it runs out, and at the end the
        network gets the weights of its best evaluation.
    lr_schedule : Schedule or None, default None
        A Schedule whose factor of the fractional epoch multiplies the optimizer's starting
        lr before every step.
    augment : callable or None, default None
        A function batch -> batch (an Augmentation or Compose from dlscratch.augment)
        applied to every training batch before input_scale.
    divergence_factor : float or None, default 4.0
        Stop with DivergenceError once the mean loss of the last 20 iterations exceeds this
        many (> 1) times the first iteration's loss (None: never). An untrained
        classifier's loss is about ln(classes); a run that learns goes below it, and one
        whose recent losses average 4 times it predicts confidently wrong: no run seen came
        back from there, while a healthy run's early spikes stay well under it.

    Raises
    ------
    ValueError
        For a setting out of range, or data training would fail on: an empty split,
        samples and labels of different lengths, samples not floating point (without
        input_scale), labels neither class indices nor one-hot.
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
        validation: float | tuple[np.ndarray, np.ndarray] | None = None,
        test_each_epoch: bool | None = None,
        early_stopping: int | EarlyStopping | None = None,
        lr_schedule: Schedule | None = None,
        augment: Callable[[np.ndarray], np.ndarray] | None = None,
        divergence_factor: float | None = 4.0,
    ) -> None:
        if input_scale is not None and not (math.isfinite(input_scale) and input_scale > 0):
            raise ValueError(f"input_scale must be a finite number > 0, got {input_scale!r}")
        scaled = input_scale is not None
        _check_split("train", x_train, t_train, scaled=scaled)
        _check_split("test", x_test, t_test, scaled=scaled)
        # an int seed lets a saved state's sampler be checked by replaying its batches
        self._seed = int(seed) if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) else None
        x_train, t_train, self.x_val, self.t_val = _validation_split(
            validation, x_train, t_train, self._seed or 0, scaled
        )
        if not isinstance(mini_batch_size, (int, np.integer)) or mini_batch_size < 1:
            raise ValueError(f"mini_batch_size must be a positive int, got {mini_batch_size!r}")
        if mini_batch_size > len(x_train):
            raise ValueError(
                f"mini_batch_size {mini_batch_size} is larger than the training set ({len(x_train)} samples)"
            )
        if sampling not in SAMPLING_MODES:
            raise ValueError(f"sampling must be one of {SAMPLING_MODES}, got {sampling!r}")
        self.network = network
        self.x_train, self.t_train, self.x_test, self.t_test = x_train, t_train, x_test, t_test
        self.batch_size = int(mini_batch_size)
        self.train_size = len(x_train)
        self.iter_per_epoch = max(self.train_size / self.batch_size, 1)
        if iters is None:
            if not (isinstance(epochs, (int, float, np.number)) and 0 < epochs < math.inf):
                raise ValueError(f"epochs must be a finite number > 0, got {epochs!r}")
            if epochs * self.iter_per_epoch > MAX_ITERS:
                raise ValueError(f"epochs={epochs!r} would take more than 2**63 iterations")
            iters = math.ceil(epochs * self.iter_per_epoch)
        if not isinstance(iters, (int, np.integer)) or not 1 <= iters <= MAX_ITERS:
            raise ValueError(f"iters must be a positive int below 2**63, got {iters!r}")
        self.max_iter = int(iters)
        if optimizer_param is None:
            optimizer_param = {"lr": 0.01}
        self.optimizer = get_optimizer(optimizer, **optimizer_param)
        self.evaluate_sample_num_per_epoch = evaluate_sample_num_per_epoch
        self.verbose = verbose
        self.sampling = sampling
        self.rng = as_rng(seed)
        self.test_each_epoch = self.x_val is None if test_each_epoch is None else bool(test_each_epoch)
        self.early_stopping = _early_stopping(early_stopping, has_validation=self.x_val is not None)
        if lr_schedule is not None and not isinstance(lr_schedule, Schedule):
            raise ValueError(f"lr_schedule must be a dlscratch.schedules.Schedule, got {lr_schedule!r}")
        self.lr_schedule = lr_schedule
        self._base_lr = getattr(self.optimizer, "lr", None)  # what the schedule's factor multiplies
        if lr_schedule is not None and self._base_lr is None:
            raise ValueError("an lr_schedule needs an optimizer with an lr attribute")
        if augment is not None and not callable(augment):
            raise ValueError(f"augment must be a function batch -> batch, got {augment!r}")
        self.augment = augment
        if divergence_factor is not None and not (
            isinstance(divergence_factor, (int, float)) and 1 < divergence_factor < math.inf
        ):
            raise ValueError(f"divergence_factor must be a number > 1, or None, got {divergence_factor!r}")
        self.divergence_factor = divergence_factor
        self._data_fingerprint: str | None = None
        self._backup: dict[tuple[str, str], np.ndarray] = {}  # the arrays as before the step in progress
        self.show_progress = verbose if progress is None else progress
        self.callbacks = list(callbacks or [])
        self.current_iter = 0
        self.history = History()
        self.final_test_acc: float | None = None  # on the whole test set, once train() ends
        self.interrupted = False  # whether the last train() ended on request_stop()
        self._stop_requested = False
        self._training = False
        self._order = np.arange(0)  # the shuffled epoch being consumed, sampling="shuffle"
        self.input_scale = input_scale
        self._input_dtype = _float_dtype_of(network)

    # the book's attribute names
    train_loss_list = property(lambda self: self.history.train_loss)
    train_acc_list = property(lambda self: self.history.train_acc)
    test_acc_list = property(lambda self: self.history.test_acc)

    @property
    def epoch(self) -> float:
        """How far training has come, in epochs (fractional)."""
        return self.current_iter * self.batch_size / self.train_size

    @property
    def stopped_early(self) -> bool:
        """True once early stopping ran out of patience."""
        return self.early_stopping is not None and self.early_stopping.stopped

    @property
    def finished(self) -> bool:
        """True when train() has nothing left to do: max_iter reached or stopped early."""
        return self.current_iter >= self.max_iter or self.stopped_early

    def request_stop(self) -> None:
        """Ask train() to stop at the next safe point (see the class's notes)."""
        self._stop_requested = True

    def _next_batch_indices(self) -> np.ndarray:
        batch, self._order = train_state.draw_batch(
            self.rng, self.sampling, self.train_size, self.batch_size, self.current_iter, self._order
        )
        return batch

    def train_step(self) -> float:
        """One mini-batch: gradient, update, loss recorded. Returns the loss.

        The learning rate is set from lr_schedule first, and the batch augmented. Raises
        NonFiniteLossError when the loss is NaN or infinite, NonFiniteWeightsError when the
        update made a weight so (either way the network's arrays and the optimizer's state
        are put back as they were before the step), DivergenceError after the step when the
        loss has grown past divergence_factor times its start.
        """
        if self.lr_schedule is not None:
            self.optimizer.lr = self._base_lr * self.lr_schedule.factor(self.epoch)
        batch = self._next_batch_indices()
        x_batch, t_batch = self.x_train[batch], self.t_train[batch]
        if self.augment is not None:
            x_batch = self.augment(x_batch)
        x_batch = self._as_input(x_batch)
        with self._undone_unless_finite() as arrays:
            if hasattr(self.network, "loss_and_gradient"):
                loss, grads = self.network.loss_and_gradient(x_batch, t_batch)
            else:
                grads = self.network.gradient(x_batch, t_batch)
                loss = self.network.loss(x_batch, t_batch)
            loss = float(loss)
            if not math.isfinite(loss):
                raise NonFiniteLossError(self.current_iter, loss)
            self.optimizer.update(self.network.params, grads)
            for name, array in arrays.items():
                if not _all_finite(array):
                    raise NonFiniteWeightsError(self.current_iter, loss, name)
        self.history.train_loss.append(loss)
        self.current_iter += 1
        self._check_divergence()
        return loss

    def _check_divergence(self) -> None:
        losses = self.history.train_loss
        if self.divergence_factor is None or len(losses) < DIVERGENCE_WINDOW:
            return
        recent = math.fsum(losses[-DIVERGENCE_WINDOW:]) / DIVERGENCE_WINDOW
        if recent > self.divergence_factor * losses[0]:
            raise DivergenceError(self.current_iter, recent, losses[0], self.divergence_factor)

    def _network_arrays(self) -> dict[str, np.ndarray]:
        """The arrays a step changes: every param, and every layer's buffers (running statistics)."""
        return train_state.network_state_arrays(self.network)

    @contextmanager
    def _undone_unless_finite(self) -> Iterator[dict[str, np.ndarray]]:
        """Put the network's arrays and the optimizer's state back if the block raises
        NonFiniteLossError: a copy of each is kept, in buffers reused from step to step.
        Yields the network's arrays (name -> array), for the block to check."""
        arrays, slots = self._network_arrays(), self.optimizer.slots
        saved_slots = {name: dict(kept) for name, kept in slots.items()}
        backup = self._backup
        pairs = [(("network", k), a) for k, a in arrays.items()]
        pairs += [((s, k), a) for s, kept in slots.items() for k, a in kept.items()]
        for key, array in pairs:
            kept = backup.get(key)
            if kept is None or kept.shape != array.shape or kept.dtype != array.dtype:
                kept = backup[key] = np.empty_like(array)
            np.copyto(kept, array)
        step_count = self.optimizer.step_count
        try:
            yield arrays
        except NonFiniteLossError:
            for key, array in pairs:
                np.copyto(array, backup[key])
            self.optimizer.slots = saved_slots  # the slots the step created go, the others keep their arrays
            self.optimizer.step_count = step_count
            raise

    def state_dict(self) -> dict[str, Any]:
        """This run's state as JSON data and arrays (see dlscratch.train_state for the fields):
        counters, the batch sampler's position, the history, the optimizer's state (its
        starting lr when a schedule sets it), the schedule, the augmentation's generators,
        early stopping's progress and best weights, and what the numbers depend on (data
        fingerprint, NumPy version, thread count). The network is not in it."""
        if self._data_fingerprint is None:
            splits = [self.x_train, self.t_train, self.x_test, self.t_test]
            if self.x_val is not None:
                splits += [self.x_val, self.t_val]
            self._data_fingerprint = train_state.data_fingerprint(*splits)
        if self.rng is np.random:
            sampler: Any = "global"
        elif isinstance(self.rng, np.random.Generator):
            sampler = self.rng.bit_generator.state
        else:
            raise ValueError(
                f"cannot save the state of a trainer whose rng is a {type(self.rng).__name__}; "
                "give Trainer an int seed, a np.random.Generator or None"
            )
        optimizer = self.optimizer.state_dict()
        if self.lr_schedule is not None:
            optimizer["hyperparameters"]["lr"] = self._base_lr  # the schedule sets the rest
        return {
            "current_iter": self.current_iter,
            "max_iter": self.max_iter,
            "batch_size": self.batch_size,
            "train_size": self.train_size,
            "validation_size": 0 if self.x_val is None else len(self.x_val),
            "test_each_epoch": self.test_each_epoch,
            "sampling": self.sampling,
            "order": self._order.copy(),
            "sampler": sampler,
            "seed": self._seed if sampler != "global" else None,
            "history": self.history.to_dict(),
            "optimizer": optimizer,
            "lr_schedule": None if self.lr_schedule is None else self.lr_schedule.config(),
            "augmentation": train_state.augmentation_state(self.augment),
            "early_stopping": None if self.early_stopping is None else self.early_stopping.state_dict(),
            "input_scale": self.input_scale,
            "evaluation_samples": self.evaluate_sample_num_per_epoch,
            "data": self._data_fingerprint,
            **train_state.arithmetic(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the run state (from state_dict) describes; train() then goes on with it.

        The state is checked as untrusted input first (train_state.check_state), then
        against this trainer: the optimizer and its hyperparameters, batch size, sampling,
        kind of batch sampler, input_scale, evaluation samples, validation, schedule,
        augmentation, early stopping's settings and the data (by fingerprint) must be the
        saved run's; ValueError listing what differs, with the trainer untouched. max_iter
        may differ, to train for longer. Another NumPy only warns (ResumeWarning): the
        numbers may then differ in the last bits from the run continued where it was saved;
        another thread count changes nothing. The network's arrays are the caller's to restore
        (dlscratch.restore_checkpoint does both).
        """
        checked = train_state.check_state(state, self.network)
        if problems := train_state.mismatches(checked, self, self.state_dict()):
            raise ValueError(f"this trainer cannot continue the saved run: {'; '.join(problems)}")
        for message in train_state.continuation_warnings(checked):
            warnings.warn(message, ResumeWarning, stacklevel=2)
        self.optimizer.load_state_dict(checked["optimizer"].state_dict())
        self.history = checked["history"]
        self.current_iter = checked["current_iter"]
        self._order = checked["order"].copy()
        self._seed = checked["seed"]
        if checked["sampler"] != "global":
            self.rng.bit_generator.state = checked["sampler"]
        train_state.set_augmentation_state(self.augment, checked["augmentation"])
        if self.early_stopping is not None:
            self.early_stopping.load_state_dict(checked["early_stopping"])

    def _as_input(self, x: np.ndarray) -> np.ndarray:
        """Stored samples as the network takes them: x itself, or scaled floats (input_scale)."""
        if self.input_scale is None:
            return x
        x = x.astype(self._input_dtype)
        x *= self._input_dtype.type(self.input_scale)
        return x

    def accuracy(self, x: np.ndarray, t: np.ndarray) -> float:
        """The network's accuracy on (x, t), stored like x_train (scaled by input_scale if set)."""
        if self.input_scale is None and not self._training:
            return float(self.network.accuracy(x, t))
        # a chunk at a time: the data set is never held as floats, and a stop requested
        # during training is seen between chunks
        correct = 0
        for start in range(0, len(x), EVAL_CHUNK):
            if self._stop_requested:
                raise _EvaluationAbandonedError
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
        """Score the splits this run watches, then record them all at once (an evaluation
        abandoned half way records nothing) and tell early stopping."""
        n = self.evaluate_sample_num_per_epoch
        scores = {"train_acc": self.accuracy(self.x_train[:n], self.t_train[:n])}
        if self.x_val is not None:
            scores["val_acc"] = self.accuracy(self.x_val[:n], self.t_val[:n])
        if self.test_each_epoch:
            scores["test_acc"] = self.accuracy(self.x_test[:n], self.t_test[:n])
        epoch = round(self.epoch, 4)
        h = self.history
        h.epochs.append(epoch)
        h.iterations.append(self.current_iter)
        for name, value in scores.items():
            getattr(h, name).append(value)
        if self.early_stopping is not None:
            self.early_stopping.update(scores["val_acc"], self.current_iter, self._network_arrays())
        if self.verbose:
            mean_loss = h.epoch_losses()[-1]
            parts = [f"mean loss {mean_loss:.4f}"] if mean_loss is not None else []
            parts += [f"{name.replace('_acc', '')} acc {value:.4f}" for name, value in scores.items()]
            tqdm.write(f"epoch {epoch:g}: {', '.join(parts)}", file=sys.stdout)

    def _completes_epoch(self) -> bool:
        """True when the iteration just done carried the sample count past an epoch's end."""
        seen_before = (self.current_iter - 1) * self.batch_size
        seen_now = self.current_iter * self.batch_size
        return seen_now // self.train_size > seen_before // self.train_size

    def _evaluation_missing(self) -> bool:
        """True when an evaluation belongs after current_iter (the start, an epoch's end, the
        last iteration) and is not in the history: the run was stopped while it ran."""
        h = self.history
        if h.iterations and h.iterations[-1] == self.current_iter:
            return False
        return self.current_iter == 0 or self._completes_epoch() or self.current_iter == self.max_iter

    def train(self) -> History:
        """Run to max_iter (continuing from current_iter), or until early stopping or a
        requested stop, and return the history."""
        clock = time.perf_counter()

        def count_time() -> None:
            # added as it passes, so a checkpoint taken mid-run holds the time spent so far
            nonlocal clock
            now = time.perf_counter()
            self.history.seconds += now - clock
            clock = now

        self.interrupted = False
        bar = tqdm(
            total=self.max_iter,
            initial=self.current_iter,
            disable=not self.show_progress,
            unit="it",
            leave=False,
            file=sys.stderr,
        )
        self._training = True
        try:
            if self._evaluation_missing():
                self._record_evaluation()
            while not self.finished and not self._stop_requested:
                loss = self.train_step()
                if self.show_progress:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                if self._completes_epoch() or self.current_iter == self.max_iter:
                    self._record_evaluation()
                count_time()
                for callback in self.callbacks:
                    callback(self)
        except _EvaluationAbandonedError:
            pass
        finally:
            self._training = False
            bar.close()
            count_time()
        if self._stop_requested:
            self._stop_requested, self.interrupted = False, True
            return self.history
        if self.early_stopping is not None and self.early_stopping.best_arrays:
            self.early_stopping.restore(self._network_arrays())
        self.final_test_acc = self._final_test_accuracy()
        if self.verbose:
            best = ""
            if self.early_stopping is not None and self.early_stopping.best_iteration is not None:
                epoch = self.early_stopping.best_iteration * self.batch_size / self.train_size
                best = f", the weights of epoch {epoch:.4g}, the best on validation"
            print(
                f"final test accuracy (all {len(self.x_test)} test samples{best}): {self.final_test_acc:.4f}"
            )
        return self.history

    def _final_test_accuracy(self) -> float:
        """Accuracy on the whole test set, as the book's Trainer ends: the last evaluation's
        when it already used every test sample with these weights, else a new one."""
        h, n = self.history, self.evaluate_sample_num_per_epoch
        evaluated = self.test_each_epoch and (n is None or n >= len(self.x_test))
        best = self.early_stopping.best_iteration if self.early_stopping is not None else None
        if evaluated and best in (None, h.iterations[-1]):
            return h.test_acc[-1]
        return self.accuracy(self.x_test, self.t_test)


def _all_finite(array: np.ndarray) -> bool:
    """True when every element of array is a finite number. Its sum is the fast first test
    (any NaN or infinity makes the sum NaN or infinite); only a sum that overflowed needs
    the exact, slower check."""
    return math.isfinite(array.sum()) or bool(np.isfinite(array).all())


def _validation_split(
    validation: Any, x: np.ndarray, t: np.ndarray, seed: int, scaled: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(x_train, t_train, x_val, t_val) for Trainer's validation argument."""
    if validation is None:
        return x, t, None, None
    if isinstance(validation, tuple) and len(validation) == 2:
        x_val, t_val = validation
        _check_split("validation", x_val, t_val, scaled=scaled)
        return x, t, x_val, t_val
    if isinstance(validation, (float, int)) and not isinstance(validation, bool):
        return split_validation(x, t, validation, seed=seed)
    raise ValueError(f"validation must be a fraction or a pair (x_val, t_val), got {validation!r}")


def _early_stopping(early_stopping: Any, has_validation: bool) -> EarlyStopping | None:
    if early_stopping is None:
        return None
    if not has_validation:
        raise ValueError("early stopping watches validation accuracy: give the Trainer a validation set")
    if isinstance(early_stopping, EarlyStopping):
        return early_stopping
    return EarlyStopping(early_stopping)


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
