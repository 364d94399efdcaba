"""load_mnist / load_fashion_mnist: the book's options on tiny files, where files are looked
for, the message when they are missing, and the real Fashion-MNIST when installed."""

import dataclasses
import gzip
import math
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from _http import unreachable_url, write_fake_mnist
from peak_memory import assert_refused_within_memory

from dlscratch.datasets import (
    DATASETS,
    DatasetNotFoundError,
    default_data_dir,
    installed_datasets,
    load_fashion_mnist,
    load_mnist,
    read_idx,
)

N_TRAIN, N_TEST = 20, 10
FASHION_DIR = Path(DATASETS["fashion-mnist"].system_dirs[0])  # Debian's dataset-fashion-mnist


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """Mirrors point at 127.0.0.1 where nothing listens, and caches into tmp_path: no test
    here can reach the network or the user's cache."""
    for name, spec in DATASETS.items():
        mirrors = (unreachable_url(), unreachable_url())
        monkeypatch.setitem(DATASETS, name, dataclasses.replace(spec, mirrors=mirrors))
    monkeypatch.setenv("DLSCRATCH_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("TQDM_DISABLE", "1")


@pytest.fixture
def data_dir(tmp_path):
    """A folder holding the four files of a tiny MNIST: 20 train and 10 test images."""
    write_fake_mnist(tmp_path / "tiny", N_TRAIN, N_TEST)
    return tmp_path / "tiny"


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("flatten", [True, False])
@pytest.mark.parametrize("one_hot_label", [True, False])
def test_options(data_dir, normalize, flatten, one_hot_label):
    (x_train, t_train), (x_test, t_test) = load_mnist(normalize, flatten, one_hot_label, data_dir=data_dir)
    raw = read_idx(data_dir / "train-images-idx3-ubyte.gz")
    for x, t, n in [(x_train, t_train, N_TRAIN), (x_test, t_test, N_TEST)]:
        assert x.shape == ((n, 784) if flatten else (n, 1, 28, 28))
        assert t.shape == ((n, 10) if one_hot_label else (n,))
        labels = np.arange(n) % 10
        if one_hot_label:
            assert t.dtype == np.float32
            np.testing.assert_array_equal(t, np.eye(10, dtype=np.float32)[labels])
        else:
            assert t.dtype == np.int64
            np.testing.assert_array_equal(t, labels)
    if normalize:
        assert x_train.dtype == np.float32
        assert x_train.min() == 0.0 and x_train.max() == 1.0
        np.testing.assert_array_equal(x_train.reshape(raw.shape), raw.astype(np.float32) / 255)
    else:
        assert x_train.dtype == np.uint8
        np.testing.assert_array_equal(x_train.reshape(raw.shape), raw)


def test_positional_call_as_in_the_book(data_dir):
    (x_train, t_train), _ = load_mnist(True, True, True, data_dir=str(data_dir))
    assert x_train.shape == (N_TRAIN, 784) and t_train.shape == (N_TRAIN, 10)


def test_found_via_env_var(tmp_path, monkeypatch):
    write_fake_mnist(tmp_path / "env" / "mnist", N_TRAIN, N_TEST)
    write_fake_mnist(tmp_path / "env" / "fashion-mnist", 30, 5)
    (x, _), _ = load_mnist()
    assert x.shape == (N_TRAIN, 784)
    (x, _), (xt, _) = load_fashion_mnist()
    assert x.shape == (30, 784) and xt.shape == (5, 784)


def test_uncompressed_files(tmp_path):
    write_fake_mnist(tmp_path / "plain", N_TRAIN, N_TEST, gz=False)
    (x, _), (xt, _) = load_mnist(data_dir=tmp_path / "plain")
    assert x.shape == (N_TRAIN, 784) and xt.shape == (N_TEST, 784)


def test_system_folder_after_cache(tmp_path, monkeypatch):
    """Fashion-MNIST: files missing from the cache are found in the system folder."""
    system = tmp_path / "usr-share"
    write_fake_mnist(system, N_TRAIN, N_TEST)
    write_fake_mnist(tmp_path / "env" / "fashion-mnist", 7, 3)
    (tmp_path / "env" / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    (tmp_path / "env" / "fashion-mnist" / "t10k-images-idx3-ubyte.gz").unlink()
    spec = dataclasses.replace(DATASETS["fashion-mnist"], system_dirs=(str(system),))
    monkeypatch.setitem(DATASETS, "fashion-mnist", spec)
    (x, _), (xt, _) = load_fashion_mnist(download=False)
    assert x.shape == (7, 784) and xt.shape == (N_TEST, 784)  # train from cache, test from system


def test_explicit_data_dir_is_the_only_place_looked(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"(?m)^Looked in: \S*empty$"):
        load_fashion_mnist(data_dir=tmp_path / "empty", download=False)


def test_default_data_dir(tmp_path, monkeypatch):
    assert default_data_dir("mnist") == tmp_path / "env" / "mnist"
    monkeypatch.delenv("DLSCRATCH_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_data_dir("fashion-mnist") == tmp_path / "xdg" / "dlscratch" / "fashion-mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # ignored, as the XDG spec says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_dir("mnist") == tmp_path / "home" / ".cache" / "dlscratch" / "mnist"


def test_download_off_message(tmp_path):
    folder = tmp_path / "env" / "mnist"
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist(download=False)
    message = str(info.value)
    assert message.startswith(f"MNIST: 4 file(s) missing and not downloaded. Put these files in {folder}")
    assert "download=False" in message
    assert all(name in message for name in DATASETS["mnist"].md5)


def test_offline_message(tmp_path):
    """Missing files, unreachable mirrors: one error saying what to put where and why."""
    mirrors = DATASETS["mnist"].mirrors
    write_fake_mnist(tmp_path / "env" / "mnist", N_TRAIN, N_TEST)
    (tmp_path / "env" / "mnist" / "t10k-images-idx3-ubyte.gz").unlink()
    (tmp_path / "env" / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist()
    error = info.value
    assert isinstance(error, OSError)
    assert error.missing == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert error.folder == tmp_path / "env" / "mnist"
    message = str(error)
    assert "2 file(s) missing" in message and str(error.folder) in message
    assert "train-images" not in message  # the files that are there are not asked for
    for mirror in mirrors:
        assert f"{mirror}t10k-images-idx3-ubyte.gz: " in message
    assert message.count("Connection refused") == 2
    # the parts, for a caller that words its own message (the command line names its options)
    assert error.dataset == "mnist" and error.looked_in == (error.folder,)
    assert error.reason.startswith("Mirrors tried for t10k-images-idx3-ubyte.gz:") and error.reason in message


def test_installed_data_sets_are_found_without_reading_them(tmp_path, monkeypatch):
    empty_system = dataclasses.replace(DATASETS["fashion-mnist"], system_dirs=(str(tmp_path / "none"),))
    monkeypatch.setitem(DATASETS, "fashion-mnist", empty_system)
    assert installed_datasets() == []
    write_fake_mnist(tmp_path / "env" / "fashion-mnist", N_TRAIN, N_TEST)
    (tmp_path / "env" / "fashion-mnist" / "train-labels-idx1-ubyte.gz").write_bytes(b"unread")
    assert installed_datasets() == ["fashion-mnist"]
    (tmp_path / "env" / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    assert installed_datasets() == []  # three files of four are no data set
    write_fake_mnist(tmp_path / "mine", N_TRAIN, N_TEST)
    assert installed_datasets(tmp_path / "mine") == ["mnist", "fashion-mnist"]


def test_each_data_set_names_its_ten_classes():
    assert DATASETS["mnist"].classes == tuple("0123456789")
    assert (
        DATASETS["fashion-mnist"].classes[0] == "T-shirt/top"
        and DATASETS["fashion-mnist"].classes[9] == "Ankle boot"
    )


def test_malformed_local_file_is_named(data_dir):
    (data_dir / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\0\0\x08\x01\0\0\0\x0aabc")  # 10 labels, 3 bytes
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte\.gz: .*file truncated"):
        load_mnist(data_dir=data_dir)


def test_real_fashion_mnist():
    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
        reason = f"Fashion-MNIST not installed in {FASHION_DIR} (apt install dataset-fashion-mnist)"
        if os.environ.get("DLSCRATCH_REQUIRE_DATA") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    # The cache (in tmp_path) is empty: this finds the files through the system folder.
    (x_train, t_train), (x_test, t_test) = load_fashion_mnist(download=False)
    assert x_train.shape == (60000, 784) and x_test.shape == (10000, 784)
    for x in (x_train, x_test):
        assert x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0
    for t in (t_train, t_test):
        assert t.dtype == np.int64 and t.min() == 0 and t.max() == 9
    assert np.bincount(t_train).tolist() == [6000] * 10
    assert np.bincount(t_test).tolist() == [1000] * 10


def load_folder(folder: Path) -> None:
    """load_mnist on one folder, offline: what the peak-memory child process runs."""
    load_mnist(data_dir=folder, download=False)


def gzip_idx(path: Path, code: int, dims: tuple[int, ...]) -> Path:
    """A gzip IDX file of zeros with a truthful header: tiny on disk, dims' product in memory."""
    with gzip.GzipFile(path, "wb", mtime=0) as file:
        file.write(struct.pack(f">2xBB{len(dims)}I", code, len(dims), *dims))
        left = math.prod(dims)
        while left:
            file.write(bytes(min(left, 1 << 22)))
            left -= min(left, 1 << 22)
    return path


def test_counts_are_compared_before_the_data_is_read(tmp_path, data_dir):
    """An images file of 200,000 blank images (160 MB unpacked, 160 kB on disk) beside 10
    labels is refused from the headers alone."""
    gzip_idx(data_dir / "t10k-images-idx3-ubyte.gz", 0x08, (200_000, 28, 28))
    with pytest.raises(
        ValueError, match=r"holds 200000 images but .*t10k-labels-idx1-ubyte\.gz holds 10 labels"
    ):
        load_mnist(data_dir=data_dir)
    assert_refused_within_memory("test_mnist:load_folder", data_dir)


def test_an_empty_data_set_is_named(data_dir):
    gzip_idx(data_dir / "t10k-images-idx3-ubyte.gz", 0x08, (0, 28, 28))
    gzip_idx(data_dir / "t10k-labels-idx1-ubyte.gz", 0x08, (0,))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.gz holds no images .*an empty data set"):
        load_mnist(data_dir=data_dir)
