"""Model files: round trips, atomic writes, and a clear ValueError for every bad file.

The helpers at the top (raw_archive, model_parts, set_in, ...) are shared with
test_fuzz_serialize.py and test_checkpoint.py.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from peak_memory import assert_refused_within_memory

from dlscratch.archive import META, write_archive
from dlscratch.layers import Affine, BatchNormalization, Layer, LeakyRelu, Relu, Tanh
from dlscratch.nets import DeepConvNet, Sequential, TwoLayerNet
from dlscratch.serialize import load, load_metadata, network_arrays, save, with_dtype

# ---------------------------------------------------------------- shared helpers


def raw_archive(path: Path, meta: Any, arrays: dict[str, Any], savez: Callable = np.savez) -> Path:
    """Write an .npz the way a broken or hostile tool might, bypassing every check of save.

    meta: a dict or list is JSON-encoded, bytes are stored as they are, None stores no record.
    """
    entries = dict(arrays)
    if meta is not None:
        data = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
        entries = {META: np.frombuffer(data, dtype=np.uint8), **entries}
    with open(path, "wb") as file:
        savez(file, **entries)
    return path


def model_parts(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON record and the arrays of a file we wrote ourselves (trusted)."""
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(archive[META].tobytes())
        arrays = {name: archive[name] for name in archive.files if name != META}
    return meta, arrays


def assert_same_arrays(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> None:
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert ours[name].dtype == theirs[name].dtype, name
        assert ours[name].tobytes() == theirs[name].tobytes(), name  # bit for bit


def shares_arrays(network: Sequential) -> bool:
    """True when every params entry is the very array its layer uses."""
    layer_arrays = [a for layer in network.layers.values() for a in getattr(layer, "params", {}).values()]
    return sorted(map(id, layer_arrays)) == sorted(map(id, network.params.values()))


def small_sequential(rng: np.random.Generator, activation: Layer) -> Sequential:
    return Sequential(
        [
            Affine(rng.standard_normal((4, 5)), rng.standard_normal(5)),
            activation,
            Affine(rng.standard_normal((5, 3)), rng.standard_normal(3)),
        ],
        weight_decay_lambda=0.1,
    )


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    return save(TwoLayerNet(4, 5, 3, weight_init_std=0.5, seed=0), tmp_path / "model.npz")


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_two_layer_net_round_trip(tmp_path, rng, dtype):
    network = TwoLayerNet(4, 5, 3, weight_init_std="he", seed=1, dtype=dtype)
    network.params["b1"][...] = rng.standard_normal(5)  # not the zeros a fresh net has
    loaded = load(save(network, tmp_path / "model.npz"))
    assert type(loaded) is TwoLayerNet
    assert loaded.config() == network.config()
    assert_same_arrays(loaded.params, network.params)
    x = rng.standard_normal((6, 4)).astype(dtype)
    np.testing.assert_array_equal(loaded.predict(x), network.predict(x))
    assert loaded.layers["Affine1"].W is loaded.params["W1"]
    assert shares_arrays(loaded)


def test_load_leaves_np_random_global_state_alone(model_file):
    np.random.seed(0)
    expected = np.random.random(3)
    np.random.seed(0)
    load(model_file)  # a TwoLayerNet draws its throwaway initial weights from np.random
    np.testing.assert_array_equal(np.random.random(3), expected)


@pytest.mark.parametrize("activation", [Relu(), Tanh(), LeakyRelu(alpha=0.2)], ids=repr)
def test_plain_sequential_round_trip(tmp_path, rng, activation):
    network = small_sequential(rng, activation)
    loaded = load(save(network, tmp_path / "model.npz"))
    assert type(loaded) is Sequential
    assert loaded.config() == network.config()
    assert [type(layer) for layer in loaded.layers.values()] == [
        type(layer) for layer in network.layers.values()
    ]
    assert_same_arrays(loaded.params, network.params)
    x = rng.standard_normal((6, 4))
    np.testing.assert_array_equal(loaded.predict(x), network.predict(x))
    t = rng.integers(0, 3, 6)
    assert loaded.loss(x, t) == network.loss(x, t)  # weight decay came back too
    assert shares_arrays(loaded)
    assert all(array.flags.writeable for array in loaded.params.values())  # optimizers update in place


def test_layer_buffers_round_trip(tmp_path, rng):
    network = Sequential(
        [
            Affine(rng.standard_normal((4, 3)), np.zeros(3)),
            BatchNormalization(np.ones(3), np.zeros(3)),
            Relu(),
        ]
    )
    network.predict(rng.standard_normal((8, 4)), train_flg=True)  # moves the running statistics
    path = save(network, tmp_path / "model.npz")
    assert "buffers/BatchNormalization1/running_mean" in model_parts(path)[1]
    loaded = load(path)
    layer = loaded.layers["BatchNormalization1"]
    assert_same_arrays(layer.buffers, network.layers["BatchNormalization1"].buffers)
    assert layer.running_mean is layer.buffers["running_mean"]
    x = rng.standard_normal((5, 4))
    np.testing.assert_array_equal(loaded.predict(x), network.predict(x))


def test_path_is_used_exactly_as_given(tmp_path):
    network = TwoLayerNet(2, 3, 2, seed=0)
    returned = save(network, str(tmp_path / "model"))
    assert returned == tmp_path / "model" and isinstance(returned, Path)
    assert sorted(os.listdir(tmp_path)) == ["model"]  # no ".npz" added
    assert type(load(str(tmp_path / "model"))) is TwoLayerNet


def test_new_file_gets_the_usual_permissions(tmp_path):
    if os.name != "posix":
        pytest.skip("POSIX permissions")
    umask = os.umask(0o022)
    try:
        path = save(TwoLayerNet(2, 3, 2, seed=0), tmp_path / "model.npz")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0o600


# ---------------------------------------------------------------- atomic writes


def test_save_replaces_an_existing_file(model_file):
    network = TwoLayerNet(4, 5, 3, seed=7)
    save(network, model_file)
    assert_same_arrays(load(model_file).params, network.params)
    assert os.listdir(model_file.parent) == [model_file.name]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()], ids=repr)
