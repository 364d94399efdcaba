import numpy as np
import pytest

from dlscratch import MultiLayerNetExtend, TwoLayerNet
from dlscratch.augment import RandomFlip
from dlscratch.schedules import CosineDecay, StepDecay
from dlscratch.train import DivergenceError, History, NonFiniteLossError, NonFiniteWeightsError, Trainer
from dlscratch.validation import EarlyStopping


@pytest.fixture
def data(rng):
    """A learnable toy problem: the label is the index of the largest of the first 3 inputs."""
    x = rng.random((120, 8))
    t = x[:, :3].argmax(axis=1)
    return x[:90], t[:90], x[90:], t[90:]


def _trainer(data, **options):
    network = TwoLayerNet(8, 16, 3, weight_init_std=0.3, seed=options.pop("net_seed", 0))
    defaults = {
        "epochs": 3,
        "mini_batch_size": 30,
        "optimizer_param": {"lr": 0.5},
        "verbose": False,
        "seed": 0,
    }
    return Trainer(network, *data, **{**defaults, **options})


def test_learns_and_records_the_book_lists(data):
    trainer = _trainer(data, epochs=100)
    history = trainer.train()
    assert isinstance(history, History)
    assert len(history.train_loss) == trainer.max_iter == 300
    assert history.test_acc[-1] > 0.8
    assert history.train_loss[-1] < history.train_loss[0]
    assert trainer.train_loss_list is history.train_loss and history.test_acc_list is history.test_acc


@pytest.mark.parametrize("sampling", ["replacement", "shuffle"])
def test_seeded_runs_repeat_bit_for_bit(data, sampling):
    a, b = _trainer(data, sampling=sampling), _trainer(data, sampling=sampling)
    a.train(), b.train()
    assert a.history.train_loss == b.history.train_loss
    for key in a.network.params:
        assert np.array_equal(a.network.params[key], b.network.params[key])


def test_exact_epoch_accounting_when_the_batch_does_not_divide(data):
    # 90 samples, batch 40: epochs end inside iterations 3, 5 and 7 (120, 200, 280 samples seen)
    trainer = _trainer(data, epochs=3, mini_batch_size=40)
    history = trainer.train()
    assert trainer.max_iter == 7  # ceil(3 * 90 / 40)
    assert history.iterations == [0, 3, 5, 7]
    assert history.epochs == [
        0.0,
        pytest.approx(120 / 90, abs=1e-4),
        pytest.approx(200 / 90, abs=1e-4),
        pytest.approx(280 / 90, abs=1e-4),
    ]
    assert len(history.train_acc) == len(history.test_acc) == 4


def test_iters_overrides_epochs_and_a_final_partial_epoch_is_evaluated(data):
    history = _trainer(data, iters=4).train()  # 90 / 30 = 3 iterations per epoch
    assert history.iterations == [0, 3, 4]


def test_shuffle_sees_every_sample_once_per_epoch(data):
    trainer = _trainer(data, sampling="shuffle")
    seen = np.concatenate([trainer._next_batch_indices() for trainer.current_iter in range(3)])
    assert sorted(seen) == list(range(90))


def test_evaluate_sample_num_and_callbacks(data):
    calls = []
    trainer = _trainer(
        data, evaluate_sample_num_per_epoch=10, callbacks=[lambda tr: calls.append(tr.current_iter)]
    )
    evaluated = []
    real_accuracy = trainer.network.accuracy
    trainer.network.accuracy = lambda x, t: evaluated.append(len(x)) or real_accuracy(x, t)
    trainer.train()
    # every evaluation on the first 10 samples; then, as the book's Trainer, the whole test set
    assert set(evaluated[:-1]) == {10} and evaluated[-1] == len(trainer.x_test)
    assert trainer.final_test_acc == real_accuracy(trainer.x_test, trainer.t_test)
    assert calls == list(range(1, trainer.max_iter + 1))


def test_final_accuracy_reuses_an_evaluation_of_the_whole_test_set(data):
    trainer = _trainer(data)
    trainer.train()
    assert trainer.final_test_acc == trainer.history.test_acc[-1]


