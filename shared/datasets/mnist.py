"""Course-format MNIST: ``mnist_traindata.hdf5`` (the 60,000 training images, split 50,000 / 10,000 into
training and validation) and ``mnist_testdata.hdf5`` (the 10,000 test images).

Each file holds two keys:

``xdata``
    ``(N, 784)`` pixels. Accepted encodings:

    - any integer dtype: values must lie in ``0..255`` and are divided by 255;
    - any float dtype with maximum <= 1: taken as already scaled, values must lie in ``[0, 1]``;
    - any float dtype with maximum > 1: accepted only when every value is an integer in
      ``0..255`` (a 0-255 image stored as floats) and then divided by 255.

    Anything else (negative values, values above 255, non-integral floats above 1, NaN/inf,
    booleans) is rejected.

``ydata``
    labels, any numeric dtype, either one-hot ``(N, 10)`` (every entry 0 or 1, every row
    summing to 1; booleans allowed) or class indices ``(N,)`` / ``(N, 1)`` (integral values in
    ``0..9``).

Loading never downloads: a missing file is a :class:`DatasetError` saying where to put it
(:func:`shared.datasets.download.ensure_mnist` fetches it on an explicit request).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import (
    _HOW_TO_SET_DIR,
    N_CLASSES,
    N_PIXELS,
    _check_2d,
    _check_file,
    _check_folder,
    _dataset,
    _error,
    _finite_range,
    _first_row,
    _open_hdf5,
    _read_key,
    _scale_255,
)

MNIST_TRAIN_FILE = "mnist_traindata.hdf5"
MNIST_TEST_FILE = "mnist_testdata.hdf5"
N_TRAIN = 50_000
N_VAL = 10_000


# ----------------------------------------------------------------------------- validation


def _pixels(raw: np.ndarray, path, key: str = "xdata") -> np.ndarray:
    """Validate course-format pixels and return float32 (N, 784) in [0, 1], C-contiguous."""
    _check_2d(raw, path, key, N_PIXELS, "images of 28x28 pixels")
    kind = raw.dtype.kind
    if kind == "b":
        raise _error(path, "has boolean dtype", key=key,
                     expected="pixels as floats in [0, 1] or integers in 0..255")
    lo, hi = _finite_range(raw, path, key)
    if lo < 0:
        row = _first_row(raw < 0)
        raise _error(path, f"has negative pixel values (min {lo}, first in row {row})", key=key,
                     expected="pixels as floats in [0, 1] or integers in 0..255")
    if hi > 255:
        row = _first_row(raw > 255)
        raise _error(path, f"has pixel values above 255 (max {hi}, first in row {row})", key=key,
                     expected="pixels as floats in [0, 1] or integers in 0..255")
    if kind in "iu":
        return _scale_255(raw)
    if hi <= 1:
        return np.ascontiguousarray(raw.astype(np.float32, copy=False))
    # floats above 1: only a 0..255 integer image stored as floats is accepted
    fractional = raw != np.round(raw)
    if fractional.any():
        row = _first_row(fractional)
        above = raw > 1
        raise _error(path, f"has float pixel values above 1 ({int(above.sum())} of them, max {hi}, first in row "
                           f"{_first_row(above)}) but not whole numbers (first non-integral value in row {row}), "
                           f"so it is neither a [0, 1] nor a 0..255 image", key=key,
                     expected="pixels as floats in [0, 1], or whole numbers in 0..255")
    return _scale_255(raw)


def _label_shape(shape: tuple[int, ...], path, n_rows: int, key: str = "ydata") -> None:
    """Labels must be one-hot (N, 10) or class indices (N,) / (N, 1), one per image (N = ``n_rows``)."""
    expected_shape = f"one-hot (N, {N_CLASSES}) or class indices (N,) / (N, 1)"
    if len(shape) == 2 and shape[1] == 1:
        shape = shape[:1]
    if len(shape) == 2 and shape[1] != N_CLASSES:
        raise _error(path, f"has {shape[1]} columns (shape {shape})", key=key, expected=expected_shape)
    if len(shape) not in (1, 2):
        raise _error(path, f"is {len(shape)}-D with shape {shape}", key=key, expected=expected_shape)
    if shape[0] == 0:
        raise _error(path, "is empty (0 rows)", key=key, expected="at least one row")
    if shape[0] != n_rows:
        raise _error(path, f"has {shape[0]} rows but xdata has {n_rows}", key=key,
                     expected="one label per image (same number of rows as xdata)")


def _check_train_rows(path, n_rows: int) -> None:
    """The training file holds exactly the 60,000 original training images (the split is by position)."""
    if n_rows != N_TRAIN + N_VAL:
        raise _error(path, f"holds {n_rows} rows", key="xdata",
                     expected=f"exactly {N_TRAIN + N_VAL} rows ({N_TRAIN} training + {N_VAL} validation)")


def _labels(raw: np.ndarray, path, n_rows: int, key: str = "ydata") -> np.ndarray:
    """Validate one-hot (N, 10) or index (N,) / (N, 1) labels; return int64 (N,) in 0..9."""
    _label_shape(raw.shape, path, n_rows, key)
    if raw.ndim == 2 and raw.shape[1] == 1:
        raw = raw.reshape(-1)
    _finite_range(raw, path, key)

    if raw.ndim == 2:  # one-hot
        if raw.dtype.kind == "b":
            hot = raw
        else:
            not_binary = (raw != 0) & (raw != 1)
            if not_binary.any():
                row = _first_row(not_binary)
                raise _error(path, f"one-hot row {row} contains values other than 0 and 1 "
                                   f"({raw[row].tolist()})", key=key,
                             expected="one-hot rows of 0s with a single 1")
            hot = raw != 0
        counts = hot.sum(axis=1)
        wrong = counts != 1
        if wrong.any():
            row = int(np.argmax(wrong))
            raise _error(path, f"one-hot row {row} sums to {int(counts[row])} ({raw[row].tolist()})",
                         key=key, expected="exactly one 1 per row")
        return np.argmax(hot, axis=1).astype(np.int64)

    if raw.dtype.kind == "b":
        raise _error(path, "has boolean dtype for class indices", key=key,
                     expected="integer labels in 0..9")
    out_of_range = (raw < 0) | (raw > N_CLASSES - 1)
    if raw.dtype.kind == "f":
        out_of_range |= raw != np.round(raw)
    if out_of_range.any():
        row = int(np.argmax(out_of_range))
        raise _error(path, f"label {raw[row]} in row {row} is not a class index "
                           f"({int(out_of_range.sum())} such rows)", key=key,
                     expected="whole-number labels in 0..9")
    return raw.astype(np.int64)

# ----------------------------------------------------------------------------- loaders


_FILE_HINT = (f"the course file at this path ({_HOW_TO_SET_DIR}; `hw3-submit datasets fetch mnist`, i.e. "
              f"ensure_mnist(), can create it when online)")


def check_course_mnist(path, *, train: bool = False) -> dict[str, tuple[int, ...]]:
    """The checks of :func:`load_course_mnist` that read no pixel: the file, its keys and their shapes (with
    ``train``, the 60,000 rows of the training file too). Returns the shapes by key."""
    path = _check_file(path, "course MNIST file", hint=_FILE_HINT)
    with _open_hdf5(path) as h5:
        x = _dataset(h5, path, "xdata")
        y = _dataset(h5, path, "ydata")
        _check_2d(x, path, "xdata", N_PIXELS, "images of 28x28 pixels")
        _label_shape(y.shape, path, n_rows=x.shape[0])
        if train:
            _check_train_rows(path, x.shape[0])
        return {"xdata": x.shape, "ydata": y.shape}


def load_course_mnist(path) -> tuple[np.ndarray, np.ndarray]:
    """Read one course-format MNIST file (keys ``xdata``, ``ydata``).

    Returns ``x`` float32 ``(N, 784)`` in ``[0, 1]``, C-contiguous, and ``y`` int64 ``(N,)`` in
    ``0..9``. Encodings accepted are described in the module docstring.
    """
    path = _check_file(path, "course MNIST file", hint=_FILE_HINT)
    with _open_hdf5(path) as h5:
        x_raw = _read_key(h5, path, "xdata")
        y_raw = _read_key(h5, path, "ydata")
    _check_2d(x_raw, path, "xdata", N_PIXELS, "images of 28x28 pixels")
    y = _labels(y_raw, path, n_rows=x_raw.shape[0])
    del y_raw
    x = _pixels(x_raw, path)
    return x, y


def _mnist_file(datasets_dir, name: str) -> Path:
    datasets_dir = _check_folder(datasets_dir)
    path = datasets_dir / name
    if not path.exists():
        raise _error(path, f"course MNIST file {name} not found in the datasets directory {datasets_dir}",
                     expected=f"{name} in {datasets_dir} (put it there, or point HW3_DATASETS or the job's "
                              f"--datasets at the directory holding it; `hw3-submit datasets fetch mnist`, i.e. "
                              f"ensure_mnist(), downloads it when online)")
    return path


def mnist_full_train(datasets_dir) -> tuple[np.ndarray, np.ndarray]:
    """All of ``mnist_traindata.hdf5``: ``x`` float32 ``(60000, 784)``, ``y`` int64 ``(60000,)``.

    The file must hold exactly ``N_TRAIN + N_VAL`` (60,000) rows, the original training set in
    its classic order, so that rows ``[:50000]`` / ``[50000:]`` are the training / validation split.
    """
    path = _mnist_file(datasets_dir, MNIST_TRAIN_FILE)
    x, y = load_course_mnist(path)
    _check_train_rows(path, x.shape[0])
    return x, y


def mnist_train_val(datasets_dir, train_size: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split ``mnist_traindata.hdf5`` into training and validation sets.

    The file holds the original 60,000 training images in their classic order: the first
    ``N_TRAIN`` (50,000) rows are the training set and the last ``N_VAL`` (10,000) the validation
    set. ``train_size`` (1..50000) keeps only the first ``train_size`` training rows; the
    validation set is always the 10,000. A file without exactly 60,000 rows is rejected.

    Returns ``(x_train, y_train, x_val, y_val)``: float32 ``(n, 784)`` / int64 ``(n,)``. The
    arrays are C-contiguous row slices of one loaded array (no copies).
    """
    _check_train_size(train_size)
    return split_train_val(*mnist_full_train(datasets_dir), train_size)


def split_train_val(x: np.ndarray, y: np.ndarray, train_size: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The split of :func:`mnist_train_val` applied to the 60,000 rows already loaded (views, no copies)."""
    _check_train_size(train_size)
    n = N_TRAIN if train_size is None else int(train_size)
    return x[:n], y[:n], x[N_TRAIN:], y[N_TRAIN:]


def _check_train_size(train_size) -> None:
    if train_size is not None:
        if isinstance(train_size, bool) or not isinstance(train_size, (int, np.integer)):
            raise ValueError(f"train_size must be an integer in 1..{N_TRAIN} or None, got {train_size!r}")
        if not 1 <= train_size <= N_TRAIN:
            raise ValueError(f"train_size must be in 1..{N_TRAIN}, got {train_size}")


def mnist_test(datasets_dir) -> tuple[np.ndarray, np.ndarray]:
    """The test set, ``mnist_testdata.hdf5``: ``x`` float32 ``(10000, 784)``, ``y`` int64 ``(10000,)``.

    This is the only function that opens the test file.
    """
    return load_course_mnist(_mnist_file(datasets_dir, MNIST_TEST_FILE))
