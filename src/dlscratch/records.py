"""JSON records read as untrusted input: each field checked for its kind and its range.

A model file's or checkpoint's record is JSON that anybody can edit. Every value taken from
one goes through ``field`` (or a helper built on it), so a wrong kind, a missing key, an
absurd number or an unknown name becomes one ValueError saying where, what was expected and
what came, never a KeyError or TypeError somewhere later.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Collection
from typing import Any, TypeVar

import numpy as np

__all__ = ["as_json_text", "choice", "field", "integer", "number", "or_none", "short", "to_json_data"]

T = TypeVar("T")

#: the largest counter a record may hold: what an int64 array or index can represent
MAX_COUNT = 2**63 - 1


def short(value: Any, limit: int = 80) -> str:
    """repr(value), cut to limit characters: error messages quote what a file says."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def field(mapping: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """mapping[key], checked to be of the given JSON kind (a bool is not an int here).

    ValueError saying what `where` needs when mapping is not a dict or the value is wrong.
    """
    if not isinstance(mapping, dict):
        raise ValueError(f"{where} must be a JSON object, got {short(mapping)}")
    kinds = kind if isinstance(kind, tuple) else (kind,)
    value = mapping.get(key)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise ValueError(
            f"{where} needs {key!r} as {' or '.join(k.__name__ for k in kinds)}, got {short(value)}"
        )
    return value


def integer(mapping: Any, key: str, where: str, minimum: int = 0, maximum: int = MAX_COUNT) -> int:
    """An int field within [minimum, maximum]."""
    value = field(mapping, key, int, where)
    if not minimum <= value <= maximum:
        raise ValueError(f"{where} needs {key!r} between {minimum} and {maximum}, got {short(value)}")
    return value


def number(
    mapping: Any, key: str, where: str, minimum: float = -math.inf, maximum: float = math.inf
) -> float:
    """A finite number field (int or float) within [minimum, maximum]."""
    value = field(mapping, key, (int, float), where)
    if not (math.isfinite(value) and minimum <= value <= maximum):
        raise ValueError(
            f"{where} needs {key!r} as a finite number in [{minimum}, {maximum}], got {short(value)}"
        )
    return value


def choice(mapping: Any, key: str, choices: Collection[str], where: str) -> str:
    """A string field that must be one of choices."""
    value = field(mapping, key, str, where)
    if value not in choices:
        raise ValueError(f"{where}: {key} {short(value)} is not one of {', '.join(map(repr, choices))}")
    return value


def or_none(read: Callable[..., T], mapping: Any, key: str, where: str, **limits: Any) -> T | None:
    """read(mapping, key, where, **limits), or None when the value is null; the key must be there."""
    if not isinstance(mapping, dict) or key not in mapping:
        raise ValueError(f"{where} has no {key!r}")
    return None if mapping[key] is None else read(mapping, key, where, **limits)


def _json_default(value: Any) -> Any:
    # NumPy scalars (np.int64 sizes, np.float32 rates) and paths are ordinary JSON values
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"a {type(value).__name__} is not JSON data")


def as_json_text(value: Any) -> str:
    """value as compact JSON text (NumPy scalars as numbers, paths as strings)."""
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def to_json_data(value: Any, what: str) -> Any:
    """value as it reads back from a file: plain dicts, lists, strings and numbers.

    NumPy scalars become numbers and paths strings; anything else is a ValueError naming what.
    """
    try:
        return json.loads(as_json_text(value))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what} must be JSON data: {error}") from None