def test_failed_save_keeps_the_old_file_and_leaves_no_temporary(model_file, monkeypatch, error):
    before = model_file.read_bytes()

    def fail_midway(file, *args, **kwargs):
        file.write(b"PK\x03\x04 half an archive")
        raise error

    monkeypatch.setattr(np, "savez", fail_midway)
    with pytest.raises(type(error)):
        save(TwoLayerNet(4, 5, 3, seed=7), model_file)
    assert model_file.read_bytes() == before
    assert os.listdir(model_file.parent) == [model_file.name]


# ---------------------------------------------------------------- what save refuses


class HomemadeLayer(Layer):
    def forward(self, x):
        return x


class HomemadeNet(Sequential):
    pass


def test_save_refuses_params_replaced_instead_of_updated(tmp_path):
    network = TwoLayerNet(2, 3, 2, seed=0)
    network.params["W1"] = network.params["W1"] * 2  # the layers no longer see W1
    with pytest.raises(ValueError, match=r"params\['W1'\] is not an array any layer uses"):
        save(network, tmp_path / "model.npz")


@pytest.mark.parametrize(
    "network, match",
    [
        (Sequential([HomemadeLayer()]), "HomemadeLayer is not a layer dlscratch.layers exports"),
        (HomemadeNet([Relu()]), "cannot save a HomemadeNet"),
    ],
    ids=["layer", "network"],
)
def test_save_refuses_what_load_could_not_rebuild(tmp_path, network, match):
    with pytest.raises(ValueError, match=match):
        save(network, tmp_path / "model.npz")
    assert os.listdir(tmp_path) == []


def test_save_refuses_a_non_network(tmp_path):
    with pytest.raises(TypeError, match="got dict"):
        save({"W1": np.ones(2)}, tmp_path / "model.npz")


