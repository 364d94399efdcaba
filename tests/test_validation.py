"""The validation split keeps each class's share and repeats with its seed; early stopping
counts evaluations without improvement and keeps copies of the best weights."""

from __future__ import annotations

import numpy as np
import pytest

from dlscratch.validation import EarlyStopping, split_validation


def test_each_class_gives_its_share_and_the_parts_partition_the_set(rng):
    t = np.repeat(np.arange(4), [50, 30, 20, 100])
    x = np.arange(len(t)) * 10.0  # a sample's value names it
    x_train, t_train, x_val, t_val = split_validation(x, t, 0.1, seed=3)
    assert np.bincount(t_val).tolist() == [5, 3, 2, 10]
    assert sorted(np.concatenate([x_train, x_val]).tolist()) == x.tolist()
    assert np.all(np.diff(x_train) > 0) and np.all(np.diff(x_val) > 0)  # original order kept
    assert np.array_equal(t_train, t[np.isin(x, x_train)]) and np.array_equal(t_val, t[np.isin(x, x_val)])


def test_the_seed_fixes_the_split_and_one_hot_labels_work(rng):
    x = rng.random((60, 3))
    t = np.eye(3)[np.arange(60) % 3]
    first, again, other = (split_validation(x, t, 0.25, seed=s) for s in (0, 0, 1))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[2], other[2])
    assert first[3].shape == (15, 3) and first[3].sum(axis=0).tolist() == [5, 5, 5]


def test_a_class_of_two_or_more_always_gives_one_and_keeps_one():
    t = np.array([0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2])
    _, t_train, _, t_val = split_validation(np.zeros((11, 2)), t, 0.01)
    assert sorted(t_val.tolist()) == [0, 1] and 2 in t_train  # a class of one stays in training


@pytest.mark.parametrize(
    ("fraction", "t", "message"),
    [
        (0.0, np.arange(4), "strictly between 0 and 1"),
        (1.0, np.arange(4), "strictly between 0 and 1"),
        (True, np.arange(4), "strictly between 0 and 1"),
        (0.5, np.arange(3), "4 samples but 3 labels"),
        (0.4, np.arange(4), "leaves no validation samples"),
    ],
)
def test_impossible_splits_are_refused(fraction, t, message):
    with pytest.raises(ValueError, match=message):
        split_validation(np.zeros((4, 2)), t, fraction)


def test_early_stopping_counts_evaluations_without_improvement_and_keeps_the_best():
    stopping = EarlyStopping(patience=2, min_delta=0.01)
    weights = {"W": np.zeros(3)}
    for iteration, accuracy in enumerate([0.5, 0.7, 0.705, 0.69]):
        weights["W"][:] = iteration
        stopping.update(accuracy, iteration * 10, weights)
        assert not stopping.stopped or iteration == 3
    assert stopping.stopped and stopping.wait == 2  # 0.705 is no improvement by more than 0.01
    assert stopping.best_acc == 0.7 and stopping.best_iteration == 10
    stopping.restore(weights)
    assert weights["W"].tolist() == [1, 1, 1]
    assert stopping.best_arrays["W"] is not weights["W"]


def test_early_stopping_state_round_trips():
    stopping = EarlyStopping(3)
    stopping.update(0.4, 5, {"W": np.ones(2)})
    stopping.update(0.3, 10, {"W": np.zeros(2)})
    copy = EarlyStopping(3)
    copy.load_state_dict(stopping.state_dict())
    assert (copy.best_acc, copy.best_iteration, copy.wait) == (0.4, 5, 1)
    assert copy.best_arrays["W"].tolist() == [1, 1]


@pytest.mark.parametrize(
    ("options", "message"),
    [({"patience": 0}, "patience of at least 1"), ({"patience": 2, "min_delta": -1}, "min_delta")],
)
def test_bad_early_stopping_settings_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        EarlyStopping(**options)
