"""The book's pretrained pickles read without running anything they name.

A pickle is a program: its GLOBAL and REDUCE instructions import and call whatever the
file names (``os.system`` as easily as ``numpy.dtype``). ``load_pickle`` runs it on a
restricted machine, in the spirit of ``torch.load(weights_only=True)``:

- Only the names NumPy's own pickling uses are ever resolved (``_reconstruct``, ``ndarray``,
  ``dtype``, ``scalar``, ``_frombuffer``, under ``numpy.core`` or ``numpy._core``; and for
  protocols 0-2 ``_codecs.encode`` to Latin-1 and ``bytes()``), each to a stand-in written
  here; nothing is imported. Anything else is refused by name before it could run.
- Every array is rebuilt here from (shape, dtype, raw bytes) once those are checked: a plain
  number dtype (no objects), a shape whose byte size is exactly the data's, and all arrays
  together no bigger than the file (a memo reference cannot turn one stored buffer into a
  thousand arrays).
- Before the pickle machine runs, every instruction is scanned: declared lengths must lie
  within the file and memo indices must be ones an honest pickler writes, because CPython's
  unpickler allocates both up front (a 20-byte file could otherwise ask for gigabytes).

So memory stays within a small multiple of the file's size, whatever the file says.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import pickletools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from dlscratch.files import read_regular_file
from dlscratch.records import short as _short

__all__ = ["load_pickle"]

#: dtype names NumPy writes in a pickle for plain numbers (dtype.str without byte order)
_DTYPE_NAMES = frozenset(
    ["b1", "f2", "f4", "f8", "c8", "c16"] + [f"{kind}{size}" for kind in "iu" for size in (1, 2, 4, 8)]
)
_BYTE_ORDERS = frozenset("<>=|")
_MAX_NDIM = 64  # NumPy's own limit
# Instructions no NumPy pickle of plain data uses: they import classes (INST, OBJ, EXT*),
# create instances (NEWOBJ*), defer to outside objects (PERSID, NEXT_BUFFER) or build sets.
_REFUSED_OPCODES = frozenset(
    [
        "INST",
        "OBJ",
        "NEWOBJ",
        "NEWOBJ_EX",
        "EXT1",
        "EXT2",
        "EXT4",
        "PERSID",
        "BINPERSID",
        "NEXT_BUFFER",
        "READONLY_BUFFER",
        "EMPTY_SET",
        "ADDITEMS",
        "FROZENSET",
    ]
)
_PUT_OPCODES = frozenset(["PUT", "BINPUT", "LONG_BINPUT"])
# What a damaged or hostile pickle can make the unpickler, pickletools or a stand-in raise
_DAMAGE = (
    pickle.UnpicklingError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    EOFError,
    OverflowError,
    MemoryError,
    RecursionError,
)


class _RefusedError(ValueError):
    """The pickle asks for something this reader never does."""


def load_pickle(path: str | os.PathLike[str]) -> Any:
    """The object pickled at path, if it is built only of plain data.

    Plain data: NumPy arrays and scalars of bool, integer, float or complex dtype, dtypes,
    dicts, lists, tuples, strings, bytes, numbers, booleans and None (any pickle protocol,
    0 to 5, as NumPy 1 or 2 wrote it). Arrays come back writable, in native byte order and
    in the memory layout (C or Fortran) they were saved in.

    ValueError naming the file when the pickle names anything else (saying what, e.g. the
    global os.system; nothing it names is imported or run), or is damaged, truncated or
    inconsistent. OSError when path cannot be opened; ValueError when it is not a regular
    file (a FIFO would block).
    """
    data = read_regular_file(path)
    try:
        with warnings.catch_warnings():
            # protocol 0 strings go through codecs.escape_decode, which warns of odd escapes
            warnings.simplefilter("ignore", DeprecationWarning)
            _scan(data)
            loaded = _RestrictedUnpickler(data).load()
        return _resolve(loaded, {})
    except _RefusedError as error:
        raise ValueError(
            f"cannot load {os.fspath(path)}: {error}; only NumPy arrays, dtypes, dicts, lists, tuples, "
            "strings, bytes, numbers, booleans and None are read, and nothing a file names is run"
        ) from None
    except _DAMAGE as error:
        raise ValueError(
            f"cannot load {os.fspath(path)}: not a readable pickle ({type(error).__name__}: {error})"
        ) from None


# ---------------------------------------------------------------- the instruction scan


def _scan(data: bytes) -> None:
    """Check every instruction before any runs: refused opcodes, lengths, memo indices.

    pickletools reads each declared length's bytes and fails if they are not there, so a
    length that points past the file is caught here, before CPython would allocate it.
    """
    puts = 0
    stream = io.BytesIO(data)
    end = 0
    for opcode, argument, position in pickletools.genops(stream):
        name = opcode.name
        if name in _REFUSED_OPCODES:
            raise _RefusedError(f"it uses the pickle instruction {name} (at byte {position})")
        if name in _PUT_OPCODES:
            # an honest pickler numbers its memo 0, 1, 2, ...; CPython sizes the memo by the index
            if not 0 <= argument <= puts:
                raise pickle.UnpicklingError(f"memo index {argument} at byte {position} skips ahead")
            puts += 1
        elif name == "MEMOIZE":
            puts += 1
        elif name == "FRAME" and argument > len(data) - stream.tell():
            raise pickle.UnpicklingError(f"a frame at byte {position} claims {argument} bytes past the end")
        end = stream.tell()
    if end != len(data):
        raise pickle.UnpicklingError(f"{len(data) - end} bytes follow the end of the pickle")


# ---------------------------------------------------------------- the restricted machine


class _PendingDtype:
    """numpy.dtype(name, align, copy) as a pickle calls it; BUILD then sets the byte order."""

    def __init__(self, name: Any, align: Any = False, copy: Any = False) -> None:
        if not isinstance(name, str) or name not in _DTYPE_NAMES:
            raise _RefusedError(f"it holds dtype {name!r}, not a plain number type")
        self.dtype = np.dtype(name)

    def __setstate__(self, state: Any) -> None:
        # (version, byte order, subarray, names, fields, elsize, alignment, flags[, metadata])
        if not (isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4)):
            raise pickle.UnpicklingError(f"unexpected dtype state {_short(state)}")
        order, subarray, names, fields = state[1:5]
        if order not in _BYTE_ORDERS or (subarray, names, fields) != (None, None, None):
            raise _RefusedError(f"it holds a structured or sub-array dtype ({_short(state)})")
        if len(state) == 9 and state[8] is not None:
            raise _RefusedError("it holds a dtype with metadata")
        self.dtype = self.dtype.newbyteorder(order)


class _PendingArray:
    """numpy's _reconstruct(ndarray, ...) placeholder; BUILD gives it shape, dtype and bytes."""

    def __init__(self, machine: _RestrictedUnpickler) -> None:
        self._machine = machine
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if self.array is not None:
            raise pickle.UnpicklingError("an array's data is set twice")
        if isinstance(state, tuple) and len(state) == 5 and state[0] == 1:
            state = state[1:]
        if not (isinstance(state, tuple) and len(state) == 4):
            raise pickle.UnpicklingError(f"unexpected array state {_short(state)}")
        shape, dtype, fortran, raw = state
        if not isinstance(fortran, bool):
            raise pickle.UnpicklingError(f"an array's Fortran flag must be a bool, got {_short(fortran)}")
        self.array = self._machine.array(raw, dtype, shape, "F" if fortran else "C")


