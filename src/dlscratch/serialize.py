"""Networks saved to and loaded from one model file, with no pickle anywhere.

A model file is an archive (see dlscratch.archive: an .npz of stored .npy members and a
JSON record) of format "dlscratch-model", version 1:

    params/W1, params/b1, ...                 every entry of network.params
    buffers/BatchNormalization1/running_mean  every layer's buffers, by layer name

with the record::

    {"format": "dlscratch-model", "version": 1,
     "network": {"class": "TwoLayerNet",
                 "config": {"input_size": 784, "hidden_size": 50, ...},
                 "dtype": "float64",
                 "param_layers": {"W1": ["Affine1", "W"], ...}},
     "metadata": {...},
     "arrays": {"params/W1": {"shape": [784, 50], "dtype": "float64"}, ...}}

``metadata`` (optional) is any JSON object the saver gives: ``dlscratch train`` records
the data set the model learnt, how its images were prepared (layout, scale, class
names) and the run's effective settings, so ``dlscratch evaluate`` and ``predict`` need
no options. ``load_metadata`` reads it back without building the network.

``config`` is ``network.config()``: a named network's constructor arguments, or for a plain
Sequential its layers (``{"name", "type", "config"}`` each), ``last_layer`` and
``weight_decay_lambda``. ``param_layers`` says which layer owns each parameter, so a plain
Sequential can be rebuilt layer by layer. Only classes exported by dlscratch.nets and
dlscratch.layers are ever looked up.

Loading trusts nothing: after the archive's own checks, a named network is built from its
config inside a weight budget of what the file's arrays hold, drawing no random numbers
(dlscratch.nets.init.weight_budget), so a config asking for a huge network is refused
before it is allocated; its array table must then equal the file's before any array is
read. Arrays holding NaN or infinity, and negative running variances, are refused unless
the caller asks for them (check_values=False).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from dlscratch import layers as layers_module
from dlscratch import nets as nets_module
from dlscratch.archive import Archive, PathLike, read_archive, write_archive
from dlscratch.layers import loss as loss_module
from dlscratch.layers.base import Layer
from dlscratch.nets.init import weight_budget
from dlscratch.nets.sequential import Sequential
from dlscratch.records import field, short, to_json_data

__all__ = ["load", "load_metadata", "save", "with_dtype"]

T = TypeVar("T")

MODEL_FORMAT = "dlscratch-model"
MODEL_VERSION = 1
NETWORK_PREFIXES = ("params/", "buffers/")
# buffers whose every value must be >= 0 (a variance); a negative one would give NaN
_NON_NEGATIVE_BUFFERS = frozenset(["running_var"])
_CHECK_VALUES_HINT = "pass check_values=False to load such values anyway"


# ---------------------------------------------------------------- the public functions


def save(
    network: Sequential, path: PathLike, *, check_values: bool = True, metadata: dict[str, Any] | None = None
) -> Path:
    """Write network to a model file at path and return the path as a Path.

    metadata: a dict of JSON data kept with the model (see the module's notes), read back
    by load_metadata.

    path is used exactly as given (no ".npz" is added; ".npz" is the usual suffix). The
    file is written under a temporary name in the same folder, flushed to disk and renamed
    into place, so it is always either the old file or the complete new one.
    ValueError when load could not rebuild the network (a class or layer that dlscratch.nets
    or dlscratch.layers does not export, params no longer shared with the layers), or when
    a weight holds NaN or infinity (unless check_values=False); TypeError when network is
    not a Sequential.
    """
    record = {"format": MODEL_FORMAT, "version": MODEL_VERSION, "network": network_description(network)}
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise ValueError(f"metadata must be a dict, got {type(metadata).__name__}")
        record["metadata"] = to_json_data(metadata, "metadata")
    arrays = network_arrays(network)
    if check_values:
        check_network_values(arrays)
    return write_archive(path, record, arrays)


def load(path: PathLike, *, check_values: bool = True) -> Sequential:
    """The network saved at path, of its saved class, with its saved params and buffers.

    The file is checked before anything is built from it (see the module's notes);
    anything that is not a dlscratch model file written by this version raises ValueError
    naming the file and saying what is wrong, as do weights holding NaN or infinity and
    negative running variances unless check_values=False. A path that cannot be opened
    raises the usual OSError. np.random's global state is left as it was.
    """

    def parse(archive: Archive) -> Sequential:
        return network_from(archive.record.get("network"), archive, check_values=check_values)

    return read_archive(path, MODEL_FORMAT, MODEL_VERSION, parse)


def load_metadata(path: PathLike) -> dict[str, Any]:
    """The metadata saved with a model, without building its network.

    Parameters
    ----------
    path
        A model file, as save writes it.

    Returns
    -------
    dict
        The metadata given to save, as JSON data; {} when none was. Anybody can edit it:
        check each value before using it.

    Raises
    ------
    ValueError
        Naming the file, when it is not a model file (its container is checked as load
        checks it) or its metadata is not a JSON object.
    OSError
        When the path cannot be opened.
    """

    def parse(archive: Archive) -> dict[str, Any]:
        metadata = archive.record.get("metadata", {})
        if not isinstance(metadata, dict):
            raise ValueError(f"the metadata must be a JSON object, got {short(metadata)}")
        return metadata

    return read_archive(path, MODEL_FORMAT, MODEL_VERSION, parse)


def with_dtype(network: Sequential, dtype: Any) -> Sequential:
    """A copy of a network with its params and buffers converted to another dtype.

    Parameters
    ----------
    network
        A network save can write (the networks dlscratch.nets exports, or a Sequential of
        dlscratch.layers); it is left as it is.
    dtype
        float32 or float64, e.g. float64 to check the gradients of a model trained in float32.

    Returns
    -------
    Sequential
        A network of the same class and settings, no array shared with the original.

    Raises
    ------
    ValueError
        When network could not be saved, or the dtype is not one it can be built in.
    """
    dtype = np.dtype(dtype)
    description = network_description(network)
    arrays = {name: array.astype(dtype) for name, array in network_arrays(network).items()}
    cls = type(network)
    if cls is Sequential:
        return _sequential_from(description["config"], description["param_layers"], arrays)
    config = dict(description["config"])
    if "dtype" not in config:
        raise ValueError(f"a {cls.__name__} has no dtype setting to convert")
    # zeros, not random draws: the arrays are overwritten next
    budget = sum(array.nbytes for name, array in arrays.items() if name.startswith("params/"))
    with weight_budget(budget, draw=False, what="the network's own weights"):
        copy = build(f"a {cls.__name__}", cls, **{**config, "dtype": dtype.name})
    copy_network_arrays(copy, arrays)
    return copy


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
    """ValueError unless every layer of a plain Sequential can be rebuilt by its type name,
    and its last layer is a loss layer (load refuses anything else)."""
    named = [*network.layers.items(), ("lastLayer", network.lastLayer)]
    for name, layer in named:
        if exported_class(layers_module, type(layer).__name__, Layer) is not type(layer):
            raise ValueError(
                f"cannot save layer {name!r}: {type(layer).__name__} is not a layer dlscratch.layers "
                "exports, so it could not be rebuilt"
            )
    _check_loss_layer(type(network.lastLayer))


def _check_loss_layer(cls: type) -> None:
    if cls.__module__ != loss_module.__name__:
        raise ValueError(f"the last layer must be a loss layer such as SoftmaxWithLoss, got {cls.__name__}")


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


# ---------------------------------------------------------------- checking values


def check_network_values(arrays: dict[str, np.ndarray]) -> None:
    """ValueError naming the first array that holds NaN or infinity, or a negative variance."""
    for name, array in arrays.items():
        if not np.isfinite(array).all():
            raise ValueError(f"{name} holds NaN or infinite values; {_CHECK_VALUES_HINT}")
        if name.rpartition("/")[2] in _NON_NEGATIVE_BUFFERS and (array < 0).any():
            raise ValueError(f"{name} holds negative values, impossible for a variance; {_CHECK_VALUES_HINT}")


# ---------------------------------------------------------------- rebuilding a network


def network_from(description: Any, archive: Archive, *, check_values: bool = True) -> Sequential:
    """Rebuild the network that description (from network_description) and the archive's
    params/ and buffers/ arrays give.

    The archive must hold exactly the network's arrays, with matching shapes and dtypes;
    the rebuilt network must describe itself exactly as description does. ValueError otherwise.
    """
    where = "the network description"
    cls = exported_class(nets_module, field(description, "class", str, where), Sequential)
    if cls is None:
        raise ValueError(
            f"unknown network class {short(description['class'])}; "
            f"known: {', '.join(_exported_names(nets_module, Sequential))}"
        )
    config = field(description, "config", dict, where)
    names = [name for name in archive.table if name.startswith(NETWORK_PREFIXES)]
    if cls is Sequential:
        arrays = _read_arrays(archive, names, check_values)
        network = _sequential_from(config, field(description, "param_layers", dict, where), arrays)
        check_same_arrays(network_arrays(network), arrays)
    else:
        network = _named_network(cls, config, archive, names)
        targets = network_arrays(network)
        check_same_arrays(targets, {name: archive.table[name] for name in names})
        for name, array in _read_arrays(archive, names, check_values).items():
            targets[name][...] = array
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


def _named_network(
    cls: type[Sequential], config: dict[str, Any], archive: Archive, names: list[str]
) -> Sequential:
    """cls(**config), whose weights may take no more than the file's params/ arrays, as zeros.

    Its weights are overwritten next: no random numbers are drawn (np.random's global state
    stays as it was), and a config asking for more than the file holds is refused first.
    """
    budget = archive.nbytes(name for name in names if name.startswith("params/"))
    with weight_budget(budget, draw=False, what="the file's params/ arrays hold"):
        return build(f"a {cls.__name__}", cls, **config)


def _read_arrays(archive: Archive, names: Iterable[str], check_values: bool) -> dict[str, np.ndarray]:
    arrays = {name: archive.read(name) for name in names}
    if check_values:
        check_network_values(arrays)
    return arrays


def _sequential_from(
    config: dict[str, Any], param_layers: dict[str, Any], arrays: dict[str, np.ndarray]
) -> Sequential:
    """A plain Sequential rebuilt layer by layer as cls(**its arrays, **its config)."""
    where = "a Sequential's config"
    specs = field(config, "layers", list, where)
    last_type = field(config, "last_layer", str, where)
    weight_decay = field(config, "weight_decay_lambda", (int, float), where)
    per_layer = _arrays_by_layer(param_layers, arrays)
    layers: OrderedDict[str, Layer] = OrderedDict()
    for spec in specs:
        name = field(spec, "name", str, "a layer's record")
        _check_name_part("layer name", name)
        if name in layers:
            raise ValueError(f"two layers are named {name!r}")
        cls = _layer_class(field(spec, "type", str, f"layer {name!r}"))
        layers[name] = build(
            f"layer {name!r}",
            cls,
            **per_layer.get(name, {}),
            **field(spec, "config", dict, f"layer {name!r}"),
        )
    last_class = _layer_class(last_type)
    _check_loss_layer(last_class)
    # files written before the loss layer had settings hold none: its defaults then
    last_settings = field(config, "last_layer_config", dict, where) if "last_layer_config" in config else {}
    last_layer = build("the last layer", last_class, **last_settings)
    return build("a Sequential", Sequential, layers, last_layer, weight_decay_lambda=weight_decay)


def _layer_class(name: str) -> type[Layer]:
    cls = exported_class(layers_module, name, Layer)
    if cls is None or cls is Layer:  # the base class computes nothing
        known = [known for known in _exported_names(layers_module, Layer) if known != Layer.__name__]
        raise ValueError(f"unknown layer type {short(name)}; known: {', '.join(known)}")
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


Spec = tuple[tuple[int, ...], np.dtype]


def _spec(value: np.ndarray | Spec) -> Spec:
    return (value.shape, value.dtype) if isinstance(value, np.ndarray) else value


def array_mismatches(expected: dict[str, Any], found: dict[str, Any]) -> list[str]:
    """How found differs from expected in entry names, shapes and dtypes (empty: it doesn't).

    Values are arrays or (shape, dtype) pairs, so a file's table can be compared before
    its arrays are read.
    """
    problems = []
    if missing := sorted(expected.keys() - found.keys()):
        problems.append(f"missing arrays {short(missing)}")
    if unexpected := sorted(found.keys() - expected.keys()):
        problems.append(f"unexpected arrays {short(unexpected)}")
    for name in sorted(expected.keys() & found.keys()):
        (want_shape, want_dtype), (got_shape, got_dtype) = _spec(expected[name]), _spec(found[name])
        if want_shape != got_shape:
            problems.append(f"{name} has shape {got_shape} but the network's is {want_shape}")
        elif want_dtype != got_dtype:
            problems.append(f"{name} has dtype {got_dtype} but the network's is {want_dtype}")
    return problems


def check_same_arrays(expected: dict[str, Any], found: dict[str, Any]) -> None:
    if problems := array_mismatches(expected, found):
        raise ValueError("the arrays do not fit the network: " + "; ".join(problems[:5]))


# ---------------------------------------------------------------- small shared helpers


def exported_class(module: Any, name: Any, base: type[T]) -> type[T] | None:
    """The class module exports as name if it is a subclass of base, else None.

    Only names in module.__all__ count, so a file can reach nothing but the library's own
    layers, networks and optimizers (never an arbitrary attribute).
    """
    if not isinstance(name, str) or name not in getattr(module, "__all__", ()):
        return None
    found = getattr(module, name, None)
    return found if isinstance(found, type) and issubclass(found, base) else None


def _exported_names(module: Any, base: type) -> list[str]:
    return [name for name in module.__all__ if exported_class(module, name, base) is not None]


def build(what: str, cls: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """cls(*args, **kwargs); a TypeError or ValueError (bad arguments from a file) becomes a
    ValueError saying what could not be rebuilt."""
    try:
        return cls(*args, **kwargs)
    except (TypeError, ValueError) as error:
        raise ValueError(f"cannot rebuild {what}: {error}") from error
