"""Fashion-MNIST from the four gzip-compressed IDX files keras downloads and caches."""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from .common import _HOW_TO_SET_DIR, N_CLASSES, N_PIXELS, _check_file, _check_folder, _error, _scale_255

FASHION_DIR = "fashion-mnist"
#: the four files ``keras.datasets.fashion_mnist.load_data()`` downloads and caches
FASHION_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


_FILE_HINT = (f"the four keras Fashion-MNIST files {', '.join(FASHION_FILES.values())} (as cached by keras in "
              f"~/.keras/datasets/fashion-mnist/, or written by `hw3-submit datasets fetch fashion-mnist`) in this "
              f"folder; {_HOW_TO_SET_DIR}")


# Hand-written IDX reader (a few lines of numpy) rather than keras.datasets: no Keras import in workers.
def _gunzip(path: Path, size: int = -1) -> bytes:
    """The first ``size`` bytes (all with -1) of the gzip-compressed file ``path``."""
    path = _check_file(path, "Fashion-MNIST IDX file", hint=_FILE_HINT)
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read(size)
    except (OSError, EOFError, zlib.error) as exc:
        raise _error(path, f"gzip data is truncated or corrupt ({type(exc).__name__}: {exc})",
                     expected="a complete gzip-compressed IDX file") from exc


def _idx_dims(data: bytes, path: Path, ndim: int) -> tuple[int, ...]:
    """The dimensions an IDX header of unsigned bytes announces (``data``: the file's first bytes at least)."""
    header = 4 + 4 * ndim
    want = 0x0800 | ndim  # two zero bytes, type 0x08 (unsigned byte), number of dimensions
    if len(data) < 4:
        raise _error(path, f"holds only {len(data)} bytes, no IDX header",
                     expected=f"an IDX file starting with the magic number 0x{want:08x}")
    magic = int.from_bytes(data[:4], "big")
    if magic != want:
        raise _error(path, f"bad magic number 0x{magic:08x}",
                     expected=f"0x{want:08x} (IDX, unsigned bytes, {ndim} dimension{'s' if ndim > 1 else ''})")
    if len(data) < header:
        raise _error(path, "IDX header is truncated", expected=f"{header} header bytes")
    return tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))


def idx_shape(path, ndim: int) -> tuple[int, ...]:
    """The shape a gzip-compressed IDX file announces, from its header alone (nothing else is decompressed)."""
    path = Path(path)
    return _idx_dims(_gunzip(path, 4 + 4 * ndim), path, ndim)


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read a gzip-compressed IDX file of unsigned bytes with ``ndim`` dimensions (uint8 array)."""
    data = _gunzip(path)
    dims = _idx_dims(data, path, ndim)
    header = 4 + 4 * ndim
    size = int(np.prod(dims, dtype=np.int64))
    if len(data) - header != size:
        raise _error(path, f"holds {len(data) - header} data bytes but its header {dims} announces {size}",
                     expected="a complete IDX file")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _check_split_shapes(folder: Path, images_name: str, labels_name: str, images_shape: tuple[int, ...],
                        labels_shape: tuple[int, ...]) -> None:
    """28x28 images, at least one, and one label per image."""
    n, rows, cols = images_shape
    if rows * cols != N_PIXELS:
        raise _error(folder / images_name, f"images are {rows}x{cols}", expected="28x28 images")
    if n == 0:
        raise _error(folder / images_name, "holds 0 images", expected="at least one image")
    if labels_shape[0] != n:
        raise _error(folder / labels_name, f"holds {labels_shape[0]} labels but {images_name} holds {n} images",
                     expected="one label per image")


def _fashion_split(folder: Path, images_name: str, labels_name: str) -> tuple[np.ndarray, np.ndarray]:
    images = _read_idx(folder / images_name, 3)
    labels = _read_idx(folder / labels_name, 1)
    _check_split_shapes(folder, images_name, labels_name, images.shape, labels.shape)
    n = images.shape[0]
    bad = labels > N_CLASSES - 1
    if bad.any():
        row = int(np.argmax(bad))
        raise _error(folder / labels_name, f"label {labels[row]} at index {row} is not a class index",
                     expected="labels in 0..9")
    return _scale_255(images.reshape(n, N_PIXELS)), labels.astype(np.int64)


#: (images, labels) file names of the training and the test split
FASHION_SPLITS = ((FASHION_FILES["train_images"], FASHION_FILES["train_labels"]),
                  (FASHION_FILES["test_images"], FASHION_FILES["test_labels"]))


def check_fashion_mnist(datasets_dir) -> dict[str, tuple[int, ...]]:
    """The checks of :func:`load_fashion_mnist` that need only the IDX headers (the four files, their magic
    numbers, 28x28 images, one label per image). Returns the shapes by file name."""
    folder = _check_folder(datasets_dir) / FASHION_DIR
    shapes = {}
    for images_name, labels_name in FASHION_SPLITS:
        shapes[images_name] = idx_shape(folder / images_name, 3)
        shapes[labels_name] = idx_shape(folder / labels_name, 1)
        _check_split_shapes(folder, images_name, labels_name, shapes[images_name], shapes[labels_name])
    return shapes


def load_fashion_mnist(datasets_dir) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Fashion-MNIST from the four keras IDX files in ``datasets_dir/fashion-mnist/``.

    Returns ``((x_train, y_train), (x_test, y_test))``: ``x`` float32 ``(N, 784)`` = pixels/255,
    ``y`` int64 ``(N,)`` in 0..9 (names in :data:`FASHION_CLASSES`); 60,000 training and 10,000
    test images for the real files.
    """
    folder = _check_folder(datasets_dir) / FASHION_DIR
    train, test = (_fashion_split(folder, images, labels) for images, labels in FASHION_SPLITS)
    return train, test
