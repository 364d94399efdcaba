import numpy as np
import pytest

from dlscratch import TwoLayerNet
from dlscratch.train import History, NonFiniteLossError, Trainer


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
