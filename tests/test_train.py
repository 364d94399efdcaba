import numpy as np
import pytest

from dlscratch import MultiLayerNetExtend, TwoLayerNet
from dlscratch.train import History, NonFiniteLossError, NonFiniteWeightsError, Trainer


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
