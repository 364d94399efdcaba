"""What the dlscratch command's parts share: user errors, the data sets, memory checks.

A UsageError is a problem with what the user asked for; dlscratch.cli.main reports it on
stderr after "dlscratch:" with exit status 2. Library ValueErrors about what the user gave
(options, data, files) become UsageErrors through as_usage_error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from dlscratch import footprint
from dlscratch.datasets import (
    DATASETS,
    DatasetNotFoundError,
    installed_datasets,
    load_fashion_mnist,
    load_mnist,
)
from dlscratch.datasets.mnist import FILES
from dlscratch.layers import Affine, Convolution

LOADERS = {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist}
INPUT_SCALE = 1 / 255  # uint8 pixels to [0, 1], batch by batch


class UsageError(Exception):
    """A problem with what the user asked for: reported on stderr, exit status 2."""


def option_name(key: str) -> str:
    """The command-line option of an argparse destination: hidden_sizes -> --hidden-sizes."""
    return "--" + key.replace("_", "-")


@contextmanager
def as_usage_error(prefix: str = "") -> Iterator[None]:
    """Report the ValueError a library call raises about what the user gave (options, data,
    files) as a UsageError; a ValueError anywhere else stays what it is, a bug."""
    try:
        yield
    except ValueError as error:
        raise UsageError(f"{prefix}{error}") from None


def takes_images(network: Any) -> bool:
    """True when the network's first weighted layer is a convolution (input (N, C, H, W))."""
    first = next(
        (layer for layer in network.layers.values() if isinstance(layer, (Affine, Convolution))), None
    )
    return isinstance(first, Convolution)


def float_dtype(network: Any) -> np.dtype:
    """The dtype of the network's parameters (float64 for a network without any)."""
    return np.result_type(*network.params.values()) if network.params else np.dtype(np.float64)


def load_data(
    args: argparse.Namespace, dataset: str, dtype: np.dtype | None, images: bool
) -> tuple[np.ndarray, ...]:
    """x_train, t_train, x_test, t_test; x as (N, 1, 28, 28) images or (N, 784) rows.

    dtype: x in [0, 1] as that dtype; None keeps the uint8 pixels (for Trainer's input_scale).
    """
    try:
        with as_usage_error():
            (x_train, t_train), (x_test, t_test) = LOADERS[dataset](
                normalize=dtype is not None,
                flatten=not images,
                data_dir=args.data_dir,
                download=not args.no_download,
            )
    except DatasetNotFoundError as error:
        raise UsageError(_missing_data_message(error, args, dataset)) from None
    if dtype is not None:
        x_train, x_test = x_train.astype(dtype, copy=False), x_test.astype(dtype, copy=False)
    return x_train, t_train, x_test, t_test


def _missing_data_message(error: DatasetNotFoundError, args: argparse.Namespace, dataset: str) -> str:
    """A short first line, then what the user can do about it, in the command line's words."""
    spec = DATASETS[dataset]
    if getattr(args, "resume", None) is not None:
        why = "a resume never downloads (the run had its data)"
    elif args.no_download:
        why = "--no-download forbids fetching it"
    else:
        why = "downloading it failed (no network?)"
    lines = [f"{spec.title} is not on this machine, and {why}."]
    lines.append(f"  looked in: {', '.join(map(str, error.looked_in))}")
    lines.append(
        f"  files of your own: --data-dir FOLDER (holding {', '.join(FILES)}), or set DLSCRATCH_DATA_DIR"
    )
    others = [name for name in installed_datasets() if name != dataset]
    for other in others:
        drop = " (without --data-dir)" if args.data_dir is not None else ""
        lines.append(f"  {DATASETS[other].title} is installed here: use --dataset {other}{drop}")
    if spec.hint:
        lines.append(f"  {spec.hint}")
    if not args.no_download:
        lines.extend(f"  {line.strip()}" for line in error.reason.splitlines())
    return "\n".join(lines)


def check_memory(network: Any, sample_shape: tuple[int, ...], batch_size: int, dtype: Any, what: str) -> None:
    """UsageError when a batch of batch_size samples would need more memory than is
    available, or when the network's layers cannot take such samples."""
    with as_usage_error("the model does not fit the data: "):
        need = footprint.batch_bytes(network, sample_shape, batch_size, dtype)
    available = footprint.available_memory()
    if available is not None and need > available:
        raise UsageError(
            f"{what} of {batch_size} samples needs about {footprint.format_bytes(need)} of memory for its "
            f"activations, more than the {footprint.format_bytes(available)} available"
        )


def say(message: str) -> None:
    """message on stderr after "dlscratch: ": its first line's spacing made even, its other
    lines (the details of a missing data set) kept as they are."""
    first, *rest = message.split("\n")
    print("\n".join([f"dlscratch: {' '.join(first.split())}", *rest]), file=sys.stderr)
