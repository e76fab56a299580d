"""Fetching MNIST and writing it in the course format, only on an explicit request.

No loader calls :func:`ensure_mnist`: loading reads what is in the datasets directory and fails
with a :class:`DatasetError` when a file is missing; downloading is a separate, deliberate step.
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from .common import N_CLASSES, DatasetError, _check_folder, _scale_255
from .mnist import MNIST_TEST_FILE, MNIST_TRAIN_FILE


def _download_mnist():
    """``tf.keras.datasets.mnist.load_data()``, importing tensorflow only when needed."""
    import tensorflow as tf

    return tf.keras.datasets.mnist.load_data()


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


def ensure_mnist(datasets_dir) -> None:
    """Make sure both course MNIST files exist in ``datasets_dir``.

    Nothing happens when both are present. Otherwise MNIST is fetched with
    ``tf.keras.datasets.mnist.load_data()`` (tensorflow is imported only then) and each missing
    file is written in the course format: ``xdata`` float32 ``(N, 784)`` pixels/255 and ``ydata``
    float32 one-hot ``(N, 10)``; the training file holds the original 60,000 training images in
    order, the test file the 10,000 test images. Files already present are left untouched. Files
    are written uncompressed (about 220 MB together), which makes later loads fast.

    When the download is impossible (offline, no tensorflow) a :class:`DatasetError` says which
    files are missing and where to put them.
    """
    datasets_dir = _check_folder(datasets_dir)
    targets = {MNIST_TRAIN_FILE: datasets_dir / MNIST_TRAIN_FILE, MNIST_TEST_FILE: datasets_dir / MNIST_TEST_FILE}
    missing = {name: p for name, p in targets.items() if not p.exists()}
    if not missing:
        return
    try:
        (x_train, y_train), (x_test, y_test) = _download_mnist()
    except Exception as exc:  # offline, tensorflow missing, download refused ...
        names = " and ".join(missing)
        raise DatasetError(
            f"{datasets_dir}: course MNIST file(s) {names} missing and MNIST could not be downloaded "
            f"({type(exc).__name__}: {exc}); put {names} (course format: xdata (N, 784), ydata (N, 10)) "
            f"into {datasets_dir}, or set HW3_DATASETS (or the job's --datasets) to a directory that holds them",
            path=datasets_dir,
        ) from exc
    datasets_dir.mkdir(parents=True, exist_ok=True)
    if MNIST_TRAIN_FILE in missing:
        _write_course_file(missing[MNIST_TRAIN_FILE], x_train, y_train)
    if MNIST_TEST_FILE in missing:
        _write_course_file(missing[MNIST_TEST_FILE], x_test, y_test)
