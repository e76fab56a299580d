"""The course's human/machine file: 20-bit sequences typed by people (``human``) and drawn by a
random generator (``machine``), found in the datasets directory by name pattern."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import (
    _HOW_TO_SET_DIR,
    SEQ_LEN,
    DatasetError,
    _check_2d,
    _check_file,
    _check_folder,
    _dataset,
    _error,
    _finite_range,
    _first_row,
    _open_hdf5,
    _read_key,
)

HUMAN_MACHINE_PATTERN = "binary_random*.hdf5"


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


_FILE_HINT = f"the course file (keys 'human', 'machine') at this path; {_HOW_TO_SET_DIR}"


def check_human_machine(path) -> dict[str, tuple[int, ...]]:
    """The checks of :func:`load_human_machine` that read no bit: the file, its keys and their shapes
    ``(n, 20)``. Returns the shapes by key."""
    path = _check_file(path, "human/machine file", hint=_FILE_HINT)
    with _open_hdf5(path) as h5:
        keys = {key: _dataset(h5, path, key) for key in ("human", "machine")}
        for key, ds in keys.items():
            _check_2d(ds, path, key, SEQ_LEN, "bit sequences")
        return {key: ds.shape for key, ds in keys.items()}


def load_human_machine(path) -> tuple[np.ndarray, np.ndarray]:
    """Read a human/machine file with keys ``human`` and ``machine``, each ``(n, 20)`` bits.

    Bits may be {-1, +1} or {0, 1} (0 becomes -1) or booleans, in any numeric dtype, chosen per
    key. Returns ``x`` float32 ``(n_human + n_machine, 20)`` in {-1, +1}, human rows first, and
    ``y`` int64 with 1 = human, 0 = machine.
    """
    path = _check_file(path, "human/machine file", hint=_FILE_HINT)
    with _open_hdf5(path) as h5:
        human_raw = _read_key(h5, path, "human")
        machine_raw = _read_key(h5, path, "machine")
    human = _bits(human_raw, path, "human")
    machine = _bits(machine_raw, path, "machine")
    x = np.concatenate([human, machine])
    y = np.concatenate([np.ones(len(human), np.int64), np.zeros(len(machine), np.int64)])
    return x, y


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
