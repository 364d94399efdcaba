"""Shared fixtures: a seeded generator and the optional PyTorch oracle."""

from __future__ import annotations

import os

import numpy as np
import pytest


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