def test_one_forward_pass_per_step(data):
    trainer = _trainer(data, iters=2)
    calls = []
    loss_layer = trainer.network.lastLayer
    real_forward = loss_layer.forward
    loss_layer.forward = lambda y, t: calls.append(len(y)) or real_forward(y, t)
    trainer.train_step()
    assert calls == [trainer.batch_size]


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # inf - inf in the softmax, on purpose
def test_stops_at_the_first_non_finite_loss_keeping_the_last_good_weights(data):
    def poison_after_step_3(trainer):
        if trainer.current_iter == 3:  # as if an update had overflowed
            trainer.network.params["b2"][0] = np.inf

    trainer = _trainer(data, callbacks=[poison_after_step_3])
    with pytest.raises(
        NonFiniteLossError, match=r"loss became nan at iteration 3.*smaller learning rate"
    ) as caught:
        trainer.train()
    assert caught.value.iteration == 3
    assert len(trainer.history.train_loss) == 3
    assert np.isfinite(trainer.network.params["W1"]).all()  # the failing step updated nothing


def test_book_style_network_without_loss_and_gradient(data):
    class BookNet:
        def __init__(self):
            self.inner = TwoLayerNet(8, 16, 3, weight_init_std=0.3, seed=0)
            self.params = self.inner.params

        def gradient(self, x, t):
            return self.inner.gradient(x, t)

        def loss(self, x, t):
            return self.inner.loss(x, t)

        def accuracy(self, x, t):
            return self.inner.accuracy(x, t)

    history = Trainer(BookNet(), *data, epochs=2, mini_batch_size=30, verbose=False, seed=0).train()
    assert len(history.train_loss) == 6


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mini_batch_size": 0}, "mini_batch_size"),
        ({"sampling": "random"}, "sampling"),
        ({"epochs": 0}, "epochs"),
        ({"iters": 0}, "iters"),
        ({"optimizer": "adamw"}, "unknown optimizer"),
        ({"optimizer_param": {"lr": -1}}, "learning rate"),
        ({"optimizer_param": {"learning_rate": 0.1}}, "unexpected keyword"),
    ],
)
def test_rejects_bad_settings(data, options, message):
    with pytest.raises(ValueError, match=message):
        _trainer(data, **options)


def test_rejects_mismatched_or_empty_splits(data):
    x, t, xt, tt = data
    network = TwoLayerNet(8, 4, 3)
    with pytest.raises(ValueError, match="90 samples but 89 labels"):
        Trainer(network, x, t[:-1], xt, tt)
    with pytest.raises(ValueError, match="test split is empty"):
        Trainer(network, x, t, xt[:0], tt[:0])


def test_verbose_prints_a_line_per_epoch(data, capsys):
    _trainer(data, verbose=True, progress=False).train()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("epoch 0: train acc")
    assert len([line for line in lines if line.startswith("epoch")]) == 4
    assert lines[-1].startswith("final test accuracy (all 30 test samples): ")


def test_the_loss_of_an_epoch_is_the_mean_of_its_iterations(data, capsys):
    """Not the last batch's loss, which jumps from batch to batch (issue 11)."""
    trainer = _trainer(data, epochs=3, mini_batch_size=40, verbose=True, progress=False)  # 90 / 40
    history = trainer.train()
    means = history.epoch_losses()
    assert means[0] is None
    for previous, iteration, mean in zip(
        history.iterations[:-1], history.iterations[1:], means[1:], strict=True
    ):
        assert mean == pytest.approx(np.mean(history.train_loss[previous:iteration]), rel=1e-12)
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert printed[1].startswith(f"epoch {history.epochs[1]:g}: mean loss {means[1]:.4f}, train acc")


def test_time_is_counted_as_it_passes_so_checkpoints_hold_it(data):
    seen = []
    trainer = _trainer(data, iters=5, callbacks=[lambda tr: seen.append(tr.history.seconds)])
    trainer.train()
    assert 0 < seen[0] < seen[-1] <= trainer.history.seconds


# ---------------------------------------------------------------- the guard checks the weights too


def _state_of(trainer):
    """Copies of everything a step changes: params, buffers, optimizer slots and step count."""
    params = {k: v.copy() for k, v in trainer.network.params.items()}
    buffers = {
        (name, key): array.copy()
        for name, layer in trainer.network.layers.items()
        for key, array in getattr(layer, "buffers", {}).items()
    }
    return params, buffers, trainer.optimizer.state_dict()


