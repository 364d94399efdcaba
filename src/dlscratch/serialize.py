"""Networks saved to and loaded from one .npz file, with no pickle anywhere.

A model file is an ordinary NumPy .npz archive (a zip of .npy files, stored uncompressed):

    __meta__                                  uint8 array: the UTF-8 JSON record below
    params/W1, params/b1, ...                 every entry of network.params
    buffers/BatchNormalization1/running_mean  every layer's buffers, by layer name

The record::

    {"format": "dlscratch-model", "version": 1,
     "network": {"class": "TwoLayerNet",
                 "config": {"input_size": 784, "hidden_size": 50, ...},
                 "dtype": "float64",
                 "param_layers": {"W1": ["Affine1", "W"], ...}},
     "arrays": {"params/W1": {"shape": [784, 50], "dtype": "float64"}, ...}}

``config`` is ``network.config()``: a named network's constructor arguments, or for a plain
Sequential its layers (``{"name", "type", "config"}`` each), ``last_layer`` and
``weight_decay_lambda``. ``param_layers`` says which layer owns each parameter, so a plain
Sequential can be rebuilt layer by layer. Only classes exported by dlscratch.nets and
dlscratch.layers are ever looked up, and every array is checked against the record and
against the rebuilt network before it is used.

Besides save() and load(), the module holds the building blocks dlscratch.checkpoint
shares: write_archive, read_archive, network_arrays, network_description, network_from,
copy_network_arrays, array_mismatches, to_json_data, exported_class, get_field, build.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np
from numpy.lib import format as npy_format
from numpy.lib.npyio import NpzFile

from dlscratch import layers as layers_module
from dlscratch import nets as nets_module
from dlscratch.files import write_atomically
from dlscratch.layers.base import Layer
from dlscratch.nets.sequential import Sequential

__all__ = ["load", "save"]

T = TypeVar("T")
PathLike = str | os.PathLike

MODEL_FORMAT = "dlscratch-model"
MODEL_VERSION = 1
META = "__meta__"
NETWORK_PREFIXES = ("params/", "buffers/")

# Plain numbers only: no entry of an archive can ever need pickle to be read.
_DTYPES = frozenset(
    ["bool", "float16", "float32", "float64"]
    + [f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)]
)

# What a damaged or hostile file can make zipfile, zlib, json, numpy's .npy parser or a
# constructor fed bad arguments raise; read_archive turns each into one ValueError.
_BAD_FILE_ERRORS = (
    ValueError,  # json and UnicodeDecodeError included
    TypeError,
    KeyError,
    IndexError,
    OSError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    NotImplementedError,  # zipfile: unsupported compression or encryption
    RuntimeError,  # zipfile: encrypted member; RecursionError: absurdly nested JSON
    MemoryError,  # a constructor asked by the record for an absurd size
    OverflowError,
)


# ---------------------------------------------------------------- the public functions


def save(network: Sequential, path: PathLike) -> Path:
    """Write network to a model file at path and return the path as a Path.

    path is used exactly as given (no ".npz" is added; ".npz" is the usual suffix). The
    file is written under a temporary name in the same folder, flushed to disk and renamed
    into place, so it is always either the old file or the complete new one.
    ValueError when load could not rebuild the network (a class or layer that dlscratch.nets
    or dlscratch.layers does not export, params no longer shared with the layers);
    TypeError when network is not a Sequential.
    """
    meta = {"format": MODEL_FORMAT, "version": MODEL_VERSION, "network": network_description(network)}
    return write_archive(path, meta, network_arrays(network))


def load(path: PathLike) -> Sequential:
    """The network saved at path, of its saved class, with its saved params and buffers.

    The file is checked before anything is built from it; anything that is not a
    dlscratch model file written by this version raises ValueError naming the file and
    saying what is wrong. A path that cannot be opened raises the usual OSError.
    np.random's global state is left as it was.
    """
    return read_archive(
        path, MODEL_FORMAT, MODEL_VERSION, lambda meta, arrays: network_from(meta.get("network"), arrays)
    )


# ---------------------------------------------------------------- describing a network


def network_arrays(network: Sequential) -> dict[str, np.ndarray]:
    """Entry name -> array for every param and buffer: the network's own arrays, not copies."""
    arrays = {f"params/{name}": array for name, array in network.params.items()}
    for layer_name, layer in network.layers.items():
        for key, array in getattr(layer, "buffers", {}).items():
            arrays[f"buffers/{layer_name}/{key}"] = array
    return arrays


