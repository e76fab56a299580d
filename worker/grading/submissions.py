"""The client's side of grading: which files a `grade` command names (a folder gives its files by name), which
are refused before any byte is read (symbolic links, anything that is not a regular file, files over
SIZE_LIMITS), and the checked read that hashes a file and copies it into the job folder, where workers on any
host read it (a worker checks its copy the same way). Also the exceptions a run fails with: its error is the
class's name and the reason ("SubmissionRejected: layer 'lambda' ...")."""
from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from pathlib import Path
from typing import Sequence

MB = 1_000_000
# A Problem 4 model is ~20 KB; 20 MB holds KERAS_MAX_PARAMS (keras_files.py) float32 weights with an optimizer's
# two slots each. The sweep's 784-512-256-10 weights are 2.1 MB (4.3 MB in float64); 50 MB holds NPZ_MAX_PARAMS
# (npz_files.py) in float32.
SIZE_LIMITS = {".h5": 20 * MB, ".hdf5": 20 * MB, ".npz": 50 * MB}
MAX_SUBMISSIONS = 1000


class Rejected(ValueError):
    """A submission's content fails a check; the message names the layer, array or attribute."""


class SubmissionRejected(Exception):
    """A run's failure: its file, and why its content was rejected."""


class SubmissionRefused(Exception):
    """A run's failure: its file was not copied (a symbolic link, not a regular file, too big, ...)."""


def collect(paths: Sequence, suffixes: tuple[str, ...]) -> list[tuple[str, str]]:
    """(name as shown, absolute path) of every submission: a file as given, a folder's files with `suffixes` in
    name order. Paths are made absolute without following links, so that a symbolic link is seen as one."""
    found: dict[str, str] = {}
    for given in paths:
        shown = str(given)
        path = os.path.abspath(os.path.expanduser(shown))
        if not os.path.lexists(path):
            raise ValueError(f"{shown}: no such file or folder")
        if os.path.isdir(path) and not os.path.islink(path):
            members = sorted(n for n in os.listdir(path) if os.path.splitext(n)[1].lower() in suffixes)
            if not members:
                raise ValueError(f"{shown}: a folder with no {' or '.join('*' + s for s in suffixes)} file in it")
            for name in members:
                found.setdefault(os.path.join(path, name), os.path.join(shown, name))
        else:
            found.setdefault(path, shown)
    if len(found) > MAX_SUBMISSIONS:
        raise ValueError(f"{len(found)} files given; at most {MAX_SUBMISSIONS} are graded in one job")
    return [(shown, path) for path, shown in found.items()]


def _not_regular(mode: int) -> str:
    what = ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a socket"
            if stat.S_ISSOCK(mode) else "a device" if stat.S_ISBLK(mode) or stat.S_ISCHR(mode) else "not a file")
    return f"{what}, not a regular file"


def read_checked(path: str, limit: int, target: Path | None = None) -> tuple[str, int]:
    """(sha256, size) of the regular file `path`, copied to `target` when given (atomically). Raises
    SubmissionRefused (the reason) for a symbolic link, anything else that is not a regular file, a file over
    `limit` bytes (also one that grows past it while read) or one that cannot be read. Opened without
    following a link and without blocking, so a file swapped for a link or a FIFO after the check is refused."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SubmissionRefused(f"a symbolic link (to {os.readlink(path)}); only regular files are graded, "
                                    "give the file itself") from None
        raise SubmissionRefused(f"cannot be read ({exc.strerror})") from None
    digest, size, tmp = hashlib.sha256(), 0, None
    with os.fdopen(fd, "rb") as src:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SubmissionRefused(_not_regular(st.st_mode))
        if st.st_size > limit:
            raise SubmissionRefused(f"{st.st_size:,} bytes, over the limit of {limit:,} bytes for this kind of file")
        out = None
        if target is not None:
            tmp = target.with_name(target.name + ".tmp")
            out = open(tmp, "wb")
        try:
            while chunk := src.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise SubmissionRefused(f"grew past the limit of {limit:,} bytes while it was read")
                digest.update(chunk)
                if out is not None:
                    out.write(chunk)
        except BaseException:
            if out is not None:
                out.close()
                tmp.unlink(missing_ok=True)
            raise
    if out is not None:
        out.close()
        os.replace(tmp, target)
    return digest.hexdigest(), size


def refusal(path: str, suffix: str, suffixes: tuple[str, ...]) -> str | None:
    """Why the file at `path` is not graded, from what lstat says (None: it will be read and copied)."""
    if suffix not in suffixes:
        return f"its name ends in {suffix or 'no suffix'!r}; expected {' or '.join(suffixes)}"
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"cannot be examined ({exc.strerror})"
    if stat.S_ISLNK(st.st_mode):
        return f"a symbolic link (to {os.readlink(path)}); only regular files are graded, give the file itself"
    if not stat.S_ISREG(st.st_mode):
        return _not_regular(st.st_mode)
    if st.st_size > SIZE_LIMITS[suffix]:
        return (f"{st.st_size:,} bytes, over the limit of {SIZE_LIMITS[suffix]:,} bytes for {suffix} files "
                "(a valid submission is far smaller)")
    return None


def run_names(shown: Sequence[str]) -> list[str]:
    """`007-alice_model`: the position in the order given, then the file's name without its suffix, made
    path-safe (64 characters at most; the position keeps names unique). Files that share a name (each
    student's `weights.npz`) are told apart by their folder's name: `001-alice-weights`, `002-bob-weights`."""
    stems = [os.path.splitext(os.path.basename(s))[0] for s in shown]
    names = []
    for index, (path, stem) in enumerate(zip(shown, stems)):
        folder = os.path.basename(os.path.dirname(os.path.normpath(path)))
        if stems.count(stem) > 1 and folder:
            stem = f"{folder}-{stem}"
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).lstrip(".") or "file"
        names.append(f"{index + 1:0{max(3, len(str(len(shown))))}d}-{stem}"[:64])
    return names


def staged_copy(job_dir: Path, run: str, suffix: str) -> Path:
    """Where `stage` copies a run's file: submissions/<run><suffix> in the job folder."""
    return Path(job_dir) / "submissions" / f"{run}{suffix}"


def refusal_note(job_dir: Path, run: str) -> Path:
    """Written by `stage` instead of the copy when a file changed after it was checked: the reason."""
    return Path(job_dir) / "submissions" / f"{run}.refused"