class _NdarrayClass:
    """What numpy.ndarray stands for: the only class _reconstruct accepts."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes) -> None:
        # latin1: a Python 2 pickle's byte strings come back as str, which array() encodes back
        super().__init__(io.BytesIO(data), encoding="latin1")
        self._budget = len(data)  # bytes all rebuilt arrays may take together
        allowed: dict[str, Callable[..., Any]] = {
            "_reconstruct": self._reconstruct,
            "scalar": self._scalar,
        }
        self._allowed: dict[tuple[str, str], Any] = {
            ("numpy", "ndarray"): _NdarrayClass,
            ("numpy", "dtype"): _PendingDtype,
            ("_codecs", "encode"): _latin1_encode,
            **{(builtins, "bytes"): _empty_bytes for builtins in ("builtins", "__builtin__")},
            **{(builtins, "complex"): _complex for builtins in ("builtins", "__builtin__")},
            ("numpy.core.numeric", "_frombuffer"): self._frombuffer,
            ("numpy._core.numeric", "_frombuffer"): self._frombuffer,
            **{
                (f"numpy.{core}.multiarray", name): f
                for core in ("core", "_core")
                for name, f in allowed.items()
            },
        }

    def find_class(self, module: str, name: str) -> Any:
        found = self._allowed.get((module, name))
        if found is None:
            raise _RefusedError(f"it names the global {_short(f'{module}.{name}')}")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise _RefusedError("it refers to a persistent object")

    def _reconstruct(self, cls: Any, shape: Any = (0,), typecode: Any = b"b") -> _PendingArray:
        if cls is not _NdarrayClass:
            raise _RefusedError(f"it rebuilds an array of class {_short(cls)}, not numpy.ndarray")
        return _PendingArray(self)

    def _scalar(self, dtype: Any, raw: Any) -> np.generic:
        return self.array(raw, dtype, (), "C")[()]

    def _frombuffer(self, raw: Any, dtype: Any, shape: Any, order: Any = "C") -> np.ndarray:
        if order not in ("C", "F"):
            raise pickle.UnpicklingError(f"unknown array order {_short(order)}")
        return self.array(raw, dtype, shape, order)

    def array(self, raw: Any, dtype: Any, shape: Any, order: str) -> np.ndarray:
        """A new array from checked parts, charged to the file's budget."""
        if not isinstance(dtype, _PendingDtype):
            raise _RefusedError(f"it holds an array whose dtype is {_short(dtype)}")
        if isinstance(raw, str):
            raw = raw.encode("latin1")  # a Python 2 byte string
        if not isinstance(raw, (bytes, bytearray)):
            raise _RefusedError(f"it holds array data of type {type(raw).__name__} (object arrays need code)")
        if isinstance(shape, list):
            shape = tuple(shape)
        if not (
            isinstance(shape, tuple)
            and len(shape) <= _MAX_NDIM
            and all(type(n) is int and n >= 0 for n in shape)
        ):
            raise pickle.UnpicklingError(f"an array's shape must be a tuple of sizes, got {_short(shape)}")
        size = math.prod(shape) * dtype.dtype.itemsize  # a Python int: no overflow
        if size != len(raw):
            raise pickle.UnpicklingError(
                f"an array of shape {_short(shape)} and dtype {dtype.dtype} needs {size} bytes, "
                f"the file gives {len(raw)}"
            )
        if size > self._budget:
            raise pickle.UnpicklingError("its arrays together would be larger than the file")
        self._budget -= size
        stored = np.frombuffer(raw, dtype=dtype.dtype).reshape(shape, order=order)
        # a copy that is writable, owns its data and is in native byte order (as NumPy's own
        # unpickling gives it), in the stored layout
        return stored.astype(dtype.dtype.newbyteorder("="), order="A")