def network_description(network: Sequential) -> dict[str, Any]:
    """What rebuilds network, as JSON data: class name, config, dtype and param_layers.

    ValueError (TypeError for a non-Sequential) when network_from could not rebuild it.
    """
    if not isinstance(network, Sequential):
        raise TypeError(f"can only save dlscratch networks (a Sequential), got {type(network).__name__}")
    name = type(network).__name__
    if exported_class(nets_module, name, Sequential) is not type(network):
        raise ValueError(
            f"cannot save a {name}: only the networks dlscratch.nets exports can be rebuilt "
            "(build it as a Sequential instead)"
        )
    if type(network) is Sequential:
        _check_layers_exported(network)
    params = list(network.params.values())
    description = {
        "class": name,
        "config": network.config(),
        "dtype": np.result_type(*params).name if params else None,
        "param_layers": _param_layers(network),
    }
    return to_json_data(description, f"{name}.config()")


def _check_layers_exported(network: Sequential) -> None:
    """ValueError unless every layer of a plain Sequential can be rebuilt by its type name."""
    named = [*network.layers.items(), ("lastLayer", network.lastLayer)]
    for name, layer in named:
        if exported_class(layers_module, type(layer).__name__, Layer) is not type(layer):
            raise ValueError(
                f"cannot save layer {name!r}: {type(layer).__name__} is not a layer dlscratch.layers "
                "exports, so it could not be rebuilt"
            )


def _param_layers(network: Sequential) -> dict[str, list[str]]:
    """Param name -> [layer name, the layer's name for it], found by array identity.

    A params entry that is not a layer's array means someone assigned a new array instead
    of updating in place: the layers would not see it, so saving refuses.
    """
    owners = {}
    for layer_name, layer in network.layers.items():
        _check_name_part("layer name", layer_name)
        for key, array in getattr(layer, "params", {}).items():
            owners[id(array)] = [layer_name, key]
        for key in getattr(layer, "buffers", {}):
            _check_name_part(f"buffer name of layer {layer_name!r}", key)
    found = {}
    for name, array in network.params.items():
        _check_name_part("parameter name", name)
        owner = owners.pop(id(array), None)
        if owner is None:
            raise ValueError(
                f"network.params[{name!r}] is not an array any layer uses; update parameters "
                f"in place (params[{name!r}][...] = value) so the layers see the change"
            )
        found[name] = owner
    if owners:
        raise ValueError(
            f"layer parameters missing from network.params: {sorted(map(tuple, owners.values()))}"
        )
    return found


def _check_name_part(what: str, name: str) -> None:
    # entry names are built as "buffers/<layer>/<key>": a "/" inside a part would be ambiguous
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"a {what} must be a non-empty string without '/', got {name!r}")


# ---------------------------------------------------------------- rebuilding a network


def network_from(description: Any, arrays: dict[str, np.ndarray]) -> Sequential:
    """Rebuild the network that description (from network_description) and arrays give.

    arrays must hold exactly the network's entries, with matching shapes and dtypes; the
    rebuilt network must describe itself exactly as description does. ValueError otherwise.
    """
    where = "the network description"
    cls = exported_class(nets_module, get_field(description, "class", str, where), Sequential)
    if cls is None:
        raise ValueError(
            f"unknown network class {short(description['class'])}; "
            f"known: {', '.join(_exported_names(nets_module, Sequential))}"
        )
    config = get_field(description, "config", dict, where)
    if cls is Sequential:
        network = _sequential_from(config, get_field(description, "param_layers", dict, where), arrays)
        check_same_arrays(network_arrays(network), arrays)
    else:
        network = _construct_keeping_global_rng(cls, config)
        copy_network_arrays(network, arrays)
    rebuilt = network_description(network)
    if cls is not Sequential:
        # a setting added to the class after the file was written comes back with its
        # default value: files stay loadable as the library grows
        rebuilt["config"] = {k: v for k, v in rebuilt["config"].items() if k in config}
    if rebuilt != description:
        key = next(
            k for k in sorted(rebuilt.keys() | description.keys()) if rebuilt.get(k) != description.get(k)
        )
        raise ValueError(
            f"the rebuilt {cls.__name__} does not match its record: {key} is "
            f"{short(rebuilt.get(key))}, the record says {short(description.get(key))}"
        )
    return network


