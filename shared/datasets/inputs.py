"""What each homework problem reads from the datasets folder, checked two ways.

``require_*``       before a job is created (the client, through each kind's ``check_inputs``): the files are
                    there and their headers and shapes are right; no data is loaded. One :class:`DatasetError`
                    names the folder and the files expected.
``inspect_folder``  ``hw3-submit datasets check``: every expected input is loaded with its loader, as a worker
                    would; one :class:`InputStatus` per input (ok, missing or invalid).
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .common import DatasetError, _check_folder
from .fashion import FASHION_DIR, FASHION_SPLITS, _fashion_split, _read_idx, check_fashion_mnist, idx_shape
from .human_machine import HUMAN_MACHINE_PATTERN, check_human_machine, find_human_machine, load_human_machine
from .mnist import MNIST_TEST_FILE, MNIST_TRAIN_FILE, check_course_mnist, load_course_mnist, mnist_full_train

MNIST_INPUTS = (MNIST_TRAIN_FILE, MNIST_TEST_FILE)
FASHION_INPUTS = tuple(f"{FASHION_DIR}/{name}" for split in FASHION_SPLITS for name in split)

_LISTS = "`hw3-submit datasets check` lists what is there"
_CHOOSE = "point --datasets (default: HW3_DATASETS) at the folder that holds them"


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"


_NEEDS = {
    "mnist": f"{_and(list(MNIST_INPUTS))} (course-format MNIST)",
    "fashion-mnist": f"{FASHION_DIR}/ with {_and([name for split in FASHION_SPLITS for name in split])} "
                     f"(Fashion-MNIST)",
}


def _missing(folder: Path, names: tuple[str, ...]) -> list[str]:
    """The expected names absent from `folder`; a missing subfolder is named once, as `sub/`."""
    missing: list[str] = []
    for name in names:
        sub = name.split("/")[0] + "/"
        entry = sub if "/" in name and not (folder / sub).exists() else name
        if not (folder / name).exists() and entry not in missing:
            missing.append(entry)
    return missing


def _require(folder, names: tuple[str, ...], dataset: str, check: Callable[[Path], object]) -> None:
    """Run `check(folder)` (headers and shapes); any problem becomes one DatasetError naming the folder and
    everything the problem needs in it."""
    folder = Path(folder)
    needs = _NEEDS[dataset]
    get = (f"Download them with --download or `hw3-submit datasets fetch {dataset} --datasets "
           f"{shlex.quote(str(folder))}`, or {_CHOOSE}; {_LISTS}.")
    if not folder.exists():
        raise DatasetError(f"the datasets folder {folder} does not exist; it must hold {needs}. {get}", path=folder)
    missing = _missing(folder, names) if folder.is_dir() else []
    if missing:
        raise DatasetError(f"{_and(missing)} {'is' if len(missing) == 1 else 'are'} missing from {folder}, which "
                           f"must hold {needs}. {get}", path=folder / missing[0].rstrip("/"))
    try:
        check(_check_folder(folder))  # a file where the folder should be is named as such
    except DatasetError as exc:
        raise DatasetError(f"{exc}. The datasets folder {folder} must hold {needs}; {_LISTS}.",
                           path=exc.path, key=exc.key) from exc


def require_mnist(folder) -> None:
    """Problem 1's inputs: both course MNIST files, HDF5 with keys xdata (N, 784) and ydata, the training file
    with 60,000 rows."""
    _require(folder, MNIST_INPUTS, "mnist", lambda f: (check_course_mnist(f / MNIST_TRAIN_FILE, train=True),
                                                       check_course_mnist(f / MNIST_TEST_FILE)))


def require_fashion_mnist(folder) -> None:
    """Problems 2 and 3's inputs: the four Fashion-MNIST IDX files (magic numbers, 28x28 images, one label per
    image)."""
    _require(folder, FASHION_INPUTS, "fashion-mnist", check_fashion_mnist)


def require_human_machine(folder, data=None) -> None:
    """Problem 4's input: the file `data` when given, else the folder's binary_random*.hdf5 (keys human and
    machine, shape (N, 20) each)."""
    if data:
        check_human_machine(data)  # the message names the file given; the folder plays no part
        return
    folder = Path(folder)
    other = f"pass --data FILE or --synthetic; {_LISTS}"
    if not folder.exists():
        raise DatasetError(f"the datasets folder {folder} does not exist; it must hold the course's human/machine "
                           f"file {HUMAN_MACHINE_PATTERN} (keys human and machine). Point --datasets (default: "
                           f"HW3_DATASETS) at the folder that holds it, or {other}.", path=folder)
    try:
        check_human_machine(find_human_machine(folder))  # a missing file: the message names folder and pattern
    except DatasetError as exc:
        raise DatasetError(f"{exc}. Or {other}.", path=exc.path, key=exc.key) from exc


# ----------------------------------------------------------------------------- the full check, input by input


@dataclass(frozen=True)
class InputStatus:
    """One expected input of the datasets folder, checked by loading it as a worker would."""
    file: str                 # relative to the folder (the pattern when no human/machine file matches)
    used_by: str              # the homework problems that read it
    status: str               # ok, missing or invalid
    reason: str | None = None   # what is wrong (missing, invalid)
    shapes: dict[str, tuple[int, ...]] | None = None  # by key (HDF5) or of the file (IDX), when ok

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict:
        return {"file": self.file, "used_by": self.used_by, "status": self.status, "reason": self.reason,
                "shapes": None if self.shapes is None else {k: list(v) for k, v in self.shapes.items()}}


def _failed(folder: Path, name: str, used_by: str, exc: DatasetError) -> InputStatus:
    path = folder / name
    if not path.exists():
        return InputStatus(name, used_by, "missing", "not found")
    message = str(exc)
    for prefix in (f"{path}: ", f"{path}, "):  # the file is shown beside the reason already
        if message.startswith(prefix):
            message = message[len(prefix):]
    return InputStatus(name, used_by, "invalid", message)


def _loaded(folder: Path, name: str, used_by: str, load: Callable[[], dict]) -> InputStatus:
    try:
        return InputStatus(name, used_by, "ok", shapes=load())
    except DatasetError as exc:
        return _failed(folder, name, used_by, exc)


def _mnist(folder: Path) -> list[InputStatus]:
    def train():
        shapes = check_course_mnist(folder / MNIST_TRAIN_FILE, train=True)
        mnist_full_train(folder)
        return shapes

    def test():
        shapes = check_course_mnist(folder / MNIST_TEST_FILE)
        load_course_mnist(folder / MNIST_TEST_FILE)
        return shapes

    return [_loaded(folder, MNIST_TRAIN_FILE, "Problem 1", train), _loaded(folder, MNIST_TEST_FILE, "Problem 1", test)]


def _fashion(folder: Path) -> list[InputStatus]:
    """Each split is loaded as the workers load it; a failure is told against the file it names, and the other
    file of the split is then checked alone."""
    sub, used_by = folder / FASHION_DIR, "Problems 2, 3"
    out = []
    for images, labels in FASHION_SPLITS:
        files = ((images, 3), (labels, 1))
        try:
            _fashion_split(sub, images, labels)
        except DatasetError as exc:
            for name, ndim in files:
                if exc.path == sub / name:
                    out.append(_failed(folder, f"{FASHION_DIR}/{name}", used_by, exc))
                else:
                    out.append(_loaded(folder, f"{FASHION_DIR}/{name}", used_by,
                                       lambda n=name, d=ndim: {"shape": _read_idx(sub / n, d).shape}))
            continue
        out.extend(InputStatus(f"{FASHION_DIR}/{name}", used_by, "ok", shapes={"shape": idx_shape(sub / name, ndim)})
                   for name, ndim in files)
    return out


def _human_machine(folder: Path) -> list[InputStatus]:
    used_by = "Problem 4"
    try:
        path = find_human_machine(folder)
    except DatasetError:
        return [InputStatus(HUMAN_MACHINE_PATTERN, used_by, "missing",
                            "no file matching it (human-machine can take --data FILE or --synthetic instead)")]

    def load():
        shapes = check_human_machine(path)
        load_human_machine(path)
        return shapes

    return [_loaded(folder, path.name, used_by, load)]


def inspect_folder(folder) -> list[InputStatus]:
    """Every input the four problems read from `folder`, each loaded and validated by its loader. A folder that
    does not exist (or is not a folder) has every input missing."""
    folder = Path(folder)
    if not folder.is_dir():
        reason = "the datasets folder is a file" if folder.exists() else "the datasets folder does not exist"
        return [InputStatus(name, used_by, "missing", reason) for name, used_by in
                [*((n, "Problem 1") for n in MNIST_INPUTS), *((n, "Problems 2, 3") for n in FASHION_INPUTS),
                 (HUMAN_MACHINE_PATTERN, "Problem 4")]]
    return [*_mnist(folder), *_fashion(folder), *_human_machine(folder)]
