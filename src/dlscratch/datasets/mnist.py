"""MNIST and Fashion-MNIST: find the four IDX files, fetch the missing ones, load them.

Where the files are looked for, per file, first match wins:

1. ``data_dir`` when given (then only there; downloads go there too);
2. else the data set's cache folder, ``default_data_dir(name)``:
   ``$DLSCRATCH_DATA_DIR/<name>`` when that variable is set, else
   ``$XDG_CACHE_HOME/dlscratch/<name>``, else ``~/.cache/dlscratch/<name>``;
   then system folders (Fashion-MNIST: ``/usr/share/datasets/fashion-mnist``, where
   Debian's ``dataset-fashion-mnist`` package puts it).

In each folder a file is found under its published name (``train-images-idx3-ubyte.gz``)
or without the ``.gz``. Missing files are downloaded into the first folder (see
``download.py``); downloads are checked against the published md5, while local files are
trusted once they parse strictly (Debian recompressed its copies, so their md5s differ).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlscratch.datasets.download import DownloadError, download_file
from dlscratch.datasets.idx import read_idx, read_idx_header

__all__ = [
    "DATASETS",
    "FILES",
    "DatasetNotFoundError",
    "DatasetSpec",
    "default_data_dir",
    "installed_datasets",
    "load_fashion_mnist",
    "load_idx_dataset",
    "load_mnist",
]

#: The four files of an MNIST-style data set: train images, train labels, test images,
#: test labels.
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

Dataset = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class DatasetSpec:
    """Where a data set lives: its folder name, mirrors, checksums and system folders.

    Tests and users swap a spec in ``DATASETS`` (``dataclasses.replace``) to point at
    other mirrors.

    Parameters
    ----------
    name : str
        The folder name under the data directory, e.g. "fashion-mnist".
    title : str
        The name shown in messages, e.g. "Fashion-MNIST".
    mirrors : tuple of str
        Base URLs tried in turn, each ending with "/".
    md5 : mapping of str to str
        Each name in FILES -> the md5 of the published ``.gz``.
    system_dirs : tuple of str, default ()
        Folders searched after the cache, such as a Debian package's.
    hint : str, default ""
        A sentence added to the "not found" message (how to install the files).
    sizes : mapping of str to int, default {}
        Each name -> its published size in bytes: a download may be no larger (a name
        without a size is not capped).
    classes : tuple of str, default the digits "0" to "9"
        The name of each label, in label order.
    """

    name: str
    title: str
    mirrors: tuple[str, ...]
    md5: Mapping[str, str]
    system_dirs: tuple[str, ...] = ()
    hint: str = ""
    sizes: Mapping[str, int] = field(default_factory=dict)
    classes: tuple[str, ...] = tuple(str(digit) for digit in range(10))


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        title="MNIST",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        md5=dict(
            zip(
                FILES,
                (
                    "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                    "d53e105ee54ea40749a09fcbcd1e9432",
                    "9fb629c4189551a2d022fa330f9573f3",
                    "ec29112dd5afa0611ce80d1b7f02629c",
                ),
                strict=True,
            )
        ),
        sizes=dict(zip(FILES, (9912422, 28881, 1648877, 4542), strict=True)),
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        title="Fashion-MNIST",
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        md5=dict(
            zip(
                FILES,
                (
                    "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                    "25c81989df183df01b3e8a0aad5dffbe",
                    "bef4ecab320f06d8554ea6380940ec79",
                    "bb300cfdad3c16e7a12a480ee83cd310",
                ),
                strict=True,
            )
        ),
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        hint="On Debian or Ubuntu, `apt install dataset-fashion-mnist` provides them.",
        sizes=dict(zip(FILES, (26421880, 29515, 4422102, 5148), strict=True)),
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
    ),
}


class DatasetNotFoundError(FileNotFoundError):
    """Some files of a data set are neither on disk nor downloadable.

    Parameters
    ----------
    message : str
        What is missing and where it was looked for: the files, the folders looked in,
        and each mirror tried with why it failed.
    missing : list of str
        The file names.
    folder : Path
        Where to put them.
    dataset : str, default ""
        The data set's name (a key of DATASETS).
    looked_in : tuple of Path, default ()
        The folders searched.
    reason : str, default ""
        Why nothing was downloaded: downloads off, or each mirror tried with why it
        failed (the command line words its own message from these parts).
    """

    def __init__(
        self,
        message: str,
        missing: list[str],
        folder: Path,
        *,
        dataset: str = "",
        looked_in: tuple[Path, ...] = (),
        reason: str = "",
    ) -> None:
        super().__init__(message)
        self.missing = missing
        self.folder = folder
        self.dataset = dataset
        self.looked_in = looked_in
        self.reason = reason


def load_mnist(
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> Dataset:
    """MNIST handwritten digits, as the book's ``load_mnist``.

    Returns ``((x_train, t_train), (x_test, t_test))`` with 60000 and 10000 examples:

    - images: ``normalize`` -> float32 in [0, 1], else uint8 0..255; ``flatten`` ->
      shape (N, 784), else (N, 1, 28, 28);
    - labels: ``one_hot_label`` -> float32 (N, 10), else int64 (N,) with values 0..9.

    ``data_dir``: a folder holding the four files (see the module docstring for where
    they are looked for otherwise). ``download``: fetch missing files. Raises
    ``DatasetNotFoundError`` (a FileNotFoundError) when files are missing and cannot be
    downloaded, ``ValueError`` naming the file when one is malformed.
    """
    return _load("mnist", normalize, flatten, one_hot_label, data_dir, download)


def load_fashion_mnist(
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> Dataset:
    """Fashion-MNIST (Zalando's clothing images), same shapes and options as ``load_mnist``."""
    return _load("fashion-mnist", normalize, flatten, one_hot_label, data_dir, download)


def load_idx_dataset(
    images_path: str | os.PathLike[str],
    labels_path: str | os.PathLike[str],
    *,
    image_shape: tuple[int, ...] = (28, 28),
    num_classes: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Read an images file and its labels file and check that they belong together.

    Returns ``(images, labels)``: uint8 ``(N, *image_shape)`` and int64 ``(N,)`` with
    values in ``0..num_classes-1``; any N > 0. Raises ``ValueError`` naming the file(s)
    when a file is malformed, the shapes are wrong, the counts differ (checked from the
    headers, before any data is read), the files are empty or a label is out of range.
    """
    # the headers first: a file claiming far more (or fewer) samples than its partner is
    # refused before either file's data is read (a gzip file can expand a thousandfold)
    (image_dtype, image_dims), (label_dtype, label_dims) = (
        read_idx_header(images_path),
        read_idx_header(labels_path),
    )
    if image_dtype != np.uint8 or image_dims[1:] != tuple(image_shape):
        raise ValueError(
            f"{images_path}: expected uint8 images of shape (N, "
            f"{', '.join(map(str, image_shape))}), found {image_dtype} of shape {image_dims}"
        )
    if len(label_dims) != 1 or label_dtype.kind not in "ui":
        raise ValueError(
            f"{labels_path}: expected 1-D integer labels, found {label_dtype} of shape {label_dims}"
        )
    if image_dims[0] != label_dims[0]:
        raise ValueError(
            f"{images_path} holds {image_dims[0]} images but {labels_path} holds "
            f"{label_dims[0]} labels (expected the same count)"
        )
    if image_dims[0] == 0:
        raise ValueError(f"{images_path} holds no images (and {labels_path} no labels): an empty data set")
    images, labels = read_idx(images_path), read_idx(labels_path)
    labels = labels.astype(np.int64)  # int64 indexes and does arithmetic without wrapping
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise ValueError(
            f"{labels_path}: expected labels 0..{num_classes - 1}, found {labels[bad[0]]} "
            f"at index {bad[0]} ({bad.size} out of range)"
        )
    return images, labels


def default_data_dir(name: str) -> Path:
    """The cache folder of data set ``name`` (e.g. ``"mnist"``), where downloads go.

    ``$DLSCRATCH_DATA_DIR/<name>`` when that variable is set, else
    ``$XDG_CACHE_HOME/dlscratch/<name>``, else ``~/.cache/dlscratch/<name>``.
    """
    root = os.environ.get("DLSCRATCH_DATA_DIR")
    if root:
        return Path(root).expanduser() / name
    cache = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says to ignore a relative path.
    base = Path(cache) if cache and os.path.isabs(cache) else Path.home() / ".cache"
    return base / "dlscratch" / name


def installed_datasets(data_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """The data sets whose four files are on this machine, found without reading or
    downloading anything.

    Parameters
    ----------
    data_dir
        Look only in this folder, as load_mnist(data_dir=...) would (default: where
        load_mnist and load_fashion_mnist look, see the module's notes).

    Returns
    -------
    list of str
        Keys of DATASETS, e.g. ["fashion-mnist"] on a machine with Debian's package only.
    """
    return [
        name
        for name, spec in DATASETS.items()
        if len(_find_files(_search_folders(spec, data_dir))) == len(FILES)
    ]


def _load(
    name: str,
    normalize: bool,
    flatten: bool,
    one_hot_label: bool,
    data_dir: str | os.PathLike[str] | None,
    download: bool,
) -> Dataset:
    """Find (or fetch) the four files of data set ``name`` and shape them as asked."""
    spec = DATASETS[name]
    folders = _search_folders(spec, data_dir)
    paths = _find_files(folders)
    missing = [f for f in FILES if f not in paths]
    if missing:
        paths.update(_fetch_missing(spec, folders, missing, download))
    train_images, train_labels, test_images, test_labels = (paths[f] for f in FILES)
    train = load_idx_dataset(train_images, train_labels)
    test = load_idx_dataset(test_images, test_labels)
    return (
        _shape(*train, normalize, flatten, one_hot_label),
        _shape(*test, normalize, flatten, one_hot_label),
    )


def _search_folders(spec: DatasetSpec, data_dir: str | os.PathLike[str] | None) -> list[Path]:
    """Folders to look in, in order; the first is where downloads go."""
    if data_dir is not None:
        return [Path(data_dir).expanduser()]
    return [default_data_dir(spec.name), *map(Path, spec.system_dirs)]


def _find_files(folders: list[Path]) -> dict[str, Path]:
    """Published name -> path of each file found, as ``.gz`` or uncompressed."""
    found = {}
    for name in FILES:
        for folder in folders:
            candidates = [folder / name, folder / name.removesuffix(".gz")]
            path = next((p for p in candidates if p.is_file()), None)
            if path is not None:
                found[name] = path
                break
    return found


def _fetch_missing(
    spec: DatasetSpec, folders: list[Path], missing: list[str], download: bool
) -> dict[str, Path]:
    """Download the missing files into ``folders[0]``; raise DatasetNotFoundError if not."""
    if not download:
        raise _not_found(spec, folders, missing, "Downloading is off (download=False).")
    fetched = {}
    for i, name in enumerate(missing):
        try:
            fetched[name] = download_file(
                name, folders[0], spec.mirrors, spec.md5.get(name), max_bytes=spec.sizes.get(name)
            )
        except DownloadError as e:
            # The data set is unusable without this file; don't wait on the others.
            tried = "".join(f"\n  {url}: {reason}" for url, reason in e.failures)
            reason = f"Mirrors tried for {name}:{tried or ' none configured'}"
            raise _not_found(spec, folders, missing[i:], reason) from e
        except OSError as e:  # the folder itself: not creatable, not writable, disk full
            raise _not_found(spec, folders, missing[i:], f"Could not write there: {e}") from e
    return fetched


def _not_found(
    spec: DatasetSpec, folders: list[Path], missing: list[str], reason: str
) -> DatasetNotFoundError:
    """The one error for files that are not there: which files, where to put them, why."""
    files = "".join(f"\n  {name}" for name in missing)
    message = (
        f"{spec.title}: {len(missing)} file(s) missing and not downloaded. "
        f"Put these files in {folders[0]} (or pass data_dir= a folder holding them):"
        f"{files}\nLooked in: {', '.join(map(str, folders))}\n{reason}"
    )
    if spec.hint:
        message += f"\n{spec.hint}"
    return DatasetNotFoundError(
        message, missing, folders[0], dataset=spec.name, looked_in=tuple(folders), reason=reason
    )


def _shape(
    images: np.ndarray, labels: np.ndarray, normalize: bool, flatten: bool, one_hot_label: bool
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, 28, 28) images and int64 (N,) labels -> the layout load_mnist promises."""
    n = len(images)
    x = images.reshape(n, -1) if flatten else images.reshape(n, 1, *images.shape[1:])
    if normalize:
        # uint8 -> float32 directly, then divide in place: no float64 copy of the set.
        x = x.astype(np.float32)
        x /= np.float32(255)
    t = labels
    if one_hot_label:
        t = np.zeros((n, 10), dtype=np.float32)
        t[np.arange(n), labels] = 1
    return x, t
