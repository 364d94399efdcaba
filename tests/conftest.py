"""Shared fixtures: a seeded generator and the optional PyTorch oracle; the fuzz profile.

Fuzz tests take their example count from a Hypothesis profile chosen by the environment:
DLSCRATCH_FUZZ_PROFILE=ci (the default: a quick run) or thorough (20,000 examples per test,
or DLSCRATCH_FUZZ_EXAMPLES of them), for example

    DLSCRATCH_FUZZ_PROFILE=thorough python -m pytest -q tests/test_fuzz_*.py
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Deterministic (the same examples every run, no example database) and without deadlines:
# a fuzz test's time is its examples' count, not a per-example bound on a shared machine.
# Fuzz tests share one scratch file per test, rewritten by each example, hence the check.
_FUZZ = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}
settings.register_profile("ci", max_examples=100, **_FUZZ)
settings.register_profile(
    "thorough", max_examples=int(os.environ.get("DLSCRATCH_FUZZ_EXAMPLES", "20000")), **_FUZZ
)
settings.load_profile(os.environ.get("DLSCRATCH_FUZZ_PROFILE", "ci"))


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory):
    """A folder of the four MNIST files, tiny (60 training and 20 test images of random
    pixels), for the command line's tests."""
    from _http import write_fake_mnist

    folder = tmp_path_factory.mktemp("tiny-mnist")
    write_fake_mnist(folder, n_train=60, n_test=20)
    return folder


@pytest.fixture
def rng() -> np.random.Generator:
    """A generator seeded the same for every test, so runs are repeatable."""
    return np.random.default_rng(20261126)


def require_or_skip(what: str, variable: str) -> None:
    """Skip a test for lack of `what`, or fail it when the environment variable is 1 (CI)."""
    if os.environ.get(variable) == "1":
        pytest.fail(f"{what} is missing but {variable}=1 requires it")
    pytest.skip(f"{what} is not available (set {variable}=1 to make this a failure)")


@pytest.fixture(scope="session")
def torch():
    """PyTorch in float64 on the CPU, or a skip (a failure when DLSCRATCH_REQUIRE_TORCH=1)."""
    try:
        import torch as torch_module
    except ImportError:
        require_or_skip("PyTorch", "DLSCRATCH_REQUIRE_TORCH")
    torch_module.set_num_threads(1)
    return torch_module