def _construct_keeping_global_rng(cls: type[Sequential], config: dict[str, Any]) -> Sequential:
    """cls(**config). Its random initial weights are overwritten next, so np.random's global
    state is put back: loading must not shift a seeded program's random numbers."""
    state = np.random.get_state()
    try:
        return build(f"a {cls.__name__}", cls, **config)
    finally:
        np.random.set_state(state)


def _sequential_from(
    config: dict[str, Any], param_layers: dict[str, Any], arrays: dict[str, np.ndarray]
) -> Sequential:
    """A plain Sequential rebuilt layer by layer as cls(**its arrays, **its config)."""
    where = "a Sequential's config"
    specs = get_field(config, "layers", list, where)
    last_type = get_field(config, "last_layer", str, where)
    weight_decay = get_field(config, "weight_decay_lambda", (int, float), where)
    per_layer = _arrays_by_layer(param_layers, arrays)
    layers: OrderedDict[str, Layer] = OrderedDict()
    for spec in specs:
        name = get_field(spec, "name", str, "a layer's record")
        _check_name_part("layer name", name)
        if name in layers:
            raise ValueError(f"two layers are named {name!r}")
        cls = _layer_class(get_field(spec, "type", str, f"layer {name!r}"))
        layers[name] = build(
            f"layer {name!r}",
            cls,
            **per_layer.get(name, {}),
            **get_field(spec, "config", dict, f"layer {name!r}"),
        )
    last_layer = build("the last layer", _layer_class(last_type))
    return build("a Sequential", Sequential, layers, last_layer, weight_decay_lambda=weight_decay)


def _layer_class(name: str) -> type[Layer]:
    cls = exported_class(layers_module, name, Layer)
    if cls is None:
        raise ValueError(
            f"unknown layer type {short(name)}; known: {', '.join(_exported_names(layers_module, Layer))}"
        )
    return cls


def _arrays_by_layer(
    param_layers: dict[str, Any], arrays: dict[str, np.ndarray]
) -> dict[str, dict[str, np.ndarray]]:
    """Layer name -> {the layer's name for an array: array}: its params and its buffers."""
    per_layer: dict[str, dict[str, np.ndarray]] = {}
    for param, owner in param_layers.items():
        if not (isinstance(owner, list) and len(owner) == 2 and all(isinstance(part, str) for part in owner)):
            raise ValueError(f"param_layers[{param!r}] must be [layer name, key], got {short(owner)}")
        array = arrays.get(f"params/{param}")
        if array is None:
            raise ValueError(f"param_layers names {param!r} but there is no array params/{param}")
        per_layer.setdefault(owner[0], {})[owner[1]] = array
    for name, array in arrays.items():
        if name.startswith("buffers/"):
            layer_name, _, key = name.removeprefix("buffers/").rpartition("/")
            per_layer.setdefault(layer_name, {})[key] = array
    return per_layer


def copy_network_arrays(network: Sequential, arrays: dict[str, np.ndarray]) -> None:
    """Copy arrays into network's params and buffers in place, so the layers, the params
    dict and any optimizer keep sharing them. ValueError unless the entries match exactly."""
    targets = network_arrays(network)
    check_same_arrays(targets, arrays)
    for name, target in targets.items():
        target[...] = arrays[name]


def array_mismatches(expected: dict[str, np.ndarray], found: dict[str, np.ndarray]) -> list[str]:
    """How found differs from expected in entry names, shapes and dtypes (empty: it doesn't)."""
    problems = []
    if missing := sorted(expected.keys() - found.keys()):
        problems.append(f"missing arrays {short(missing)}")
    if unexpected := sorted(found.keys() - expected.keys()):
        problems.append(f"unexpected arrays {short(unexpected)}")
    for name in sorted(expected.keys() & found.keys()):
        want, got = expected[name], found[name]
        if want.shape != got.shape:
            problems.append(f"{name} has shape {got.shape} but the network's is {want.shape}")
        elif want.dtype != got.dtype:
            problems.append(f"{name} has dtype {got.dtype} but the network's is {want.dtype}")
    return problems


def check_same_arrays(expected: dict[str, np.ndarray], found: dict[str, np.ndarray]) -> None:
    if problems := array_mismatches(expected, found):
        raise ValueError("the arrays do not fit the network: " + "; ".join(problems[:5]))


# ---------------------------------------------------------------- small shared helpers


