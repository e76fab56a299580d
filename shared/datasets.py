"""Dataset loaders for the HW3 experiments: the one place where input files are read.

Every loader returns plain numpy arrays with fixed dtypes, whatever encoding the file used:

* images ``x``: ``float32``, shape ``(N, 784)``, C-contiguous, pixel values in ``[0, 1]``;
* class labels ``y``: ``int64``, shape ``(N,)``, values ``0..9``;
* human/machine sequences ``x``: ``float32``, shape ``(N, 20)``, values in ``{-1, +1}``;
  labels ``y``: ``int64``, ``1`` = human, ``0`` = machine.

Files are looked for in a datasets directory (``get_settings().datasets_dir``, set by the
environment variable ``HW3_DATASETS``); callers pass that directory in.

Course-format MNIST files (``mnist_traindata.hdf5``, ``mnist_testdata.hdf5``) hold two keys:

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

Every problem found in a file raises :class:`DatasetError`, whose message names the file, the
key when there is one, what is wrong and what was expected.
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import h5py
import numpy as np

__all__ = [
    "DatasetError",
    "MNIST_TRAIN_FILE",
    "MNIST_TEST_FILE",
    "FASHION_DIR",
    "FASHION_FILES",
    "HUMAN_MACHINE_PATTERN",
    "N_TRAIN",
    "N_VAL",
    "N_PIXELS",
    "N_CLASSES",
    "SEQ_LEN",
    "FASHION_CLASSES",
    "load_course_mnist",
    "mnist_train_val",
    "mnist_full_train",
    "mnist_test",
    "load_fashion_mnist",
    "find_human_machine",
    "load_human_machine",
    "synthetic_human_machine",
    "ensure_mnist",
    "check_datasets_option",
]

MNIST_TRAIN_FILE = "mnist_traindata.hdf5"
MNIST_TEST_FILE = "mnist_testdata.hdf5"
N_TRAIN = 50_000
N_VAL = 10_000
N_PIXELS = 784
N_CLASSES = 10
SEQ_LEN = 20

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
HUMAN_MACHINE_PATTERN = "binary_random*.hdf5"

_HOW_TO_SET_DIR = ("the datasets directory is the job's --datasets folder, by default the environment variable "
                   "HW3_DATASETS")


class DatasetError(ValueError):
    """An input file is missing or does not hold what it should.

    ``path`` and ``key`` (either may be ``None``) are kept as attributes; the message always
    spells them out.
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None, key: str | None = None):
        super().__init__(message)
        self.path = None if path is None else Path(path)
        self.key = key


def _error(path, problem: str, key: str | None = None, expected: str | None = None) -> DatasetError:
    where = f"{path}" if key is None else f"{path}, key {key!r}"
    message = f"{where}: {problem}"
    if expected:
        message += f"; expected {expected}"
    return DatasetError(message, path=path, key=key)


# ----------------------------------------------------------------------------- file checks


def check_datasets_option(value) -> str | None:
    """Validate a job's ``--datasets`` folder without touching it (the files are checked by the worker,
    where the path is interpreted). Returns ``None`` (the worker's ``HW3_DATASETS``) or the path normalised."""
    if value is None:
        return None
    what = "the absolute path of the folder holding the input files, as the workers see it"
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"--datasets must be a path, got {value!r}; expected {what}")
    text = os.fspath(value)
    if not text.strip():
        raise ValueError(f"--datasets is empty; expected {what}")
    if "\0" in text:
        raise ValueError(f"--datasets {text!r} contains a NUL character; expected {what}")
    if not os.path.isabs(text):
        raise ValueError(f"--datasets {text!r} is a relative path, which would depend on each worker's working "
                         f"directory; expected {what}")
    return os.path.normpath(text)


