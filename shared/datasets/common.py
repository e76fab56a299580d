"""What every dataset format shares: :class:`DatasetError`, the folder/file/HDF5 checks and the array
validation helpers, and the ``--datasets`` option check.

Every problem found raises :class:`DatasetError`, whose message names the file, the key when there is
one, what is wrong and what was expected.
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

N_PIXELS = 784
N_CLASSES = 10
SEQ_LEN = 20

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
    """Validate a job's ``--datasets`` folder without touching it (its files are checked by the client where it
    sees the folder, and by the workers). Returns ``None`` (the default folder) or the path made absolute and
    normalised: a relative path is taken from the current folder here, before it is sent to the workers."""
    if value is None:
        return None
    what = ("the absolute path of the folder holding the input files as the workers see it, or a path relative "
            "to the current folder")
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"--datasets must be a path, got {value!r}; expected {what}")
    text = os.fspath(value)
    if not text.strip():
        raise ValueError(f"--datasets is empty; expected {what}")
    if "\0" in text:
        raise ValueError(f"--datasets {text!r} contains a NUL character; expected {what}")
    return os.path.abspath(os.path.expanduser(text))


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


def _dataset(h5: h5py.File, path: Path, key: str) -> h5py.Dataset:
    """The numeric dataset ``key`` of an open file, nothing read yet (its ``shape`` and ``dtype`` are known)."""
    try:
        if key not in h5:
            present = ", ".join(repr(k) for k in h5.keys()) or "none"
            raise _error(path, f"key is missing (keys present: {present})", key=key,
                         expected=f"a dataset named {key!r}")
        ds = h5[key]
    except (OSError, RuntimeError) as exc:
        raise _error(path, f"HDF5 file is truncated or corrupt ({exc})", key=key,
                     expected="a complete HDF5 file") from exc
    if not isinstance(ds, h5py.Dataset):
        raise _error(path, f"is a {type(ds).__name__}, not a dataset", key=key,
                     expected="a numeric array")
    if ds.dtype.kind not in "biuf":
        raise _error(path, f"has non-numeric dtype {ds.dtype}", key=key,
                     expected="a numeric (integer, float or bool) array")
    return ds


def _read_key(h5: h5py.File, path: Path, key: str) -> np.ndarray:
    """Read one whole dataset into memory (a single ``ds[()]``, no extra copy)."""
    ds = _dataset(h5, path, key)
    try:
        return ds[()]
    except (OSError, RuntimeError) as exc:
        raise _error(path, f"data cannot be read, file truncated or corrupt ({exc})",
                     key=key, expected="a complete HDF5 file") from exc


# ----------------------------------------------------------------------------- validation helpers


def _check_2d(a: np.ndarray | h5py.Dataset, path, key: str, width: int, what: str) -> None:
    """Shape ``(N >= 1, width)``; works on an array or on a dataset not yet read."""
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