def exported_class(module: Any, name: Any, base: type[T]) -> type[T] | None:
    """The class module exports as name if it is a subclass of base, else None.

    Only names in module.__all__ count, so a file can reach nothing but the library's own
    layers and networks (never an arbitrary attribute).
    """
    if not isinstance(name, str) or name not in getattr(module, "__all__", ()):
        return None
    found = getattr(module, name, None)
    return found if isinstance(found, type) and issubclass(found, base) else None


def _exported_names(module: Any, base: type) -> list[str]:
    return [name for name in module.__all__ if exported_class(module, name, base) is not None]


def get_field(mapping: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
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


def build(what: str, cls: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """cls(*args, **kwargs); a TypeError or ValueError (bad arguments from a file) becomes a
    ValueError saying what could not be rebuilt."""
    try:
        return cls(*args, **kwargs)
    except (TypeError, ValueError) as error:
        raise ValueError(f"cannot rebuild {what}: {error}") from error


def short(value: Any, limit: int = 80) -> str:
    """repr(value), cut to limit characters: error messages quote what a file says."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_default(value: Any) -> Any:
    # NumPy scalars (np.int64 sizes, np.float32 rates) and paths are ordinary JSON values
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"a {type(value).__name__} is not JSON data")


def _json_text(value: Any) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def to_json_data(value: Any, what: str) -> Any:
    """value as it reads back from a file: plain dicts, lists, strings and numbers.

    NumPy scalars become numbers and paths strings; anything else is a ValueError naming what.
    """
    try:
        return json.loads(_json_text(value))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what} must be JSON data: {error}") from None


# ---------------------------------------------------------------- writing an archive


def write_archive(path: PathLike, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """Write meta, with an "arrays" table of every array's shape and dtype added, and the
    arrays to an .npz at exactly path, atomically (see save). Returns path as a Path.

    ValueError for an array that is not plain numbers (an object array would need pickle)
    or a record that is not JSON data.
    """
    path = Path(path)
    entries = {name: _plain_array(name, array) for name, array in arrays.items()}
    table = {name: {"shape": list(array.shape), "dtype": array.dtype.name} for name, array in entries.items()}
    record = to_json_data({**meta, "arrays": table}, "the record")
    entries = {META: np.frombuffer(_json_text(record).encode("utf-8"), dtype=np.uint8), **entries}
    # a file object, not a name: np.savez would add ".npz" to a name without it
    write_atomically(path, lambda file: np.savez(file, allow_pickle=False, **entries))
    return path


def _plain_array(name: str, array: Any) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.name not in _DTYPES:
        raise ValueError(f"cannot save {name!r}: dtype {array.dtype} is not a plain number type")
    # native byte order, as the reader expects
    return array.astype(array.dtype.newbyteorder("="), copy=False)


# ---------------------------------------------------------------- reading an archive


def read_archive(path: PathLike, format_name: str, version: int, parse: Callable[[dict, dict], T]) -> T:
    """Open and check the archive at path, and return parse(meta, arrays).

    meta is the JSON record, its format name and version checked; arrays holds exactly the
    entries the record lists, with the recorded shapes and dtypes, each read with
    allow_pickle=False. Any problem with the content, found here or by parse, becomes a
    ValueError naming the file; a path that cannot be opened raises the usual OSError.
    """
    path = Path(path)
    with path.open("rb") as file:
        try:
            meta, arrays = _read_checked(file, format_name, version)
            return parse(meta, arrays)
        except _BAD_FILE_ERRORS as error:
            reason = (
                str(error) if type(error) is ValueError else f"damaged file ({type(error).__name__}: {error})"
            )
            raise ValueError(f"cannot load {path}: {reason}") from error


def _read_checked(
    file: IO[bytes], format_name: str, version: int
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if file.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise ValueError(f"not a {format_name} file: not a zip archive (.npz)")
    file.seek(0)
    file_size = os.fstat(file.fileno()).st_size
    archive = np.load(file, allow_pickle=False)
    if not isinstance(archive, NpzFile):
        raise ValueError(f"not a {format_name} file: not an .npz archive")
    with archive:
        members = _members(archive.zip, file_size)
        if META not in members:
            raise ValueError(f"not a {format_name} file: it has no {META} record")
        meta = _read_meta(archive, members[META], format_name, version)
        records = _records(meta)
        if missing := sorted(records.keys() - members.keys()):
            raise ValueError(f"arrays listed in the record are missing: {short(missing)}")
        if unexpected := sorted(members.keys() - records.keys() - {META}):
            raise ValueError(f"arrays not listed in the record: {short(unexpected)}")
        return meta, {name: _read_array(archive, members[name], name, *records[name]) for name in records}


def _members(archive: zipfile.ZipFile, file_size: int) -> dict[str, zipfile.ZipInfo]:
    """Entry name -> member, each a stored (uncompressed) .npy that lies within the file.

    Stored members bound what reading can allocate by the file's own size.
    """
    members = {}
    for info in archive.infolist():
        name = info.filename.removesuffix(".npy")
        if name == info.filename:
            raise ValueError(f"unexpected member {short(info.filename)}: an .npz holds only .npy files")
        if name in members:
            raise ValueError(f"the archive holds {short(name)} twice")
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            raise ValueError(f"{short(name)} is compressed or encrypted; dlscratch stores arrays as they are")
        if info.compress_size != info.file_size or info.header_offset + info.file_size > file_size:
            raise ValueError(f"{short(name)} claims more bytes than the file holds")
        members[name] = info
    return members


def _read_meta(archive: NpzFile, info: zipfile.ZipInfo, format_name: str, version: int) -> dict[str, Any]:
    shape, dtype = _array_header(archive.zip, info, META)
    if dtype != np.uint8 or len(shape) != 1:
        raise ValueError(f"{META} must be a 1-D uint8 array of UTF-8 JSON, got {dtype} of shape {shape}")
    meta = json.loads(archive[info.filename].tobytes().decode("utf-8"))
    if not isinstance(meta, dict):
        raise ValueError(f"{META} must hold a JSON object, got {short(meta)}")
    found = meta.get("format")
    if found != format_name:
        raise ValueError(f"not a {format_name} file: its format is {short(found)}")
    found = meta.get("version")
    if found != version or type(found) is not int:
        newer = (
            " (written by a newer dlscratch: upgrade to read it)"
            if type(found) is int and found > version
            else ""
        )
        raise ValueError(
            f"{format_name} version {short(found)} is not the version this dlscratch reads, {version}{newer}"
        )
    return meta


def _records(meta: dict[str, Any]) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Entry name -> (shape, dtype) from the record's "arrays" table, every value checked."""
    table = get_field(meta, "arrays", dict, "the record")
    records = {}
    for name, record in table.items():
        where = f"the record of array {short(name)}"
        if name == META:
            raise ValueError(f"{where}: {META} is not an array name")
        shape = get_field(record, "shape", list, where)
        if not all(type(n) is int and n >= 0 for n in shape):
            raise ValueError(f"{where}: a shape is a list of integers >= 0, got {short(shape)}")
        dtype = get_field(record, "dtype", str, where)
        if dtype not in _DTYPES:
            raise ValueError(
                f"{where}: dtype {short(dtype)} is not allowed (only {', '.join(sorted(_DTYPES))})"
            )
        records[name] = (tuple(shape), np.dtype(dtype))
    return records


def _array_header(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str
) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a member's .npy header, its size checked against the member's:
    an array is only read once the file is known to hold all its bytes."""
    with archive.open(info) as member:
        version = npy_format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = npy_format.read_array_header_2_0(member)
        else:
            raise ValueError(f"{short(name)} uses .npy format {version}, not 1.0 or 2.0")
        data_start = member.tell()
    if dtype.name not in _DTYPES:
        raise ValueError(f"{short(name)} holds dtype {dtype}, not plain numbers (it would need pickle)")
    if data_start + math.prod(shape) * dtype.itemsize != info.file_size:
        raise ValueError(f"{short(name)} is truncated or padded: its header says shape {shape} of {dtype}")
    return shape, dtype


def _read_array(
    archive: NpzFile, info: zipfile.ZipInfo, name: str, shape: tuple[int, ...], dtype: np.dtype
) -> np.ndarray:
    found_shape, found_dtype = _array_header(archive.zip, info, name)
    if found_dtype != dtype:
        raise ValueError(f"array {short(name)} has dtype {found_dtype} but the record says {dtype}")
    if found_shape != shape:
        raise ValueError(f"array {short(name)} has shape {found_shape} but the record says {shape}")
    # by the exact member name: NpzFile's own lookup would also try name + ".npy"
    return archive[info.filename]
