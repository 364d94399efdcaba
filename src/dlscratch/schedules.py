"""Learning-rate schedules: the rate as a function of how far training has come.

A schedule gives a factor for each (fractional) epoch; the Trainer multiplies the
optimizer's starting rate by it before every step. A schedule keeps no state of its own:
the rate at any step follows from the step alone, so a resumed run continues on the same
curve, and a checkpoint only needs the schedule's settings (``config()``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ConstantRate", "CosineDecay", "Schedule", "StepDecay", "schedule_from_config"]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class Schedule:
    """Base of the schedules: ``factor(epoch)`` scales the starting learning rate."""

    def factor(self, epoch: float) -> float:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """The schedule as JSON data: its name and settings (see schedule_from_config)."""
        return {"name": type(self).__name__, **asdict(self)}


@dataclass(frozen=True)
class ConstantRate(Schedule):
    """The starting rate throughout (what training without a schedule does)."""

    def factor(self, epoch: float) -> float:
        return 1.0


@dataclass(frozen=True)
class StepDecay(Schedule):
    """lr = lr0 * gamma ** floor(epoch / step_epochs): divided by 1/gamma every step_epochs epochs.

    Parameters
    ----------
    step_epochs : float
        The epochs between two decays, finite and > 0 (a fraction of an epoch too).
    gamma : float, default 0.1
        What each decay multiplies the rate by, in (0, 1].

    Raises
    ------
    ValueError
        For a step_epochs or gamma out of range.
    """

    step_epochs: float
    gamma: float = 0.1

    def __post_init__(self) -> None:
        _check(
            math.isfinite(self.step_epochs) and self.step_epochs > 0,
            f"step_epochs must be > 0, got {self.step_epochs!r}",
        )
        _check(0 < self.gamma <= 1, f"gamma must lie in (0, 1], got {self.gamma!r}")

    def factor(self, epoch: float) -> float:
        return self.gamma ** math.floor(epoch / self.step_epochs)


@dataclass(frozen=True)
class CosineDecay(Schedule):
    """A half cosine from lr0 down to lr0 * min_factor over total_epochs; the final rate after.

    lr = lr0 * (min_factor + (1 - min_factor) * (1 + cos(pi * epoch / total_epochs)) / 2)

    Parameters
    ----------
    total_epochs : float
        The epochs the decay takes, finite and > 0.
    min_factor : float, default 0.0
        The final rate as a fraction of the starting one, in [0, 1].

    Raises
    ------
    ValueError
        For a total_epochs or min_factor out of range.
    """

    total_epochs: float
    min_factor: float = 0.0

    def __post_init__(self) -> None:
        _check(
            math.isfinite(self.total_epochs) and self.total_epochs > 0,
            f"total_epochs must be > 0, got {self.total_epochs!r}",
        )
        _check(0 <= self.min_factor <= 1, f"min_factor must lie in [0, 1], got {self.min_factor!r}")

    def factor(self, epoch: float) -> float:
        progress = min(epoch / self.total_epochs, 1.0)
        return self.min_factor + (1 - self.min_factor) * (1 + math.cos(math.pi * progress)) / 2


_BY_NAME = {cls.__name__: cls for cls in (ConstantRate, StepDecay, CosineDecay)}


def schedule_from_config(config: Any) -> Schedule:
    """The schedule that ``config()`` described; ValueError for an unknown name or bad settings."""
    if not isinstance(config, dict) or config.get("name") not in _BY_NAME:
        raise ValueError(f"unknown learning-rate schedule {config!r}; known: {', '.join(sorted(_BY_NAME))}")
    settings = {key: value for key, value in config.items() if key != "name"}
    try:
        return _BY_NAME[config["name"]](**settings)
    except TypeError as error:
        raise ValueError(f"bad settings for {config['name']}: {error}") from None