def test_write_archive_refuses_object_arrays(tmp_path):
    with pytest.raises(ValueError, match="dtype object is not a plain number type"):
        write_archive(tmp_path / "x.npz", {}, {"a": np.array([{}], dtype=object)})


# ---------------------------------------------------------------- what load refuses


def replace_member(path: Path, name: str, data: bytes) -> Path:
    """Rewrite the zip at path with member `name` holding data instead; returns path."""
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    members[name] = data
    with zipfile.ZipFile(path, "w") as archive:
        for member, content in members.items():
            archive.writestr(member, content)
    return path


def npy_bytes(header: dict[str, Any], data: bytes) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + data


NPY_F8_3 = {"descr": "<f8", "fortran_order": False, "shape": (3,)}


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


BROKEN_FILES = {
    "empty": (lambda path, good: write_bytes(path, b""), "not a zip archive"),
    "text": (lambda path, good: write_bytes(path, b"W1 = [1, 2]\n"), "not a zip archive"),
    "npy": (lambda path, good: write_bytes(path, npy_bytes(NPY_F8_3, bytes(24))), "not a zip archive"),
    "truncated": (lambda path, good: write_bytes(path, good.read_bytes()[:-30]), "damaged file"),
    "no meta": (lambda path, good: raw_archive(path, None, model_parts(good)[1]), "no __meta__ record"),
    "meta not UTF-8": (lambda path, good: raw_archive(path, b"\xff\xfe{}", {}), "UnicodeDecodeError"),
    "meta not JSON": (lambda path, good: raw_archive(path, b"{'format': 1", {}), "JSONDecodeError"),
    "meta not an object": (lambda path, good: raw_archive(path, [1, 2], {}), "must hold a JSON object"),
    "meta not bytes": (
        lambda path, good: replace_member(
            raw_archive(path, b"", {}), f"{META}.npy", npy_bytes(NPY_F8_3, bytes(24))
        ),
        "__meta__ must be a 1-D uint8 array",
    ),
    "compressed": (
        lambda path, good: raw_archive(path, *model_parts(good), savez=np.savez_compressed),
        "compressed or encrypted",
    ),
    "foreign member": (
        lambda path, good: replace_member(raw_archive(path, *model_parts(good)), "notes.txt", b"hi"),
        "unexpected member 'notes.txt'",
    ),
    "header claims 10**12 values": (
        lambda path, good: replace_member(
            raw_archive(path, *model_parts(good)),
            "params/b1.npy",
            npy_bytes({"descr": "<f8", "fortran_order": False, "shape": (10**12,)}, bytes(8)),
        ),
        "params/b1' is truncated or padded",
    ),
}


@pytest.mark.parametrize("make", BROKEN_FILES.values(), ids=BROKEN_FILES.keys())
def test_broken_file_is_refused(tmp_path, model_file, make):
    make_file, match = make
    path = make_file(tmp_path / "broken.npz", model_file)
    with pytest.raises(ValueError, match=match) as refused:
        load(path)
    assert str(path) in str(refused.value)  # the message names the file


def set_in(container: dict, keys: tuple, value: Any) -> None:
    for key in keys[:-1]:
        container = container[key]
    container[keys[-1]] = value


def change(*keys: Any, value: Any) -> Callable[[dict, dict], None]:
    """A tampering: set meta[keys...] = value."""
    return lambda meta, arrays: set_in(meta, keys, value)


