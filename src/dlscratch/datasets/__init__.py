"""Data sets: MNIST and Fashion-MNIST from their original IDX files, and the IDX format.

``load_mnist`` and ``load_fashion_mnist`` work as in the book; files are looked for locally
first and downloaded only when missing (see ``dlscratch.datasets.mnist``).

Errors: a malformed file raises ``ValueError`` naming it; files that are missing and
cannot be downloaded raise ``DatasetNotFoundError`` (a ``FileNotFoundError``, so an
``OSError``); ``download_file`` alone raises ``DownloadError`` (an ``OSError``).
"""

from dlscratch.datasets.download import DownloadError, download_file
from dlscratch.datasets.idx import read_idx, write_idx
from dlscratch.datasets.mnist import (
    DATASETS,
    DatasetNotFoundError,
    DatasetSpec,
    default_data_dir,
    installed_datasets,
    load_fashion_mnist,
    load_idx_dataset,
    load_mnist,
)

__all__ = [
    "DATASETS",
    "DatasetNotFoundError",
    "DatasetSpec",
    "DownloadError",
    "default_data_dir",
    "download_file",
    "installed_datasets",
    "load_fashion_mnist",
    "load_idx_dataset",
    "load_mnist",
    "read_idx",
    "write_idx",
]