def _check_folder(datasets_dir) -> Path:
    """Fail when the datasets directory exists but is not a directory (a missing one is reported by the
    file looked for in it)."""
    datasets_dir = Path(datasets_dir)
    if datasets_dir.exists() and not datasets_dir.is_dir():
        raise _error(datasets_dir, "is a file, not a directory (the datasets directory)",
                     expected=f"the directory holding the input files; {_HOW_TO_SET_DIR}")
    return datasets_dir


def _check_file(path, what: str, hint: str | None = None) -> Path:
    """Fail unless ``path`` is an existing, readable regular file."""
    path = Path(path)
    if not path.exists():
        problem = f"{what} not found (looked for {path})"
        raise _error(path, problem, expected=hint)
    if path.is_dir():
        raise _error(path, f"is a directory, not a file ({what})", expected="a regular file")
    if not os.access(path, os.R_OK):
        raise _error(path, f"cannot be read (permission denied) ({what})",
                     expected="a file readable by this process")
    return path


def _open_hdf5(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except PermissionError as exc:
        raise _error(path, f"cannot be read (permission denied): {exc}") from exc
    except OSError as exc:
        if not h5py.is_hdf5(path):
            raise _error(path, "is not an HDF5 file (no HDF5 signature)",
                         expected="an HDF5 file written with h5py") from exc
        raise _error(path, f"HDF5 file is truncated or corrupt ({exc})",
                     expected="a complete HDF5 file") from exc


def _read_key(h5: h5py.File, path: Path, key: str) -> np.ndarray:
    """Read one whole dataset into memory (a single ``ds[()]``, no extra copy)."""
    if key not in h5:
        present = ", ".join(repr(k) for k in h5.keys()) or "none"
        raise _error(path, f"key is missing (keys present: {present})", key=key,
                     expected=f"a dataset named {key!r}")
    ds = h5[key]
    if not isinstance(ds, h5py.Dataset):
        raise _error(path, f"is a {type(ds).__name__}, not a dataset", key=key,
                     expected="a numeric array")
    if ds.dtype.kind not in "biuf":
        raise _error(path, f"has non-numeric dtype {ds.dtype}", key=key,
                     expected="a numeric (integer, float or bool) array")
    try:
        return ds[()]
    except (OSError, RuntimeError) as exc:
        raise _error(path, f"data cannot be read, file truncated or corrupt ({exc})",
                     key=key, expected="a complete HDF5 file") from exc


# ----------------------------------------------------------------------------- validation helpers


def _check_2d(a: np.ndarray, path, key: str, width: int, what: str) -> None:
    if a.ndim != 2:
        raise _error(path, f"is {a.ndim}-D with shape {a.shape}", key=key,
                     expected=f"2-D {what} of shape (N, {width})")
    if a.shape[1] != width:
        raise _error(path, f"has {a.shape[1]} columns (shape {a.shape})", key=key,
                     expected=f"{width} columns, shape (N, {width}) ({what})")
    if a.shape[0] == 0:
        raise _error(path, "is empty (0 rows)", key=key, expected="at least one row")


def _first_row(mask: np.ndarray) -> int:
    """Row index of the first True in a boolean array of any dimension (rows = axis 0)."""
    return int(np.argmax(mask.reshape(mask.shape[0], -1).any(axis=1)))


def _finite_range(a: np.ndarray, path, key: str):
    """``(min, max)`` of ``a``, rejecting NaN and +-inf (two reductions on clean data)."""
    lo, hi = a.min(), a.max()
    if a.dtype.kind != "f" or (np.isfinite(lo) and np.isfinite(hi)):
        return lo, hi
    bad = ~np.isfinite(a)
    n_nan = int(np.isnan(a).sum())
    n_inf = int(bad.sum()) - n_nan
    raise _error(path, f"contains {n_nan} NaN and {n_inf} infinite values (first in row {_first_row(bad)})",
                 key=key, expected="finite numbers only")


def _scale_255(a: np.ndarray) -> np.ndarray:
    """0-255 values (any numeric dtype) -> float32 in [0, 1], exactly ``float32(v) / 255``."""
    x = a.astype(np.float32)  # a fresh array, safe to scale in place
    x /= np.float32(255.0)
    return x


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


def _labels(raw: np.ndarray, path, n_rows: int, key: str = "ydata") -> np.ndarray:
    """Validate one-hot (N, 10) or index (N,) / (N, 1) labels; return int64 (N,) in 0..9."""
    expected_shape = f"one-hot (N, {N_CLASSES}) or class indices (N,) / (N, 1)"
    if raw.ndim == 2 and raw.shape[1] == 1:
        raw = raw.reshape(-1)
    if raw.ndim == 2 and raw.shape[1] != N_CLASSES:
        raise _error(path, f"has {raw.shape[1]} columns (shape {raw.shape})", key=key,
                     expected=expected_shape)
    if raw.ndim not in (1, 2):
        raise _error(path, f"is {raw.ndim}-D with shape {raw.shape}", key=key, expected=expected_shape)
    if raw.shape[0] == 0:
        raise _error(path, "is empty (0 rows)", key=key, expected="at least one row")
    if raw.shape[0] != n_rows:
        raise _error(path, f"has {raw.shape[0]} rows but xdata has {n_rows}", key=key,
                     expected="one label per image (same number of rows as xdata)")
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


def _bits(raw: np.ndarray, path, key: str) -> np.ndarray:
    """Validate a human/machine key; return float32 (N, 20) in {-1, +1}.

    Accepts {-1, +1} or {0, 1} (0 -> -1) in any numeric dtype, or booleans (False -> -1);
    one key must use one encoding.
    """
    _check_2d(raw, path, key, SEQ_LEN, "bit sequences")
    if raw.dtype.kind == "b":
        return np.where(raw, np.float32(1), np.float32(-1))
    _finite_range(raw, path, key)
    values = np.unique(raw)
    allowed = {-1, 0, 1}
    odd = [v.item() for v in values if v not in allowed]
    if odd:
        mask = ~np.isin(raw, [-1, 0, 1])
        shown = ", ".join(repr(v) for v in odd[:8]) + (", ..." if len(odd) > 8 else "")
        raise _error(path, f"has values outside the bit encodings: {shown} (first in row {_first_row(mask)})",
                     key=key, expected="bits in {-1, +1} or in {0, 1}")
    present = {v.item() for v in values}
    if -1 in present and 0 in present:
        mask = raw == 0
        raise _error(path, f"mixes the two encodings: holds -1, 0{' and 1' if 1 in present else ''} "
                           f"(first 0 in row {_first_row(mask)})",
                     key=key, expected="one encoding per key: {-1, +1} or {0, 1}")
    x = raw.astype(np.float32)
    if 0 in present:
        x *= 2
        x -= 1
    return x


# ----------------------------------------------------------------------------- course MNIST


def load_course_mnist(path) -> tuple[np.ndarray, np.ndarray]:
    """Read one course-format MNIST file (keys ``xdata``, ``ydata``).

    Returns ``x`` float32 ``(N, 784)`` in ``[0, 1]``, C-contiguous, and ``y`` int64 ``(N,)`` in
    ``0..9``. Encodings accepted are described in the module docstring.
    """
    path = _check_file(path, "course MNIST file",
                       hint=f"the course file at this path ({_HOW_TO_SET_DIR}; ensure_mnist() can create it when online)")
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
                              f"--datasets at the directory holding it; ensure_mnist() downloads it when online)")
    return path