TAMPERINGS = {
    "format": (change("format", value="something-else"), "its format is 'something-else'"),
    "checkpoint given to load": (
        change("format", value="dlscratch-checkpoint"),
        "format is 'dlscratch-checkpoint'",
    ),
    "newer version": (change("version", value=2), "version 2 .* newer dlscratch"),
    "version as text": (change("version", value="1"), "version '1' is not"),
    "unknown class": (change("network", "class", value="Popen"), "unknown network class 'Popen'; known: "),
    "module, not class": (change("network", "class", value="init"), "unknown network class 'init'"),
    "layer class as net": (change("network", "class", value="Affine"), "unknown network class 'Affine'"),
    "no config": (change("network", "config", value=None), "needs 'config' as dict, got None"),
    "bad config": (change("network", "config", "hidden_size", value=-5), "cannot rebuild a TwoLayerNet"),
    "absurd size": (
        change("network", "config", "hidden_size", value=10**12),
        "weights would take more than the file.s params/ arrays hold",
    ),
    "unknown argument": (
        change("network", "config", "colour", value=1),
        "unexpected keyword argument 'colour'",
    ),
    "param_layers": (
        change("network", "param_layers", "W1", value=["Affine2", "W"]),
        "does not match its record: param_layers",
    ),
    "no arrays table": (lambda meta, arrays: meta.pop("arrays"), "needs 'arrays' as dict, got None"),
    "record shape": (
        change("arrays", "params/W1", "shape", value=[5, 4]),
        r"shape \(4, 5\) but the record says \(5, 4\)",
    ),
    "record dtype": (
        change("arrays", "params/W1", "dtype", value="float32"),
        "dtype float64 but the record says float32",
    ),
    "record dtype object": (
        change("arrays", "params/W1", "dtype", value="object"),
        "dtype 'object' is not allowed",
    ),
    "record negative shape": (change("arrays", "params/b1", "shape", value=[-5]), "integers >= 0"),
    "record huge shape": (change("arrays", "params/b1", "shape", value=[10**12]), r"says \(1000000000000,\)"),
    "record not a dict": (change("arrays", "params/b1", value=[5]), "must be a JSON object"),
    "missing array": (lambda meta, arrays: arrays.pop("params/b2"), r"missing: \['params/b2'\]"),
    "unlisted array": (
        lambda meta, arrays: arrays.update(extra=np.ones(2)),
        r"not listed in the record: \['extra'\]",
    ),
    "array the net lacks": (
        lambda meta, arrays: (
            arrays.update({"params/W9": np.ones(2)}),
            set_in(meta, ("arrays", "params/W9"), {"shape": [2], "dtype": "float64"}),
        ),
        r"unexpected arrays \['params/W9'\]",
    ),
    "array of another shape": (
        lambda meta, arrays: (
            arrays.update({"params/b2": np.ones(4)}),
            set_in(meta, ("arrays", "params/b2", "shape"), [4]),
        ),
        r"params/b2 has shape \(4,\) but the network's is \(3,\)",
    ),
    "array of another dtype": (
        lambda meta, arrays: (
            arrays.update({"params/b2": np.ones(3, np.float32)}),
            set_in(meta, ("arrays", "params/b2", "dtype"), "float32"),
        ),
        "params/b2 has dtype float32 but the network's is float64",
    ),
}


def tampered(tmp_path: Path, good: Path, tamper: Callable[[dict, dict], Any]) -> Path:
    meta, arrays = model_parts(good)
    tamper(meta, arrays)
    return raw_archive(tmp_path / "tampered.npz", meta, arrays)


@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_tampered_model_file_is_refused(tmp_path, model_file, tamper):
    tamper_with, match = tamper
    path = tampered(tmp_path, model_file, tamper_with)
    with pytest.raises(ValueError, match=match) as refused:
        load(path)
    assert str(path) in str(refused.value)


def layer_spec(index: int, **fields: Any) -> Callable[[dict, dict], None]:
    return lambda meta, arrays: meta["network"]["config"]["layers"][index].update(fields)


