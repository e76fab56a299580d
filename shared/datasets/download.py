"""Fetching MNIST and Fashion-MNIST and writing them in the layout the loaders read, only on an explicit
request (`hw3-submit datasets fetch`, or a job command's --download).

No loader calls anything here: loading reads what is in the datasets directory and fails with a
:class:`DatasetError` when a file is missing; downloading is a separate, deliberate step. Downloads go through
``tf.keras.datasets`` (its own progress bar, its cache in ~/.keras/datasets); what is written is then loaded back
with the project's loaders and compared with what was downloaded.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from .common import N_CLASSES, N_PIXELS, DatasetError, _check_folder, _scale_255
from .fashion import FASHION_DIR, FASHION_FILES, load_fashion_mnist
from .mnist import MNIST_TEST_FILE, MNIST_TRAIN_FILE, load_course_mnist


def _download_mnist():
    """``tf.keras.datasets.mnist.load_data()``, importing tensorflow only when needed."""
    import tensorflow as tf

    return tf.keras.datasets.mnist.load_data()


def _download_fashion_mnist():
    """``tf.keras.datasets.fashion_mnist.load_data()``, importing tensorflow only when needed."""
    import tensorflow as tf

    return tf.keras.datasets.fashion_mnist.load_data()


def _write_course_file(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write ``xdata`` float32 (N, 784) pixels/255 and ``ydata`` float32 one-hot (N, 10), atomically."""
    images = np.asarray(images)
    labels = np.asarray(labels).reshape(-1)
    x = _scale_255(images.reshape(images.shape[0], -1))
    y = np.eye(N_CLASSES, dtype=np.float32)[labels.astype(np.int64)]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w") as h5:
            h5.create_dataset("xdata", data=x)
            h5.create_dataset("ydata", data=y)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_idx_gz(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as a gzip-compressed IDX file (the format of fashion.py's reader), atomically."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = (0x0800 | array.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with gzip.open(tmp, "wb") as fh:
            fh.write(header)
            fh.write(array.tobytes())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _offline(datasets_dir: Path, names: list[str], dataset: str, layout: str, exc: Exception) -> DatasetError:
    listed = " and ".join(names)
    return DatasetError(
        f"{datasets_dir}: {dataset} file(s) {listed} missing and {dataset} could not be downloaded "
        f"({type(exc).__name__}: {exc}); put {listed} ({layout}) into {datasets_dir}, or set HW3_DATASETS "
        f"(or the job's --datasets) to a directory that holds them",
        path=datasets_dir,
    )


def _mismatch(path: Path, what: str) -> DatasetError:
    return DatasetError(f"{path}: {what} read back differ from the downloaded ones; expected an exact copy "
                        f"(the file was left in place: remove it and fetch again)", path=path)


def ensure_mnist(datasets_dir, say: Callable[[str], None] = lambda line: None) -> list[Path]:
    """Make sure both course MNIST files exist in ``datasets_dir``; returns the files written.

    Nothing happens when both are present. Otherwise MNIST is fetched with
    ``tf.keras.datasets.mnist.load_data()`` (tensorflow is imported only then) and each missing
    file is written in the course format: ``xdata`` float32 ``(N, 784)`` pixels/255 and ``ydata``
    float32 one-hot ``(N, 10)``; the training file holds the original 60,000 training images in
    order, the test file the 10,000 test images. Files already present are left untouched. Files
    are written uncompressed (about 220 MB together), which makes later loads fast. Each file
    written is read back with :func:`load_course_mnist` and compared with the download.

    When the download is impossible (offline, no tensorflow) a :class:`DatasetError` says which
    files are missing and where to put them. ``say`` gets a line per step, for a person.
    """
    datasets_dir = _check_folder(datasets_dir)
    targets = {MNIST_TRAIN_FILE: datasets_dir / MNIST_TRAIN_FILE, MNIST_TEST_FILE: datasets_dir / MNIST_TEST_FILE}
    missing = {name: p for name, p in targets.items() if not p.exists()}
    if not missing:
        return []
    say(f"downloading MNIST with tf.keras.datasets.mnist.load_data() (about 11 MB) for {', '.join(missing)}")
    try:
        (x_train, y_train), (x_test, y_test) = _download_mnist()
    except Exception as exc:  # offline, tensorflow missing, download refused ...
        raise _offline(datasets_dir, list(missing), "MNIST", "course format: xdata (N, 784), ydata (N, 10)",
                       exc) from exc
    datasets_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, images, labels in ((MNIST_TRAIN_FILE, x_train, y_train), (MNIST_TEST_FILE, x_test, y_test)):
        if name not in missing:
            continue
        say(f"writing {missing[name]} (course format) and reading it back")
        _write_course_file(missing[name], images, labels)
        x, y = load_course_mnist(missing[name])
        if not (np.array_equal(x, _scale_255(np.asarray(images).reshape(len(images), N_PIXELS)))
                and np.array_equal(y, np.asarray(labels).reshape(-1))):
            raise _mismatch(missing[name], "images or labels")
        written.append(missing[name])
    return written


def ensure_fashion_mnist(datasets_dir, say: Callable[[str], None] = lambda line: None) -> list[Path]:
    """Make sure the four Fashion-MNIST IDX files exist in ``datasets_dir/fashion-mnist/``; returns the files
    written.

    Nothing happens when all four are present. Otherwise Fashion-MNIST is fetched with
    ``tf.keras.datasets.fashion_mnist.load_data()`` and each missing file is written from the arrays it returns,
    as the gzip-compressed IDX files the loader reads (uint8 images (N, 28, 28), labels (N,)); files already
    present are left untouched. The folder is then loaded back with :func:`load_fashion_mnist` and compared
    with the download. Offline, a :class:`DatasetError` says which files are missing and where to put them.
    """
    folder = _check_folder(datasets_dir) / FASHION_DIR
    names = {key: folder / name for key, name in FASHION_FILES.items()}
    missing = {key: p for key, p in names.items() if not p.exists()}
    if not missing:
        return []
    listed = [f"{FASHION_DIR}/{p.name}" for p in missing.values()]
    say(f"downloading Fashion-MNIST with tf.keras.datasets.fashion_mnist.load_data() (about 30 MB) for "
        f"{', '.join(listed)}")
    try:
        (x_train, y_train), (x_test, y_test) = _download_fashion_mnist()
    except Exception as exc:  # offline, tensorflow missing, download refused ...
        raise _offline(Path(datasets_dir), listed, "Fashion-MNIST", "gzip-compressed IDX files", exc) from exc
    arrays = {"train_images": x_train, "train_labels": y_train, "test_images": x_test, "test_labels": y_test}
    folder.mkdir(parents=True, exist_ok=True)
    for key, path in missing.items():
        say(f"writing {path} (IDX, gzip)")
        _write_idx_gz(path, arrays[key])
    say(f"reading {folder} back")
    loaded = load_fashion_mnist(datasets_dir)
    for (x, y), images, labels, split in ((loaded[0], x_train, y_train, "train"), (loaded[1], x_test, y_test, "test")):
        if (f"{split}_images" in missing and not np.array_equal(
                x, _scale_255(np.asarray(images).reshape(len(images), N_PIXELS)))):
            raise _mismatch(names[f"{split}_images"], "images")
        if f"{split}_labels" in missing and not np.array_equal(y, np.asarray(labels).reshape(-1)):
            raise _mismatch(names[f"{split}_labels"], "labels")
    return list(missing.values())


#: what `hw3-submit datasets fetch NAME` (and a job's --download) runs
FETCHERS: dict[str, Callable[..., list[Path]]] = {"mnist": ensure_mnist, "fashion-mnist": ensure_fashion_mnist}