def mnist_full_train(datasets_dir) -> tuple[np.ndarray, np.ndarray]:
    """All of ``mnist_traindata.hdf5``: ``x`` float32 ``(60000, 784)``, ``y`` int64 ``(60000,)``.

    The file must hold exactly ``N_TRAIN + N_VAL`` (60,000) rows, the original training set in
    its classic order, so that rows ``[:50000]`` / ``[50000:]`` are the training / validation split.
    """
    path = _mnist_file(datasets_dir, MNIST_TRAIN_FILE)
    x, y = load_course_mnist(path)
    if x.shape[0] != N_TRAIN + N_VAL:
        raise _error(path, f"holds {x.shape[0]} rows", key="xdata",
                     expected=f"exactly {N_TRAIN + N_VAL} rows ({N_TRAIN} training + {N_VAL} validation)")
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
    if train_size is not None:
        if isinstance(train_size, bool) or not isinstance(train_size, (int, np.integer)):
            raise ValueError(f"train_size must be an integer in 1..{N_TRAIN} or None, got {train_size!r}")
        if not 1 <= train_size <= N_TRAIN:
            raise ValueError(f"train_size must be in 1..{N_TRAIN}, got {train_size}")
    x, y = mnist_full_train(datasets_dir)
    n = N_TRAIN if train_size is None else int(train_size)
    return x[:n], y[:n], x[N_TRAIN:], y[N_TRAIN:]