SEQUENTIAL_TAMPERINGS = {
    "unknown layer": (layer_spec(1, type="Popen"), "unknown layer type 'Popen'; known: "),
    "not a Layer": (layer_spec(1, type="MulLayer"), "unknown layer type 'MulLayer'"),
    "same name twice": (layer_spec(2, name="Affine1"), "two layers are named 'Affine1'"),
    "slash in name": (layer_spec(1, name="a/b"), "without '/'"),
    "unknown layer argument": (layer_spec(1, config={"beta": 2}), "cannot rebuild layer 'LeakyRelu1'"),
    "array as config": (layer_spec(0, config={"W": [[1.0]]}), "multiple values for keyword argument 'W'"),
    "bad last layer": (
        change("network", "config", "last_layer", value="Relu2"),
        "unknown layer type 'Relu2'",
    ),
    "owner of unknown array": (
        change("network", "param_layers", "W7", value=["Affine1", "W"]),
        "param_layers names 'W7' but there is no array params/W7",
    ),
}


@pytest.mark.parametrize("tamper", SEQUENTIAL_TAMPERINGS.values(), ids=SEQUENTIAL_TAMPERINGS.keys())
def test_tampered_sequential_file_is_refused(tmp_path, rng, tamper):
    tamper_with, match = tamper
    good = save(small_sequential(rng, LeakyRelu(0.2)), tmp_path / "good.npz")
    with pytest.raises(ValueError, match=match):
        load(tampered(tmp_path, good, tamper_with))


UNPICKLED: list[bool] = []


def _note_unpickling() -> int:
    UNPICKLED.append(True)
    return 0


class PickleTrap:
    """Unpickling this calls _note_unpickling: a stand-in for a malicious payload."""

    def __reduce__(self):
        return _note_unpickling, ()


@pytest.fixture
def unpickled() -> list[bool]:
    """The calls the pickle trap saw during one test."""
    UNPICKLED.clear()
    yield UNPICKLED
    UNPICKLED.clear()


@pytest.mark.parametrize("recorded_dtype", ["float64", "object"])
def test_object_array_is_refused_and_never_unpickled(tmp_path, model_file, recorded_dtype, unpickled):
    meta, arrays = model_parts(model_file)
    arrays["params/b1"] = np.array([PickleTrap() for _ in range(5)], dtype=object)
    set_in(meta, ("arrays", "params/b1", "dtype"), recorded_dtype)
    path = raw_archive(tmp_path / "trap.npz", meta, arrays)
    with pytest.raises(ValueError, match=r"dtype object, not plain numbers|'object' is not allowed"):
        load(path)
    assert unpickled == []
    with np.load(path, allow_pickle=True) as archive:  # the trap works: pickle would have run it
        archive["params/b1"]
    assert unpickled == [True] * 5


def test_pickle_file_is_refused_and_never_unpickled(tmp_path, unpickled):
    path = write_bytes(tmp_path / "model.npz", pickle.dumps(PickleTrap()))
    with pytest.raises(ValueError, match="not a zip archive"):
        load(path)
    assert unpickled == []


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nothing.npz")


def test_file_from_before_a_setting_existed_still_loads(tmp_path):
    """A file written before DeepConvNet had use_batchnorm/dropout_ratio loads with their defaults."""
    good = save(DeepConvNet(seed=0, dtype=np.float32), tmp_path / "deep.npz")

    def written_by_an_older_version(meta, arrays):
        for setting in ("use_batchnorm", "dropout_ratio"):
            del meta["network"]["config"][setting]

    network = load(tampered(tmp_path, good, written_by_an_older_version))
    assert network.config()["dropout_ratio"] == 0.5 and not network.config()["use_batchnorm"]


# ---------------------------------------------------------------- nothing allocated from a record's claims


def huge_network_file(path: Path, model_file: Path) -> Path:
    """A 500-byte file whose record asks for a TwoLayerNet of 10**9 hidden units (4 GB of
    weights per input) and holds no arrays at all."""
    meta, _ = model_parts(model_file)
    meta["network"]["config"]["hidden_size"] = 10**9
    meta["arrays"] = {}
    return raw_archive(path, meta, {})


def test_a_record_asking_for_a_huge_network_is_refused_before_building_it(tmp_path, model_file):
    path = huge_network_file(tmp_path / "huge.npz", model_file)
    assert path.stat().st_size < 1000
    with pytest.raises(
        ValueError, match=r"weights would take more than the file's params/ arrays hold \(0 bytes\)"
    ):
        load(path)


