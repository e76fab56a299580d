"""Tests of shared.datasets: accepted encodings, rejected files, real data when available."""
from __future__ import annotations

import gzip
import os
import sys
import types
from pathlib import Path

import h5py
import numpy as np
import pytest

from shared import datasets as ds
from shared.datasets import DatasetError

pytestmark = pytest.mark.unit

N = 12  # rows of the small hand-made files


# ----------------------------------------------------------------------------- helpers


def write_h5(path: Path, **arrays) -> Path:
    """Write an HDF5 file; a value of ``"group"`` makes that key a group instead of a dataset."""
    with h5py.File(path, "w") as h5:
        for key, value in arrays.items():
            if isinstance(value, str) and value == "group":
                h5.create_group(key)
            else:
                h5.create_dataset(key, data=value)
    return path


def ref_pixels(n: int = N, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pix = rng.integers(0, 256, size=(n, 784), dtype=np.uint8)
    pix[0, :2] = (0, 255)  # both ends of the range present
    return pix


def ref_labels(n: int = N) -> np.ndarray:
    return np.arange(n, dtype=np.int64) % 10


def one_hot(labels, dtype) -> np.ndarray:
    return np.eye(10, dtype=dtype)[labels]


def assert_mentions(exc: pytest.ExceptionInfo, path: Path, key: str | None, *fragments: str) -> None:
    msg = str(exc.value)
    assert str(path) in msg, msg
    if key is not None:
        assert repr(key) in msg, msg
    for fragment in fragments:
        assert fragment in msg, msg


# ----------------------------------------------------------------------------- course MNIST: accepted


PIX = ref_pixels()
LAB = ref_labels()
X_REF = PIX.astype(np.float32) / np.float32(255)

ACCEPTED_MNIST = {
    "float32 [0,1] + one-hot float32": (X_REF, one_hot(LAB, np.float32)),
    "float64 [0,1] + one-hot float64": (PIX / 255.0, one_hot(LAB, np.float64)),
    "float16 in [0,1] + float labels": (None, LAB.astype(np.float32)),
    "uint8 0-255 + int labels (N,)": (PIX, LAB.astype(np.uint8)),
    "int16 0-255 + one-hot int": (PIX.astype(np.int16), one_hot(LAB, np.int32)),
    "int64 0-255 + (N,1) labels": (PIX.astype(np.int64), LAB.reshape(-1, 1)),
    "float64 0-255 integral + one-hot uint8": (PIX.astype(np.float64), one_hot(LAB, np.uint8)),
    "float32 0-255 integral + (N,1) float labels": (PIX.astype(np.float32), LAB.reshape(-1, 1).astype(np.float64)),
    "uint8 + one-hot bool": (PIX, one_hot(LAB, bool)),
}


@pytest.mark.parametrize("case", list(ACCEPTED_MNIST))
def test_course_mnist_accepted_variants(tmp_path, case):
    xdata, ydata = ACCEPTED_MNIST[case]
    expected_x = X_REF
    if xdata is None:  # float16 cannot hold every k/255 exactly: compare with its own values
        xdata = X_REF.astype(np.float16)
        expected_x = xdata.astype(np.float32)
    path = write_h5(tmp_path / "course.hdf5", xdata=xdata, ydata=ydata)
    x, y = ds.load_course_mnist(path)
    assert x.dtype == np.float32 and x.shape == (N, 784) and x.flags.c_contiguous
    assert y.dtype == np.int64 and y.shape == (N,)
    np.testing.assert_array_equal(x, expected_x)
    np.testing.assert_array_equal(y, LAB)
    assert x.min() >= 0.0 and x.max() <= 1.0


def test_float_pixels_max_one_are_taken_as_scaled(tmp_path):
    """A float image whose values are only 0 and 1 is read as already in [0, 1] (documented rule)."""
    xdata = (PIX > 127).astype(np.float64)
    path = write_h5(tmp_path / "binary.hdf5", xdata=xdata, ydata=LAB)
    x, _ = ds.load_course_mnist(path)
    np.testing.assert_array_equal(x, xdata.astype(np.float32))


# ----------------------------------------------------------------------------- course MNIST: rejected


def _with(array, row, col, value):
    array = array.copy()
    array[row, col] = value
    return array


def _one_hot_with(row, values):
    y = one_hot(LAB, np.float32)
    y[row] = values
    return y


X_OK = X_REF
Y_OK = one_hot(LAB, np.float32)
NAN_X = _with(X_OK, 3, 5, np.nan)
NAN_X[7, 0] = np.nan

# (xdata, ydata, key named in the message, fragments the message must contain)
REJECTED_MNIST = {
    "xdata missing": ({"ydata": Y_OK}, "xdata", ["missing", "keys present: 'ydata'"]),
    "ydata missing": ({"xdata": X_OK}, "ydata", ["missing", "keys present: 'xdata'"]),
    "no keys": ({"other": np.zeros(3)}, "xdata", ["keys present: 'other'"]),
    "xdata is a group": ({"xdata": "group", "ydata": Y_OK}, "xdata", ["Group", "not a dataset"]),
    "xdata strings": ({"xdata": np.array([b"a", b"b"]), "ydata": Y_OK}, "xdata", ["non-numeric"]),
    "783 columns": ({"xdata": X_OK[:, :783], "ydata": Y_OK}, "xdata", ["783 columns", "784"]),
    "1-D xdata": ({"xdata": X_OK[0], "ydata": Y_OK}, "xdata", ["1-D", "(N, 784)"]),
    "3-D xdata": ({"xdata": X_OK.reshape(N, 28, 28), "ydata": Y_OK}, "xdata", ["3-D", "(N, 784)"]),
    "row count mismatch": ({"xdata": X_OK, "ydata": Y_OK[:-1]}, "ydata", [f"{N - 1} rows", f"xdata has {N}"]),
    "ydata width 9": ({"xdata": X_OK, "ydata": Y_OK[:, :9]}, "ydata", ["9 columns", "one-hot (N, 10)"]),
    "ydata 3-D": ({"xdata": X_OK, "ydata": Y_OK.reshape(N, 10, 1)}, "ydata", ["3-D"]),
    "empty": ({"xdata": np.zeros((0, 784), np.float32), "ydata": np.zeros((0, 10), np.float32)},
              "xdata", ["empty", "0 rows"]),
    "empty labels": ({"xdata": X_OK, "ydata": np.zeros((0,), np.int64)}, "ydata", ["empty"]),
    "NaN pixels": ({"xdata": NAN_X, "ydata": Y_OK}, "xdata", ["2 NaN", "row 3"]),
    "inf pixels": ({"xdata": _with(X_OK, 4, 0, np.inf), "ydata": Y_OK}, "xdata", ["1 infinite", "row 4"]),
    "negative float pixel": ({"xdata": _with(X_OK, 2, 1, -0.5), "ydata": Y_OK}, "xdata", ["negative", "row 2"]),
    "negative int pixel": ({"xdata": _with(PIX.astype(np.int16), 5, 1, -3), "ydata": Y_OK},
                           "xdata", ["negative", "row 5"]),
    "float above 1, not integral": ({"xdata": _with(X_OK, 6, 9, 1.5), "ydata": Y_OK},
                                    "xdata", ["above 1", "1 of them", "first in row 6", "not whole numbers"]),
    "float 0-255 with a fraction": ({"xdata": _with(PIX.astype(np.float64), 8, 3, 17.25), "ydata": Y_OK},
                                    "xdata", ["not whole numbers", "row 8"]),
    "int above 255": ({"xdata": _with(PIX.astype(np.int16), 9, 0, 256), "ydata": Y_OK},
                      "xdata", ["above 255", "row 9"]),
    "float above 255": ({"xdata": _with(PIX.astype(np.float32), 1, 0, 300.0), "ydata": Y_OK},
                        "xdata", ["above 255", "row 1"]),
    "bool pixels": ({"xdata": PIX > 100, "ydata": Y_OK}, "xdata", ["boolean"]),
    "label 10": ({"xdata": X_OK, "ydata": _with(LAB.reshape(-1, 1), 4, 0, 10).ravel()},
                 "ydata", ["label 10", "row 4", "0..9"]),
    "label -1": ({"xdata": X_OK, "ydata": _with(LAB.reshape(-1, 1), 2, 0, -1)}, "ydata", ["label -1", "row 2"]),
    "fractional float label": ({"xdata": X_OK, "ydata": _with(LAB.astype(np.float64).reshape(-1, 1), 3, 0, 2.5)},
                               "ydata", ["2.5", "row 3"]),
    "NaN label": ({"xdata": X_OK, "ydata": _with(LAB.astype(np.float64).reshape(-1, 1), 0, 0, np.nan)},
                  "ydata", ["1 NaN", "row 0"]),
    "bool labels": ({"xdata": X_OK, "ydata": LAB % 2 == 0}, "ydata", ["boolean"]),
    "one-hot row with two ones": ({"xdata": X_OK, "ydata": _one_hot_with(5, [1, 1, 0, 0, 0, 0, 0, 0, 0, 0])},
                                  "ydata", ["row 5", "sums to 2"]),
    "one-hot row of zeros": ({"xdata": X_OK, "ydata": _one_hot_with(7, 0)}, "ydata", ["row 7", "sums to 0"]),
    "one-hot value 0.5": ({"xdata": X_OK, "ydata": _one_hot_with(2, [0.5, 0.5, 0, 0, 0, 0, 0, 0, 0, 0])},
                          "ydata", ["row 2", "other than 0 and 1"]),
    "one-hot value 2": ({"xdata": X_OK, "ydata": _one_hot_with(9, [0, 2, 0, 0, 0, 0, 0, 0, 0, 0]).astype(np.int8)},
                        "ydata", ["row 9", "other than 0 and 1"]),
    "one-hot NaN": ({"xdata": X_OK, "ydata": _one_hot_with(1, np.nan)}, "ydata", ["10 NaN", "row 1"]),
}


@pytest.mark.parametrize("case", list(REJECTED_MNIST))
def test_course_mnist_rejections(tmp_path, case):
    arrays, key, fragments = REJECTED_MNIST[case]
    path = write_h5(tmp_path / "bad_course.hdf5", **arrays)
    with pytest.raises(DatasetError) as exc:
        ds.load_course_mnist(path)
    assert_mentions(exc, path, key, *fragments)
    assert exc.value.path == path and exc.value.key == key


# ----------------------------------------------------------------------------- file-level problems


def _truncated_h5(tmp_path: Path) -> Path:
    good = write_h5(tmp_path / "whole.hdf5", xdata=X_OK, ydata=Y_OK)
    data = good.read_bytes()
    cut = tmp_path / "cut.hdf5"
    cut.write_bytes(data[: len(data) // 2])
    return cut


FILE_PROBLEMS = {
    "missing": (lambda tmp: tmp / "nowhere.hdf5", ["not found", "looked for"]),
    "directory": (lambda tmp: (tmp / "adir.hdf5").mkdir() or tmp / "adir.hdf5", ["is a directory"]),
    "text file": (lambda tmp: (tmp / "notes.hdf5").write_text("not hdf5 at all\n") and tmp / "notes.hdf5",
                  ["not an HDF5 file"]),
    "empty file": (lambda tmp: (tmp / "zero.hdf5").write_bytes(b"") or tmp / "zero.hdf5", ["not an HDF5 file"]),
    "truncated HDF5": (_truncated_h5, ["truncated or corrupt"]),
}


@pytest.mark.parametrize("loader", ["course", "human_machine"])
@pytest.mark.parametrize("case", list(FILE_PROBLEMS))
def test_file_level_rejections(tmp_path, case, loader):
    make, fragments = FILE_PROBLEMS[case]
    path = make(tmp_path)
    load = ds.load_course_mnist if loader == "course" else ds.load_human_machine
    with pytest.raises(DatasetError) as exc:
        load(path)
    assert_mentions(exc, path, None, *fragments)


def test_corrupt_chunk_is_reported_with_key(tmp_path):
    path = tmp_path / "corrupt.hdf5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("xdata", data=X_OK, compression="gzip", chunks=(4, 784))
        h5.create_dataset("ydata", data=Y_OK)
        info = h5["xdata"].id.get_chunk_info(1)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset)
        fh.write(b"\xff" * info.size)
    with pytest.raises(DatasetError) as exc:
        ds.load_course_mnist(path)
    assert_mentions(exc, path, "xdata", "truncated or corrupt")


def test_unreadable_file_via_access_check(tmp_path, monkeypatch):
    path = write_h5(tmp_path / "locked.hdf5", xdata=X_OK, ydata=Y_OK)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == path else real_access(p, mode, **kw))
    with pytest.raises(DatasetError) as exc:
        ds.load_course_mnist(path)
    assert_mentions(exc, path, None, "permission denied")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root reads files whatever their mode; covered by test_unreadable_file_via_access_check")
def test_unreadable_file_chmod(tmp_path):
    path = write_h5(tmp_path / "locked.hdf5", xdata=X_OK, ydata=Y_OK)
    path.chmod(0)
    try:
        with pytest.raises(DatasetError) as exc:
            ds.load_course_mnist(path)
    finally:
        path.chmod(0o644)
    assert_mentions(exc, path, None, "permission denied")


# ----------------------------------------------------------------------------- train/validation split


@pytest.fixture(scope="module")
def full_size_dir(tmp_path_factory):
    """A 60,000-row course file (uint8 pixels) whose rows encode their own index."""
    folder = tmp_path_factory.mktemp("full")
    n = ds.N_TRAIN + ds.N_VAL
    idx = np.arange(n)
    pix = np.zeros((n, 784), np.uint8)
    pix[:, 0] = idx % 256
    pix[:, 1] = (idx // 256) % 256
    write_h5(folder / ds.MNIST_TRAIN_FILE, xdata=pix, ydata=(idx % 10).astype(np.uint8))
    return folder


def _row_index(x):
    return np.rint(x[:, 0] * 255).astype(np.int64) + 256 * np.rint(x[:, 1] * 255).astype(np.int64)


@pytest.mark.parametrize("train_size, expected", [(None, 50_000), (1, 1), (1234, 1234), (50_000, 50_000)])
def test_mnist_train_val_split(full_size_dir, train_size, expected):
    x_tr, y_tr, x_va, y_va = ds.mnist_train_val(full_size_dir, train_size)
    assert x_tr.shape == (expected, 784) and y_tr.shape == (expected,)
    assert x_va.shape == (10_000, 784) and y_va.shape == (10_000,)
    assert x_tr.dtype == x_va.dtype == np.float32 and y_tr.dtype == y_va.dtype == np.int64
    assert x_tr.flags.c_contiguous and x_va.flags.c_contiguous
    np.testing.assert_array_equal(_row_index(x_tr), np.arange(expected))  # first rows, in order
    np.testing.assert_array_equal(_row_index(x_va), np.arange(50_000, 60_000))  # last 10,000
    np.testing.assert_array_equal(y_va, np.arange(50_000, 60_000) % 10)


def test_mnist_full_train(full_size_dir):
    x, y = ds.mnist_full_train(full_size_dir)
    assert x.shape == (60_000, 784) and y.shape == (60_000,)
    np.testing.assert_array_equal(_row_index(x), np.arange(60_000))


@pytest.mark.parametrize("train_size", [0, -5, 50_001, 2.5, "100", True])
def test_mnist_train_val_bad_train_size(full_size_dir, train_size):
    with pytest.raises(ValueError, match="train_size"):
        ds.mnist_train_val(full_size_dir, train_size)


@pytest.mark.parametrize("func", [ds.mnist_train_val, ds.mnist_full_train])
def test_mnist_train_file_wrong_row_count(tmp_path, func):
    path = write_h5(tmp_path / ds.MNIST_TRAIN_FILE, xdata=PIX, ydata=LAB)
    with pytest.raises(DatasetError) as exc:
        func(tmp_path)
    assert_mentions(exc, path, "xdata", f"holds {N} rows", "exactly 60000 rows")


@pytest.mark.parametrize("func, name", [(ds.mnist_train_val, ds.MNIST_TRAIN_FILE),
                                        (ds.mnist_full_train, ds.MNIST_TRAIN_FILE),
                                        (ds.mnist_test, ds.MNIST_TEST_FILE)])
def test_mnist_missing_file_says_where(tmp_path, func, name):
    with pytest.raises(DatasetError) as exc:
        func(tmp_path)
    assert_mentions(exc, tmp_path / name, None, "not found", "HW3_DATASETS", "ensure_mnist")


def test_mnist_test_reads_only_test_file(tmp_path):
    write_h5(tmp_path / ds.MNIST_TEST_FILE, xdata=PIX, ydata=one_hot(LAB, np.float32))
    x, y = ds.mnist_test(tmp_path)  # no training file present: must not matter
    np.testing.assert_array_equal(x, X_REF)
    np.testing.assert_array_equal(y, LAB)


# ----------------------------------------------------------------------------- ensure_mnist


def fake_tensorflow(load_data) -> types.ModuleType:
    tf = types.ModuleType("tensorflow")
    tf.keras = types.SimpleNamespace(datasets=types.SimpleNamespace(mnist=types.SimpleNamespace(load_data=load_data)))
    return tf


def test_ensure_mnist_offline_message(tmp_path, monkeypatch):
    def offline():
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setitem(sys.modules, "tensorflow", fake_tensorflow(offline))
    target = tmp_path / "datasets"
    with pytest.raises(DatasetError) as exc:
        ds.ensure_mnist(target)
    msg = str(exc.value)
    for fragment in (str(target), ds.MNIST_TRAIN_FILE, ds.MNIST_TEST_FILE, "HW3_DATASETS", "could not be downloaded",
                     "name resolution"):
        assert fragment in msg, msg
    assert not target.exists()


def test_ensure_mnist_offline_names_only_missing_file(tmp_path, monkeypatch):
    write_h5(tmp_path / ds.MNIST_TEST_FILE, xdata=X_REF, ydata=Y_OK)
    monkeypatch.setitem(sys.modules, "tensorflow", fake_tensorflow(lambda: (_ for _ in ()).throw(OSError("offline"))))
    with pytest.raises(DatasetError) as exc:
        ds.ensure_mnist(tmp_path)
    msg = str(exc.value)
    assert ds.MNIST_TRAIN_FILE in msg and ds.MNIST_TEST_FILE not in msg, msg


def test_ensure_mnist_without_tensorflow(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # makes `import tensorflow` raise ImportError
    with pytest.raises(DatasetError) as exc:
        ds.ensure_mnist(tmp_path)
    assert "ImportError" in str(exc.value) or "ModuleNotFoundError" in str(exc.value)


def test_ensure_mnist_noop_when_present(tmp_path, monkeypatch):
    for name in (ds.MNIST_TRAIN_FILE, ds.MNIST_TEST_FILE):
        write_h5(tmp_path / name, xdata=X_REF, ydata=Y_OK)
    monkeypatch.setattr("shared.datasets.download._download_mnist", lambda: pytest.fail("must not download"))
    ds.ensure_mnist(tmp_path)


def test_ensure_mnist_writes_course_format(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    train_img = rng.integers(0, 256, size=(30, 28, 28), dtype=np.uint8)
    test_img = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    train_lab = (np.arange(30) % 10).astype(np.uint8)
    test_lab = (np.arange(7) * 3 % 10).astype(np.uint8)
    monkeypatch.setitem(sys.modules, "tensorflow",
                        fake_tensorflow(lambda: ((train_img, train_lab), (test_img, test_lab))))
    target = tmp_path / "new" / "datasets"
    ds.ensure_mnist(target)
    for name, img, lab in ((ds.MNIST_TRAIN_FILE, train_img, train_lab), (ds.MNIST_TEST_FILE, test_img, test_lab)):
        with h5py.File(target / name, "r") as h5:
            assert set(h5.keys()) == {"xdata", "ydata"}
            assert h5["xdata"].dtype == np.float32 and h5["xdata"].shape == (len(img), 784)
            assert h5["ydata"].dtype == np.float32 and h5["ydata"].shape == (len(img), 10)
            np.testing.assert_array_equal(h5["ydata"][()], one_hot(lab, np.float32))
        x, y = ds.load_course_mnist(target / name)
        np.testing.assert_array_equal(x, img.reshape(len(img), 784).astype(np.float32) / np.float32(255))
        np.testing.assert_array_equal(y, lab)
    assert sorted(p.name for p in target.iterdir()) == sorted([ds.MNIST_TRAIN_FILE, ds.MNIST_TEST_FILE])


# ----------------------------------------------------------------------------- human / machine


BITS = np.where(np.random.default_rng(3).random((N, 20)) < 0.5, -1, 1)
BITS01 = (BITS + 1) // 2

ACCEPTED_HM = {
    "float64 +-1 and int32 +-1 (course file)": (BITS.astype(np.float64), BITS.astype(np.int32)),
    "uint8 {0,1} both": (BITS01.astype(np.uint8), BITS01.astype(np.uint8)),
    "bool and int8 {0,1}": (BITS01.astype(bool), BITS01.astype(np.int8)),
    "float32 {0,1} and int64 +-1": (BITS01.astype(np.float32), BITS.astype(np.int64)),
}


@pytest.mark.parametrize("case", list(ACCEPTED_HM))
def test_human_machine_accepted(tmp_path, case):
    human, machine = ACCEPTED_HM[case]
    path = write_h5(tmp_path / "binary_random_test.hdf5", human=human, machine=machine[:N - 2])
    x, y = ds.load_human_machine(path)
    assert x.dtype == np.float32 and x.shape == (2 * N - 2, 20)
    assert y.dtype == np.int64 and y.tolist() == [1] * N + [0] * (N - 2)
    np.testing.assert_array_equal(x[:N], BITS)
    np.testing.assert_array_equal(x[N:], BITS[:N - 2])


def test_human_machine_constant_key_is_fine(tmp_path):
    path = write_h5(tmp_path / "hm.hdf5", human=np.ones((3, 20)), machine=np.zeros((2, 20), np.uint8))
    x, _ = ds.load_human_machine(path)
    assert x[:3].min() == 1 and x[3:].max() == -1


HM_OK = BITS.astype(np.float64)
REJECTED_HM = {
    "human missing": ({"machine": HM_OK}, "human", ["missing", "keys present: 'machine'"]),
    "machine missing": ({"human": HM_OK}, "machine", ["missing", "keys present: 'human'"]),
    "width 19": ({"human": HM_OK[:, :19], "machine": HM_OK}, "human", ["19 columns", "(N, 20)"]),
    "1-D": ({"human": HM_OK, "machine": HM_OK[0]}, "machine", ["1-D", "(N, 20)"]),
    "empty": ({"human": np.zeros((0, 20)), "machine": HM_OK}, "human", ["empty"]),
    "value 2": ({"human": HM_OK, "machine": _with(BITS, 4, 2, 2)}, "machine", ["outside", "2", "row 4"]),
    "value 0.5": ({"human": _with(HM_OK, 1, 0, 0.5), "machine": HM_OK}, "human", ["outside", "0.5", "row 1"]),
    "mixed encodings": ({"human": _with(HM_OK, 6, 3, 0), "machine": HM_OK}, "human", ["mixes", "row 6"]),
    "NaN": ({"human": _with(HM_OK, 2, 3, np.nan), "machine": HM_OK}, "human", ["1 NaN", "row 2"]),
    "strings": ({"human": np.array([b"x"]), "machine": HM_OK}, "human", ["non-numeric"]),
}


@pytest.mark.parametrize("case", list(REJECTED_HM))
def test_human_machine_rejections(tmp_path, case):
    arrays, key, fragments = REJECTED_HM[case]
    path = write_h5(tmp_path / "binary_random_bad.hdf5", **arrays)
    with pytest.raises(DatasetError) as exc:
        ds.load_human_machine(path)
    assert_mentions(exc, path, key, *fragments)


def test_find_human_machine(tmp_path):
    with pytest.raises(DatasetError) as exc:
        ds.find_human_machine(tmp_path)
    assert str(tmp_path) in str(exc.value) and "binary_random*.hdf5" in str(exc.value)
    (tmp_path / "binary_random_dir.hdf5").mkdir()  # directories do not count
    with pytest.raises(DatasetError):
        ds.find_human_machine(tmp_path)
    write_h5(tmp_path / "binary_random_zz.hdf5", human=HM_OK, machine=HM_OK)
    assert ds.find_human_machine(tmp_path) == tmp_path / "binary_random_zz.hdf5"
    write_h5(tmp_path / "binary_random_20fa.hdf5", human=HM_OK, machine=HM_OK)
    assert ds.find_human_machine(tmp_path) == tmp_path / "binary_random_20fa.hdf5"  # sorted first
    with pytest.raises(DatasetError):
        ds.find_human_machine(tmp_path / "absent")


def _max_runs(x: np.ndarray) -> np.ndarray:
    best = np.ones(len(x), np.int64)
    run = np.ones(len(x), np.int64)
    for t in range(1, x.shape[1]):
        run = np.where(x[:, t] == x[:, t - 1], run + 1, 1)
        best = np.maximum(best, run)
    return best


def test_synthetic_human_machine_properties():
    x, y = ds.synthetic_human_machine()
    assert x.dtype == np.float32 and x.shape == (10_200, 20)
    assert y.dtype == np.int64 and y.tolist() == [1] * 5100 + [0] * 5100
    assert set(np.unique(x).tolist()) == {-1.0, 1.0}
    human, machine = x[y == 1], x[y == 0]
    switch_h = (human[:, 1:] != human[:, :-1]).mean()
    switch_m = (machine[:, 1:] != machine[:, :-1]).mean()
    assert switch_h > 0.6  # 0.6 plus the forced switches after runs of 4
    assert abs(switch_m - 0.5) < 0.02
    assert _max_runs(human).max() <= 4
    assert _max_runs(machine).max() > 4
    assert abs(human.mean()) < 0.05 and abs(machine.mean()) < 0.05


def test_synthetic_human_machine_reproducible():
    a = ds.synthetic_human_machine(50, seed=7)
    b = ds.synthetic_human_machine(50, seed=7)
    c = ds.synthetic_human_machine(50, seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    assert a[0].shape == (100, 20)
    with pytest.raises(ValueError):
        ds.synthetic_human_machine(0)


# ----------------------------------------------------------------------------- Fashion-MNIST


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = (0x0800 | array.ndim) if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_fashion(root: Path, n_train=9, n_test=4, overrides: dict[str, bytes] | None = None) -> Path:
    folder = root / ds.FASHION_DIR
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(11)
    content = {
        "train-images-idx3-ubyte.gz": idx_bytes(rng.integers(0, 256, (n_train, 28, 28))),
        "train-labels-idx1-ubyte.gz": idx_bytes(np.arange(n_train) % 10),
        "t10k-images-idx3-ubyte.gz": idx_bytes(rng.integers(0, 256, (n_test, 28, 28))),
        "t10k-labels-idx1-ubyte.gz": idx_bytes(np.arange(n_test)[::-1] % 10),
    }
    for name, raw in content.items():
        (folder / name).write_bytes(gzip.compress(raw))
    for name, data in (overrides or {}).items():
        if data is None:
            (folder / name).unlink()
        else:
            (folder / name).write_bytes(data)
    return folder


def test_fashion_mnist_loads(tmp_path):
    folder = write_fashion(tmp_path)
    (x_tr, y_tr), (x_te, y_te) = ds.load_fashion_mnist(tmp_path)
    assert x_tr.shape == (9, 784) and x_te.shape == (4, 784)
    assert x_tr.dtype == x_te.dtype == np.float32 and y_tr.dtype == y_te.dtype == np.int64
    assert x_tr.flags.c_contiguous
    raw = np.frombuffer(gzip.decompress((folder / "train-images-idx3-ubyte.gz").read_bytes())[16:], np.uint8)
    np.testing.assert_array_equal(x_tr, raw.reshape(9, 784).astype(np.float32) / np.float32(255))
    assert y_tr.tolist() == list(range(9)) and y_te.tolist() == [3, 2, 1, 0]
    assert len(ds.FASHION_CLASSES) == 10


_good_labels = gzip.compress(idx_bytes(np.arange(9) % 10))
REJECTED_FASHION = {
    "missing file": ({"t10k-labels-idx1-ubyte.gz": None}, "t10k-labels-idx1-ubyte.gz", ["not found", "HW3_DATASETS"]),
    "bad magic": ({"train-images-idx3-ubyte.gz": gzip.compress(idx_bytes(np.zeros((9, 28, 28)), magic=0x0803 + 0x100))},
                  "train-images-idx3-ubyte.gz", ["bad magic number 0x00000903", "0x00000803"]),
    "labels with image magic": ({"train-labels-idx1-ubyte.gz": gzip.compress(idx_bytes(np.zeros((9, 28, 28))))},
                                "train-labels-idx1-ubyte.gz", ["bad magic", "0x00000801"]),
    "truncated gzip": ({"train-labels-idx1-ubyte.gz": _good_labels[: len(_good_labels) - 12]},
                       "train-labels-idx1-ubyte.gz", ["truncated or corrupt"]),
    "not gzip": ({"t10k-images-idx3-ubyte.gz": b"plain text, no gzip\n"}, "t10k-images-idx3-ubyte.gz",
                 ["truncated or corrupt"]),
    "truncated IDX payload": ({"train-images-idx3-ubyte.gz": gzip.compress(idx_bytes(np.zeros((9, 28, 28)))[:-100])},
                              "train-images-idx3-ubyte.gz", ["data bytes", "announces 7056"]),
    "count mismatch": ({"train-labels-idx1-ubyte.gz": gzip.compress(idx_bytes(np.arange(8) % 10))},
                       "train-labels-idx1-ubyte.gz", ["8 labels", "9 images"]),
    "label 10": ({"t10k-labels-idx1-ubyte.gz": gzip.compress(idx_bytes(np.array([0, 10, 2, 3])))},
                 "t10k-labels-idx1-ubyte.gz", ["label 10", "index 1"]),
    "wrong image size": ({"t10k-images-idx3-ubyte.gz": gzip.compress(idx_bytes(np.zeros((4, 27, 28))))},
                         "t10k-images-idx3-ubyte.gz", ["27x28"]),
}


@pytest.mark.parametrize("case", list(REJECTED_FASHION))
def test_fashion_mnist_rejections(tmp_path, case):
    overrides, bad_file, fragments = REJECTED_FASHION[case]
    folder = write_fashion(tmp_path, overrides=overrides)
    with pytest.raises(DatasetError) as exc:
        ds.load_fashion_mnist(tmp_path)
    assert_mentions(exc, folder / bad_file, None, *fragments)


def test_fashion_mnist_missing_folder(tmp_path):
    with pytest.raises(DatasetError) as exc:
        ds.load_fashion_mnist(tmp_path)
    assert str(tmp_path / ds.FASHION_DIR) in str(exc.value)


# ----------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def real_dir(real_datasets) -> Path:
    return real_datasets


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


@pytest.mark.slow
def test_real_mnist_train_val(real_dir):
    _need(real_dir / ds.MNIST_TRAIN_FILE)
    x_tr, y_tr, x_va, y_va = ds.mnist_train_val(real_dir)
    assert x_tr.shape == (50_000, 784) and x_va.shape == (10_000, 784)
    assert y_tr.shape == (50_000,) and y_va.shape == (10_000,)
    assert x_tr.dtype == np.float32 and y_tr.dtype == np.int64
    assert x_tr.min() == 0.0 and x_tr.max() == 1.0 and x_va.min() == 0.0 and x_va.max() == 1.0
    for y in (y_tr, y_va):
        counts = np.bincount(y, minlength=10)
        assert counts.size == 10 and counts.min() > 0.08 * len(y) and counts.max() < 0.13 * len(y)
    assert y_tr[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # the classic first MNIST labels


@pytest.mark.slow
def test_real_mnist_test(real_dir):
    _need(real_dir / ds.MNIST_TEST_FILE)
    x, y = ds.mnist_test(real_dir)
    assert x.shape == (10_000, 784) and y.shape == (10_000,)
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert np.bincount(y, minlength=10).min() > 800


@pytest.mark.slow
def test_real_fashion_mnist(real_dir):
    _need(real_dir / ds.FASHION_DIR)
    (x_tr, y_tr), (x_te, y_te) = ds.load_fashion_mnist(real_dir)
    assert x_tr.shape == (60_000, 784) and x_te.shape == (10_000, 784)
    assert np.bincount(y_tr).tolist() == [6000] * 10 and np.bincount(y_te).tolist() == [1000] * 10
    assert x_tr.min() == 0.0 and x_tr.max() == 1.0


def test_real_human_machine(real_dir):
    path = _need(real_dir / "binary_random_20fa.hdf5")
    assert ds.find_human_machine(real_dir) == path
    x, y = ds.load_human_machine(path)
    assert x.shape == (10_200, 20) and x.dtype == np.float32
    assert np.bincount(y).tolist() == [5100, 5100]
    assert set(np.unique(x).tolist()) == {-1.0, 1.0}
