"""The book's own programs on dlscratch: its ``common`` and ``dataset`` packages, module for module.

The book's scripts (github.com/oreilly-japan/deep-learning-from-scratch) import
``common.layers``, ``common.optimizer``, ``dataset.mnist`` and so on. This package holds
one module of the same name for each, giving the same names with the book's signatures:

    common.functions              -> dlscratch.book.common.functions
    common.gradient               -> dlscratch.book.common.gradient
    common.layers                 -> dlscratch.book.common.layers
    common.multi_layer_net        -> dlscratch.book.common.multi_layer_net
    common.multi_layer_net_extend -> dlscratch.book.common.multi_layer_net_extend
    common.optimizer              -> dlscratch.book.common.optimizer
    common.trainer                -> dlscratch.book.common.trainer
    common.util                   -> dlscratch.book.common.util
    dataset.mnist                 -> dlscratch.book.dataset.mnist

Most names are dlscratch's own classes and functions. Where dlscratch departs from the
book on purpose (see README), these modules give the book's arithmetic instead, so a book
script prints the book's numbers: SoftmaxWithLoss adds the book's 1e-7 inside the log,
BatchNormalization keeps the book's statistics, Adam takes the book's form of the step,
Trainer follows the book's schedule and prints its lines.

Run a book script unchanged with ``python -m dlscratch.book SCRIPT.py [ARGS...]``, or call
``install_aliases()`` in a notebook before ``from common.layers import *``.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["BOOK_MODULES", "install_aliases"]

# the book's module name -> the dlscratch module that stands in for it
BOOK_MODULES = {
    "common": "dlscratch.book.common",
    **{
        f"common.{name}": f"dlscratch.book.common.{name}"
        for name in (
            "functions",
            "gradient",
            "layers",
            "multi_layer_net",
            "multi_layer_net_extend",
            "optimizer",
            "trainer",
            "util",
        )
    },
    "dataset": "dlscratch.book.dataset",
    "dataset.mnist": "dlscratch.book.dataset.mnist",
}


def install_aliases() -> None:
    """Make ``import common.layers``, ``from dataset.mnist import load_mnist``, ... import dlscratch's.

    Registers each of BOOK_MODULES under the book's name in sys.modules, so Python finds
    it there before looking for files (a book checkout's own common/ folder included).
    """
    for alias, target in BOOK_MODULES.items():
        sys.modules[alias] = importlib.import_module(target)