def _assert_state(trainer, state):
    params, buffers, optimizer = state
    for key, value in params.items():
        assert np.array_equal(trainer.network.params[key], value), key
    for (name, key), value in buffers.items():
        assert np.array_equal(trainer.network.layers[name].buffers[key], value), (name, key)
    now = trainer.optimizer.state_dict()
    assert now["step_count"] == optimizer["step_count"]
    assert now["slots"].keys() == optimizer["slots"].keys()
    for slot, arrays in optimizer["slots"].items():
        assert now["slots"][slot].keys() == arrays.keys()
        for key, value in arrays.items():
            assert np.array_equal(now["slots"][slot][key], value), (slot, key)


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
@pytest.mark.parametrize("optimizer", ["SGD", "Momentum", "Adam"])
@pytest.mark.parametrize("first_step", [True, False], ids=["first step", "fourth step"])
def test_an_update_that_overflows_float32_is_undone(data, optimizer, first_step):
    """lr = 1e39 turns float32 weights into inf in one update while the loss was finite: the
    step is undone, so "the weights are from the step before" holds (it did not before)."""
    x, t, x_test, t_test = (a.astype(np.float32) if a.dtype.kind == "f" else a for a in data)
    network = MultiLayerNetExtend(8, [16], 3, use_batchnorm=True, seed=0, dtype=np.float32)
    trainer = Trainer(network, x, t, x_test, t_test, iters=10, mini_batch_size=30, optimizer=optimizer,
                      optimizer_param={"lr": 0.01}, verbose=False, seed=0)  # fmt: skip
    if not first_step:
        for _ in range(3):
            trainer.train_step()
    before = _state_of(trainer)
    trainer.optimizer.lr = 1e39
    with pytest.raises(
        NonFiniteWeightsError, match=r"made W\d NaN or infinite .* the weights are from the step before"
    ) as caught:
        trainer.train_step()
    assert isinstance(caught.value, NonFiniteLossError)  # what callers already catch
    assert trainer.current_iter == caught.value.iteration == (0 if first_step else 3)
    _assert_state(trainer, before)
    assert len(trainer.history.train_loss) == trainer.current_iter


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_the_weight_check_sees_every_non_finite_value_and_only_those():
    # its fast test is the array's sum; finite weights whose sum overflows are still finite
    from dlscratch.train import _all_finite

    huge = np.full(4, np.finfo(np.float32).max, np.float32)
    assert not np.isfinite(huge.sum())
    assert _all_finite(huge)
    assert _all_finite(np.zeros(0, np.float32))
    for bad in (np.inf, -np.inf, np.nan):
        for where in (0, 3):
            weights = np.ones(4, np.float32)
            weights[where] = bad
            assert not _all_finite(weights)
        huge_and_bad = huge.copy()
        huge_and_bad[1] = bad
        assert not _all_finite(huge_and_bad)


@pytest.mark.filterwarnings("ignore:invalid value encountered", "ignore:overflow encountered")
def test_a_non_finite_loss_leaves_the_running_statistics_as_they_were(data):
    x, t, x_test, t_test = data
    network = MultiLayerNetExtend(8, [16], 3, use_batchnorm=True, seed=0)
    trainer = Trainer(
        network, x.copy(), t, x_test, t_test, iters=10, mini_batch_size=90, verbose=False, seed=0
    )
    trainer.train_step()
    before = _state_of(trainer)
    trainer.x_train[:] = np.inf  # the forward pass moves the running mean before the loss is seen
    with pytest.raises(NonFiniteLossError):
        trainer.train_step()
    _assert_state(trainer, before)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"epochs": float("inf")}, "epochs must be a finite number > 0"),
        ({"epochs": float("nan")}, "epochs must be a finite number > 0"),
        ({"epochs": "3"}, "epochs must be a finite number > 0"),
        ({"epochs": 1e308}, "more than 2\\*\\*63 iterations"),
        ({"iters": 2**63}, "iters must be a positive int below 2\\*\\*63"),
        ({"mini_batch_size": 91}, "mini_batch_size 91 is larger than the training set \\(90 samples\\)"),
        ({"mini_batch_size": 100, "sampling": "shuffle"}, "larger than the training set"),
    ],
)
def test_rejects_absurd_lengths(data, options, message):
    with pytest.raises(ValueError, match=message):
        _trainer(data, **options)


# ---------------------------------------------------------------- validation, early stopping


