"""save_params / load_params: the book's method names, dlscratch's safe file format."""

from __future__ import annotations

import numpy as np
import pytest

from dlscratch import DeepConvNet, MultiLayerNetExtend, SimpleConvNet, TwoLayerNet, load
from dlscratch.nets.params_file import read_params

SMALL_CONV = {"filter_num": 3, "filter_size": 3, "pad": 1, "stride": 1}


def _nets(seed):
    return [
        TwoLayerNet(6, 4, 3, seed=seed),
        MultiLayerNetExtend(6, [5, 4], 3, use_batchnorm=True, seed=seed),
        SimpleConvNet((1, 8, 8), SMALL_CONV, hidden_size=5, output_size=3, seed=seed),
        DeepConvNet((1, 8, 8), *[SMALL_CONV] * 6, hidden_size=5, output_size=3, seed=seed),
    ]


@pytest.mark.parametrize("index", range(4))
def test_save_params_then_load_params_restores_every_array(index, tmp_path):
    saved, fresh = _nets(seed=1)[index], _nets(seed=2)[index]
    for layer in saved.layers.values():  # batch norm's statistics travel too
        for buffer in getattr(layer, "buffers", {}).values():
            buffer += 0.5
    path = tmp_path / "params.pkl"  # the book's name; the file is dlscratch's format all the same
    saved.save_params(str(path))
    assert path.read_bytes()[:4] == b"PK\x03\x04"
    arrays_before = {k: id(v) for k, v in fresh.params.items()}
    fresh.load_params(path)
    for key, value in saved.params.items():
        np.testing.assert_array_equal(fresh.params[key], value)
        assert id(fresh.params[key]) == arrays_before[key]  # copied in: layers and optimizers stay connected
    for name, layer in saved.layers.items():
        for key, buffer in getattr(layer, "buffers", {}).items():
            np.testing.assert_array_equal(fresh.layers[name].buffers[key], buffer)
    assert type(load(path)) is type(saved)


def test_load_params_converts_to_the_networks_dtype(tmp_path):
    TwoLayerNet(6, 4, 3, seed=1).save_params(tmp_path / "p.npz")
    single = TwoLayerNet(6, 4, 3, seed=2, dtype=np.float32)
    single.load_params(tmp_path / "p.npz")
    assert single.params["W1"].dtype == np.float32
    np.testing.assert_allclose(single.params["W1"], TwoLayerNet(6, 4, 3, seed=1).params["W1"], rtol=1e-7)


def test_load_params_refuses_a_file_of_another_shape(tmp_path):
    TwoLayerNet(6, 4, 3, seed=1).save_params(tmp_path / "p.npz")
    with pytest.raises(ValueError, match=r"does not fit this TwoLayerNet: params/W1 has shape \(6, 4\)"):
        TwoLayerNet(6, 5, 3, seed=1).load_params(tmp_path / "p.npz")
    with pytest.raises(ValueError, match=r"MultiLayerNetExtend: missing params/W3, params/b3, params/beta1"):
        MultiLayerNetExtend(6, [4, 4], 3, use_batchnorm=True, seed=0).load_params(tmp_path / "p.npz")


def test_read_params_names_arrays_as_a_model_file_does(tmp_path):
    MultiLayerNetExtend(6, [5], 3, use_batchnorm=True, seed=0).save_params(tmp_path / "p.npz")
    assert sorted(read_params(tmp_path / "p.npz")) == [
        "buffers/BatchNorm1/running_mean",
        "buffers/BatchNorm1/running_var",
        "params/W1",
        "params/W2",
        "params/b1",
        "params/b2",
        "params/beta1",
        "params/gamma1",
    ]
