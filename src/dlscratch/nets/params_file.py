"""Reading a network's parameters from a file: a dlscratch model file or the book's pickles."""

from __future__ import annotations

import os

import numpy as np

__all__ = ["read_params"]


def read_params(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Entry name -> array, named as in a model file: "params/W1", "buffers/<layer>/<key>".

    path: a dlscratch model file (a zip archive: dlscratch.load reads it) or a pickle of a
    dict name -> array, as the book's save_params writes (params.pkl,
    deep_convnet_params.pkl), read by dlscratch.safe_pickle, which rebuilds only arrays and
    plain values. ValueError for anything else.
    """
    with open(path, "rb") as file:
        is_zip = file.read(4) == b"PK\x03\x04"
    if is_zip:
        from dlscratch.serialize import load, network_arrays

        return network_arrays(load(path))
    from dlscratch.safe_pickle import load_pickle

    data = load_pickle(path)
    if not isinstance(data, dict) or not all(
        isinstance(key, str) and isinstance(value, np.ndarray) for key, value in data.items()
    ):
        raise ValueError(
            f"{os.fspath(path)} is not a parameter file: expected a dict of name -> array, "
            f"got {type(data).__name__}"
        )
    return {f"params/{key}": value for key, value in data.items()}