def test_a_validation_split_is_scored_each_epoch_and_the_test_set_at_the_end(data):
    evaluated = []
    trainer = _trainer(data, validation=0.2, epochs=2)
    real_accuracy = trainer.network.accuracy
    trainer.network.accuracy = lambda x, t: evaluated.append(len(x)) or real_accuracy(x, t)
    history = trainer.train()
    assert trainer.train_size == 72 and len(trainer.x_val) == 18  # 20% of each class held out
    assert len(history.val_acc) == len(history.train_acc) == 3 and history.test_acc == []
    assert evaluated.count(30) == 1  # the 30 test samples: once, at the end
    assert trainer.final_test_acc == real_accuracy(trainer.x_test, trainer.t_test)


def test_test_each_epoch_and_a_validation_pair(data):
    x_test, t_test = data[2:]
    trainer = _trainer(data, validation=(x_test[:10], t_test[:10]), test_each_epoch=True, epochs=2)
    history = trainer.train()
    assert trainer.train_size == 90 and len(history.val_acc) == len(history.test_acc) == 3


def test_early_stopping_stops_and_the_network_ends_with_the_best_weights(data):
    """Validation labels shuffled: its accuracy wanders, so patience 2 runs out."""
    x, t, x_test, t_test = data
    shuffled = np.random.default_rng(1).permutation(t[:40])
    seen = {}

    def keep_weights(trainer):
        if trainer.history.iterations[-1] == trainer.current_iter:
            seen[trainer.current_iter] = {k: v.copy() for k, v in trainer.network.params.items()}

    trainer = Trainer(TwoLayerNet(8, 16, 3, weight_init_std=0.3, seed=0), x[40:], t[40:], x_test, t_test,
                      mini_batch_size=10, optimizer_param={"lr": 0.5}, verbose=False, seed=0, epochs=30,
                      validation=(x[:40], shuffled), early_stopping=2, callbacks=[keep_weights])  # fmt: skip
    seen[0] = {k: v.copy() for k, v in trainer.network.params.items()}
    history = trainer.train()
    assert trainer.stopped_early and trainer.finished and trainer.current_iter < trainer.max_iter
    best = int(np.argmax(history.val_acc))  # the first of the highest: later ties are no improvement
    assert len(history.val_acc) == best + 3  # two evaluations after the best, then the stop
    assert trainer.early_stopping.best_iteration == history.iterations[best]
    for key, value in trainer.network.params.items():
        assert np.array_equal(value, seen[history.iterations[best]][key]), key
    assert trainer.final_test_acc == trainer.network.accuracy(x_test, t_test)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"validation": "some"}, "validation must be a fraction or a pair"),
        ({"validation": 1.5}, "strictly between 0 and 1"),
        ({"early_stopping": 3}, "early stopping watches validation accuracy"),
        (
            {"validation": 0.2, "early_stopping": EarlyStopping(2), "lr_schedule": "cosine"},
            "lr_schedule must be",
        ),
        ({"augment": "flip"}, "augment must be a function"),
        ({"divergence_factor": 1.0}, "divergence_factor must be a number > 1"),
    ],
)
def test_bad_extras_are_refused(data, options, message):
    with pytest.raises(ValueError, match=message):
        _trainer(data, **options)


# ---------------------------------------------------------------- schedules and augmentation


@pytest.mark.parametrize("schedule", [StepDecay(1, gamma=0.5), CosineDecay(3)])
def test_the_schedule_sets_each_steps_rate_from_the_fractional_epoch(data, schedule):
    used = []
    trainer = _trainer(data, epochs=3, mini_batch_size=40, lr_schedule=schedule,
                       callbacks=[lambda tr: used.append(tr.optimizer.lr)])  # fmt: skip
    trainer.train()
    expected = [0.5 * schedule.factor(i * 40 / 90) for i in range(trainer.max_iter)]
    assert used == pytest.approx(expected, rel=1e-15)
    assert trainer.state_dict()["optimizer"]["hyperparameters"]["lr"] == 0.5  # the start, not the last