def mnist_test(datasets_dir) -> tuple[np.ndarray, np.ndarray]:
    """The test set, ``mnist_testdata.hdf5``: ``x`` float32 ``(10000, 784)``, ``y`` int64 ``(10000,)``.

    This is the only function that opens the test file.
    """
    return load_course_mnist(_mnist_file(datasets_dir, MNIST_TEST_FILE))


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


# ----------------------------------------------------------------------------- Fashion-MNIST


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read a gzip-compressed IDX file of unsigned bytes with ``ndim`` dimensions (uint8 array)."""
    path = _check_file(path, "Fashion-MNIST IDX file",
                       hint=f"the four keras Fashion-MNIST files {', '.join(FASHION_FILES.values())} "
                            f"(as cached by keras in ~/.keras/datasets/fashion-mnist/) in this folder; "
                            f"{_HOW_TO_SET_DIR}")
    try:
        with gzip.open(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise _error(path, f"gzip data is truncated or corrupt ({type(exc).__name__}: {exc})",
                     expected="a complete gzip-compressed IDX file") from exc
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
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(dims, dtype=np.int64))
    if len(data) - header != size:
        raise _error(path, f"holds {len(data) - header} data bytes but its header {dims} announces {size}",
                     expected="a complete IDX file")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _fashion_split(folder: Path, images_name: str, labels_name: str) -> tuple[np.ndarray, np.ndarray]:
    images = _read_idx(folder / images_name, 3)
    labels = _read_idx(folder / labels_name, 1)
    n, rows, cols = images.shape
    if rows * cols != N_PIXELS:
        raise _error(folder / images_name, f"images are {rows}x{cols}", expected="28x28 images")
    if n == 0:
        raise _error(folder / images_name, "holds 0 images", expected="at least one image")
    if labels.shape[0] != n:
        raise _error(folder / labels_name, f"holds {labels.shape[0]} labels but {images_name} holds {n} images",
                     expected="one label per image")
    bad = labels > N_CLASSES - 1
    if bad.any():
        row = int(np.argmax(bad))
        raise _error(folder / labels_name, f"label {labels[row]} at index {row} is not a class index",
                     expected="labels in 0..9")
    return _scale_255(images.reshape(n, N_PIXELS)), labels.astype(np.int64)


def load_fashion_mnist(datasets_dir) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Fashion-MNIST from the four keras IDX files in ``datasets_dir/fashion-mnist/``.

    Returns ``((x_train, y_train), (x_test, y_test))``: ``x`` float32 ``(N, 784)`` = pixels/255,
    ``y`` int64 ``(N,)`` in 0..9 (names in :data:`FASHION_CLASSES`); 60,000 training and 10,000
    test images for the real files.
    """
    folder = _check_folder(datasets_dir) / FASHION_DIR
    train = _fashion_split(folder, FASHION_FILES["train_images"], FASHION_FILES["train_labels"])
    test = _fashion_split(folder, FASHION_FILES["test_images"], FASHION_FILES["test_labels"])
    return train, test