@pytest.mark.parametrize(
    "setting, value",
    [("hidden_size", 10**9), ("input_size", 10**8), ("output_size", 3 * 10**8), ("hidden_size", 123_456)],
)
def test_peak_memory_of_a_record_asking_for_a_huge_network(tmp_path, model_file, setting, value):
    meta, arrays = model_parts(model_file)
    meta["network"]["config"][setting] = value
    path = raw_archive(tmp_path / "huge.npz", meta, arrays)
    assert_refused_within_memory("dlscratch.serialize:load", path)


def test_a_huge_convolution_record_is_refused_within_memory(tmp_path):
    good = save(DeepConvNet(seed=0, dtype=np.float32), tmp_path / "deep.npz")
    meta, arrays = model_parts(good)
    meta["network"]["config"]["conv_param_1"]["pad"] = 3001  # a 6028 x 6028 image after it
    path = raw_archive(tmp_path / "padded.npz", meta, arrays)
    with pytest.raises(ValueError, match="weights would take more than"):
        load(path)
    assert_refused_within_memory("dlscratch.serialize:load", path)


def test_loading_draws_no_random_numbers(model_file, monkeypatch):
    """The weights a file overwrites are not drawn first (a TwoLayerNet's config has no
    seed, so building one draws from np.random's global generator)."""
    meta, arrays = model_parts(model_file)
    assert meta["network"]["class"] == "TwoLayerNet" and "seed" not in meta["network"]["config"]

    def no_draws(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("load drew random numbers")

    monkeypatch.setattr(np.random, "standard_normal", no_draws)
    assert_same_arrays(load(model_file).params, {k.removeprefix("params/"): v for k, v in arrays.items()})


# ---------------------------------------------------------------- impossible values


def with_array(tmp_path: Path, good: Path, name: str, edit: Callable[[np.ndarray], None]) -> Path:
    meta, arrays = model_parts(good)
    arrays[name] = arrays[name].copy()
    edit(arrays[name])
    return raw_archive(tmp_path / "edited.npz", meta, arrays)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused_unless_asked_for(tmp_path, model_file, value):
    path = with_array(tmp_path, model_file, "params/W2", lambda W: W.__setitem__((1, 2), value))
    with pytest.raises(ValueError, match="params/W2 holds NaN or infinite values; pass check_values=False"):
        load(path)
    loaded = load(path, check_values=False)
    assert not np.isfinite(loaded.params["W2"][1, 2])


def test_a_negative_running_variance_is_refused(tmp_path):
    network = Sequential([Affine(np.ones((4, 3)), np.zeros(3)), BatchNormalization(np.ones(3), np.zeros(3))])
    good = save(network, tmp_path / "bn.npz")
    path = with_array(
        tmp_path, good, "buffers/BatchNormalization1/running_var", lambda v: v.__setitem__(0, -1)
    )
    with pytest.raises(ValueError, match="running_var holds negative values, impossible for a variance"):
        load(path)
    assert load(path, check_values=False).layers["BatchNormalization1"].running_var[0] == -1


def test_save_refuses_non_finite_weights_unless_asked_for(tmp_path):
    network = TwoLayerNet(2, 3, 2, seed=0)
    network.params["b1"][0] = np.nan
    with pytest.raises(ValueError, match="params/b1 holds NaN"):
        save(network, tmp_path / "model.npz")
    assert os.listdir(tmp_path) == []
    assert np.isnan(
        load(save(network, tmp_path / "model.npz", check_values=False), check_values=False).params["b1"][0]
    )


@pytest.mark.parametrize(
    "tamper, match",
    [
        (layer_spec(1, type="Layer"), "unknown layer type 'Layer'"),  # the base class computes nothing
        (change("network", "config", "last_layer", value="Relu"), "the last layer must be a loss layer"),
    ],
    ids=["base layer", "last layer not a loss"],
)
def test_layers_that_cannot_evaluate_are_refused(tmp_path, rng, tamper, match):
    good = save(small_sequential(rng, Relu()), tmp_path / "good.npz")
    with pytest.raises(ValueError, match=match):
        load(tampered(tmp_path, good, tamper))


def test_a_fifo_is_refused_at_once(tmp_path):
    """A FIFO named model.npz, with no writer, would block a plain open() forever."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("FIFOs are POSIX")
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    code = "import sys; from dlscratch.serialize import load; load(sys.argv[1])"
    result = subprocess.run(
        [sys.executable, "-c", code, str(fifo)], capture_output=True, text=True, timeout=60
    )
    assert "ValueError" in result.stderr and "is not a regular file" in result.stderr


def test_save_refuses_a_last_layer_load_would_refuse(tmp_path):
    with pytest.raises(
        ValueError, match="the last layer must be a loss layer such as SoftmaxWithLoss, got Relu"
    ):
        save(Sequential([Affine(np.ones((2, 2)), np.zeros(2))], Relu()), tmp_path / "model.npz")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- metadata, dtype conversion


def test_metadata_is_kept_with_the_model_and_read_without_building_it(tmp_path, monkeypatch):
    metadata = {"data": {"dataset": "fashion-mnist", "input_scale": np.float64(1 / 255)}, "note": [1, 2]}
    path = save(TwoLayerNet(4, 3, 2, seed=0), tmp_path / "model.npz", metadata=metadata)
    monkeypatch.setattr(TwoLayerNet, "__init__", None)  # load_metadata must not build the network
    assert load_metadata(path) == {
        "data": {"dataset": "fashion-mnist", "input_scale": 1 / 255},
        "note": [1, 2],
    }


def test_a_model_without_metadata_has_an_empty_one(tmp_path):
    assert load_metadata(save(TwoLayerNet(4, 3, 2, seed=0), tmp_path / "model.npz")) == {}


def test_metadata_that_is_no_object_is_refused(tmp_path):
    with pytest.raises(ValueError, match="metadata must be a dict"):
        save(TwoLayerNet(4, 3, 2, seed=0), tmp_path / "model.npz", metadata=[1])
    meta, arrays = model_parts(save(TwoLayerNet(4, 3, 2, seed=0), tmp_path / "model.npz"))
    meta["metadata"] = "trained on MNIST"
    with pytest.raises(ValueError, match="the metadata must be a JSON object, got 'trained on MNIST'"):
        load_metadata(raw_archive(tmp_path / "edited.npz", meta, arrays))


@pytest.mark.parametrize(
    "network",
    [
        DeepConvNet(
            (1, 8, 8),
            *[{"filter_num": 2, "filter_size": 3, "pad": 1, "stride": 1}] * 6,
            hidden_size=4,
            output_size=3,
            use_batchnorm=True,
            seed=0,
            dtype=np.float32,
        ),
        Sequential([Affine(np.ones((4, 3), np.float32), np.zeros(3, np.float32)), Relu()]),
    ],
    ids=["DeepConvNet", "Sequential"],
)
def test_with_dtype_copies_every_array_converted(network, rng):
    for layer in network.layers.values():
        for buffer in getattr(layer, "buffers", {}).values():
            buffer += 0.25
    state = np.random.get_state()
    copy = with_dtype(network, np.float64)
    assert np.random.get_state()[1].tolist() == state[1].tolist()  # built from zeros, nothing drawn
    assert type(copy) is type(network)
    ours, theirs = network_arrays(copy), network_arrays(network)
    assert ours.keys() == theirs.keys()
    for name, array in ours.items():
        assert array.dtype == np.float64 and np.array_equal(array, theirs[name]), name
        assert not np.shares_memory(array, theirs[name])
    x = rng.standard_normal((2, 1, 8, 8) if isinstance(network, DeepConvNet) else (2, 4))
    np.testing.assert_allclose(copy.predict(x), network.predict(x.astype(np.float32)), rtol=1e-4, atol=1e-5)
