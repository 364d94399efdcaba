"""Learning-rate schedules: their curves, their checks, and their configs round trip."""

from __future__ import annotations

import itertools
import math

import pytest

from dlscratch.schedules import ConstantRate, CosineDecay, StepDecay, schedule_from_config


def test_step_decay_divides_the_rate_every_step_epochs():
    schedule = StepDecay(step_epochs=3, gamma=0.5)
    assert [schedule.factor(e) for e in (0, 2.99, 3, 5.5, 6, 9)] == [1, 1, 0.5, 0.5, 0.25, 0.125]


def test_cosine_decay_falls_from_one_to_min_factor_and_stays():
    schedule = CosineDecay(total_epochs=10, min_factor=0.1)
    assert schedule.factor(0) == 1.0
    assert schedule.factor(5) == pytest.approx(0.55)
    assert schedule.factor(10) == pytest.approx(0.1) == schedule.factor(25)
    values = [schedule.factor(e / 4) for e in range(41)]
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert CosineDecay(4).factor(1) == pytest.approx((1 + math.cos(math.pi / 4)) / 2)


@pytest.mark.parametrize("schedule", [ConstantRate(), StepDecay(2, 0.3), CosineDecay(12, 0.05)])
def test_config_rebuilds_the_same_schedule(schedule):
    assert schedule_from_config(schedule.config()) == schedule
    assert schedule.config()["name"] == type(schedule).__name__


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: StepDecay(0), "step_epochs must be > 0"),
        (lambda: StepDecay(2, gamma=1.5), r"gamma must lie in \(0, 1\]"),
        (lambda: CosineDecay(float("inf")), "total_epochs must be > 0"),
        (lambda: CosineDecay(5, min_factor=-0.1), r"min_factor must lie in \[0, 1\]"),
        (lambda: schedule_from_config({"name": "Exponential"}), "unknown learning-rate schedule"),
        (lambda: schedule_from_config({"name": "StepDecay", "steps": 2}), "bad settings for StepDecay"),
    ],
)
def test_bad_settings_raise(build, message):
    with pytest.raises(ValueError, match=message):
        build()