# ----------------------------------------------------------------------------- human / machine


def find_human_machine(datasets_dir) -> Path:
    """Path of the human/machine file: ``datasets_dir/binary_random*.hdf5``.

    When several files match, the first in sorted name order is used (deterministic, unlike
    modification times).
    """
    datasets_dir = _check_folder(datasets_dir)
    matches = sorted(p for p in datasets_dir.glob(HUMAN_MACHINE_PATTERN) if p.is_file())
    if not matches:
        raise DatasetError(
            f"{datasets_dir}: no human/machine file matching {HUMAN_MACHINE_PATTERN} in the datasets directory; "
            f"expected the course file (for example binary_random_20fa.hdf5) there, or set HW3_DATASETS "
            f"(or the job's --datasets) to a directory that holds it",
            path=datasets_dir,
        )
    return matches[0]


def load_human_machine(path) -> tuple[np.ndarray, np.ndarray]:
    """Read a human/machine file with keys ``human`` and ``machine``, each ``(n, 20)`` bits.

    Bits may be {-1, +1} or {0, 1} (0 becomes -1) or booleans, in any numeric dtype, chosen per
    key. Returns ``x`` float32 ``(n_human + n_machine, 20)`` in {-1, +1}, human rows first, and
    ``y`` int64 with 1 = human, 0 = machine.
    """
    path = _check_file(path, "human/machine file",
                       hint=f"the course file (keys 'human', 'machine') at this path; {_HOW_TO_SET_DIR}")
    with _open_hdf5(path) as h5:
        human_raw = _read_key(h5, path, "human")
        machine_raw = _read_key(h5, path, "machine")
    human = _bits(human_raw, path, "human")
    machine = _bits(machine_raw, path, "machine")
    x = np.concatenate([human, machine])
    y = np.concatenate([np.ones(len(human), np.int64), np.zeros(len(machine), np.int64)])
    return x, y


def synthetic_human_machine(n_per_class: int = 5100, seed: int = 0, *,
                            p_switch: float = 0.6, max_run: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic stand-in for the human/machine data, same encoding as :func:`load_human_machine`.

    People asked to type random bits alternate more often than chance and avoid long runs; the
    "human" rows model that as a Markov chain: the first bit is a fair coin, each later bit
    differs from the previous one with probability ``p_switch`` (0.6), and a run of
    ``max_run`` (4) equal bits is always broken. "Machine" rows are fair coin flips. Both are
    reproducible from ``seed``.

    Returns ``x`` float32 ``(2 * n_per_class, 20)`` in {-1, +1}, human rows first, and ``y``
    int64 (1 = human, 0 = machine).
    """
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be at least 1, got {n_per_class}")
    if not 0.0 <= p_switch <= 1.0:
        raise ValueError(f"p_switch must be in [0, 1], got {p_switch}")
    if max_run < 1:
        raise ValueError(f"max_run must be at least 1, got {max_run}")
    rng = np.random.default_rng(seed)
    human = np.empty((n_per_class, SEQ_LEN), np.float32)
    human[:, 0] = rng.choice(np.array([-1.0, 1.0], np.float32), size=n_per_class)
    run = np.ones(n_per_class, np.int64)
    for t in range(1, SEQ_LEN):
        switch = (rng.random(n_per_class) < p_switch) | (run >= max_run)
        human[:, t] = np.where(switch, -human[:, t - 1], human[:, t - 1])
        run = np.where(switch, 1, run + 1)
    machine = rng.integers(0, 2, size=(n_per_class, SEQ_LEN)).astype(np.float32) * 2 - 1
    x = np.concatenate([human, machine])
    y = np.concatenate([np.ones(n_per_class, np.int64), np.zeros(n_per_class, np.int64)])
    return x, y