def test_augmentation_changes_each_batch_before_it_is_scaled(data):
    """A flip of every image, applied to the uint8 batch, trains as data flipped beforehand."""
    x = (data[0] * 255).astype(np.uint8).reshape(90, 1, 2, 4)
    flipped = x[:, :, :, ::-1].copy()
    seen = []

    class Spy(RandomFlip):
        def apply(self, images):
            seen.append(images.dtype)
            return super().apply(images)

    def run(x_train, augment):
        network = TwoLayerNet(8, 16, 3, weight_init_std=0.3, seed=0)
        trainer = Trainer(network, x_train.reshape(90, 8), data[1], (data[2] * 255).astype(np.uint8), data[3],
                          iters=6, mini_batch_size=30, optimizer_param={"lr": 0.5}, verbose=False, seed=0,
                          input_scale=1 / 255, augment=augment)  # fmt: skip
        return trainer.train().train_loss

    assert run(x, Spy(image_shape=(1, 2, 4), p=1.0, seed=0)) == run(flipped, None)
    assert seen == [np.dtype(np.uint8)] * 6


# ---------------------------------------------------------------- divergence


class ScriptedLoss:
    """A network whose loss follows a script and whose gradient is zero."""

    def __init__(self, losses):
        self.params = {"W": np.zeros(1)}
        self.losses = iter(losses)

    def gradient(self, x, t):
        return {"W": np.zeros(1)}

    def loss(self, x, t):
        return next(self.losses)

    def accuracy(self, x, t):
        return 0.5


@pytest.mark.parametrize(("later", "diverges"), [(4.2, True), (4.1, False)])
def test_divergence_is_the_mean_of_20_losses_past_4_times_the_first(data, later, diverges):
    """(1 + 19 * 4.2) / 20 = 4.04 > 4; (1 + 19 * 4.1) / 20 = 3.945 is not."""
    network = ScriptedLoss([1.0] + [later] * 40)
    trainer = Trainer(network, *data, iters=20, mini_batch_size=30, verbose=False, seed=0)
    if not diverges:
        trainer.train()
        return
    message = (
        r"at iteration 20: the mean loss of the last 20 iterations is 4\.04, more than 4 times the first"
    )
    with pytest.raises(DivergenceError, match=message):
        trainer.train()
    assert trainer.current_iter == 20 and len(trainer.history.train_loss) == 20


def test_the_divergence_check_can_be_turned_off_or_loosened(data):
    for options in ({"divergence_factor": None}, {"divergence_factor": 5.0}):
        Trainer(ScriptedLoss([1.0] + [4.5] * 30), *data, iters=20, mini_batch_size=30, verbose=False,
                seed=0, **options).train()  # fmt: skip


def test_a_huge_learning_rate_stops_as_divergence(data):
    trainer = _trainer(data, optimizer_param={"lr": 1e4}, iters=200)
    with pytest.raises(DivergenceError) as caught:
        trainer.train()
    assert caught.value.iteration == 20 and caught.value.loss > 4 * caught.value.start


# ---------------------------------------------------------------- stopping on request


def test_a_requested_stop_ends_after_the_step_and_train_continues_bit_for_bit(data):
    straight = _trainer(data, sampling="shuffle", optimizer="Adam", optimizer_param={"lr": 0.05})
    straight.train()

    def stop_at_4(trainer):
        if trainer.current_iter == 4:
            trainer.request_stop()

    stopped = _trainer(data, sampling="shuffle", optimizer="Adam", optimizer_param={"lr": 0.05},
                       callbacks=[stop_at_4])  # fmt: skip
    stopped.train()
    assert stopped.interrupted and stopped.current_iter == 4 and stopped.final_test_acc is None
    stopped.train()
    assert not stopped.interrupted and stopped.finished
    assert stopped.history.to_dict() | {"seconds": 0} == straight.history.to_dict() | {"seconds": 0}
    for key, value in straight.network.params.items():
        assert np.array_equal(stopped.network.params[key], value), key


def test_a_stop_during_an_evaluation_abandons_it_and_the_next_train_redoes_it(data):
    straight = _trainer(data)
    straight.train()
    trainer = _trainer(data)
    real_accuracy = trainer.network.accuracy
    calls = []

    def accuracy(x, t):
        calls.append(trainer.current_iter)
        if len(calls) == 3:  # the epoch 1 evaluation, on its train split
            trainer.request_stop()
        return real_accuracy(x, t)

    trainer.network.accuracy = accuracy
    trainer.train()
    assert trainer.interrupted and trainer.current_iter == 3 and trainer.history.iterations == [0]
    trainer.train()
    assert trainer.history.iterations == straight.history.iterations == [0, 3, 6, 9]
    assert trainer.history.test_acc == straight.history.test_acc