def _latin1_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    """_codecs.encode as protocols 0-2 write bytes: only str to Latin-1."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _RefusedError(f"it calls _codecs.encode with {_short((text, encoding))}")
    return text.encode("latin1")


def _empty_bytes(*args: Any) -> bytes:
    """bytes() as protocols 0-2 write b''; bytes(n) would allocate n bytes."""
    if args:
        raise _RefusedError(f"it calls bytes{_short(args)}")
    return b""


def _complex(real: Any = 0.0, imag: Any = 0.0) -> complex:
    """complex(real, imag) as protocols 2-5 write a complex number; never complex(text)."""
    if not all(type(part) in (int, float) for part in (real, imag)):
        raise _RefusedError(f"it calls complex{_short((real, imag))}")
    return complex(real, imag)


def _resolve(value: Any, done: dict[int, Any]) -> Any:
    """value with every stand-in replaced by what it stands for (arrays, dtypes).

    done maps id() of each container already visited to its result, so shared and
    self-referencing containers (a memo can build both) are visited once.
    """
    if isinstance(value, _PendingArray):
        if value.array is None:
            raise pickle.UnpicklingError("an array was never given its data")
        return value.array
    if isinstance(value, _PendingDtype):
        return value.dtype
    if isinstance(value, (list, dict, tuple)):
        if id(value) in done:
            return done[id(value)]
        if isinstance(value, list):
            done[id(value)] = value
            value[:] = [_resolve(item, done) for item in value]
        elif isinstance(value, dict):
            done[id(value)] = value
            items = [(_resolve(key, done), _resolve(item, done)) for key, item in value.items()]
            value.clear()
            for key, item in items:
                if isinstance(key, np.ndarray):
                    raise _RefusedError("it uses an array as a dict key")
                value[key] = item
        else:
            done[id(value)] = value = tuple(_resolve(item, done) for item in value)
        return value
    if (
        isinstance(value, (str, bytes, bytearray, int, float, complex, np.generic, np.ndarray))
        or value is None
    ):
        return value
    # the machine can only have built the types above; anything else is a stand-in misused
    raise _RefusedError(f"it builds a {type(value).__name__}")
