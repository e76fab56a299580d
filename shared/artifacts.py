"""The job folder on the volume: artifacts/<job_id>/..., safe path handling and artifact bookkeeping."""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from shared.settings import Settings
from shared.store import Store, validate_job_id


class UnsafePath(ValueError):
    pass


class WouldOverwrite(ValueError):
    """Fetching would replace files in the destination that differ from the job's artifacts."""


def job_dir(settings: Settings, job_id: str) -> Path:
    return settings.artifacts_dir / validate_job_id(job_id)


def safe_join(base: Path, relative: str | os.PathLike) -> Path:
    """`base/relative`, refusing absolute paths, `..` and symlinks that lead outside `base`."""
    rel = Path(relative)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise UnsafePath(f"refused path {str(relative)!r}: must name something inside {base}, relative to it "
                         f"and without '..'")
    path = base / rel
    if not path.resolve().is_relative_to(base.resolve()):
        raise UnsafePath(f"refused path {str(relative)!r}: it resolves outside {base}")
    return path


def confined(base: Path | str, path: Path | str) -> Path:
    """`path` itself, once checked to lie inside `base` both as written and with symbolic links resolved
    (UnsafePath otherwise). Call it right before writing to `path`."""
    base, path = Path(base), Path(path)
    try:
        rel = path.relative_to(base)
    except ValueError:
        raise UnsafePath(f"refused path {str(path)!r}: it is not inside {base}") from None
    return safe_join(base, rel)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def publish(store: Store, settings: Settings, job_id: str, paths: list[Path]) -> None:
    """Record files of the job folder as artifacts (path relative to the folder, size, sha256)."""
    base = job_dir(settings, job_id)
    for path in paths:
        rel = Path(path).resolve().relative_to(base.resolve())
        safe_join(base, rel)
        store.record_artifact(job_id, rel.as_posix(), path.stat().st_size, sha256_of(path))


def fetch(store: Store, settings: Settings, job_id: str, dest: Path, *,
          force: bool = False) -> tuple[list[Path], list[Path]]:
    """Copy the job's recorded artifacts into `dest` (keeping their relative paths); returns (copied, already
    there and identical). Files that resolve outside the job folder, or would land outside `dest`, are refused.
    A file already in `dest` that differs from the artifact (by sha256) is never replaced silently:
    WouldOverwrite names them all before anything is copied, unless `force`. Something that is not a file
    where a file goes, or not a folder where a folder goes, is refused even with `force`, before any copy."""
    base = job_dir(settings, job_id)
    dest = Path(dest)
    pairs = []
    for art in store.artifacts(job_id):  # every path is checked before anything is copied
        src = safe_join(base, art.path)
        if src.is_symlink():
            raise UnsafePath(f"refused artifact {art.path!r}: it is a symbolic link")
        if not src.is_file():  # a folder, a FIFO or a device would not copy as a file (or would block)
            raise UnsafePath(f"refused artifact {art.path!r}: it is missing or not a regular file in {base}")
        pairs.append((src, safe_join(dest, art.path), art.sha256))
    _check_shapes(dest, [target for _, target, _ in pairs])
    matching = {target for _, target, sha in pairs if target.is_file() and sha256_of(target) == sha}  # hashed once
    if not force:
        differing = [target for _, target, _ in pairs if target.exists() and target not in matching]
        if differing:
            shown = ", ".join(str(t) for t in differing[:5]) + (f" and {len(differing) - 5} more"
                                                                 if len(differing) > 5 else "")
            raise WouldOverwrite(f"{len(differing)} file(s) in {dest} differ from the job's artifacts and would be "
                                 f"replaced: {shown}; use --force to replace them, or another --dest")
    copied, same = [], []
    for src, target, _ in pairs:
        if target in matching and not target.is_symlink():
            same.append(target)
            continue
        confined(dest, target)  # again right before writing: the folder may have changed meanwhile
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        copied.append(target)
    return copied, same


def _check_shapes(dest: Path, targets: list[Path]) -> None:
    """WouldOverwrite when a file of `dest` stands where a folder must be, or a folder where a file must go."""
    dest = Path(dest)
    blocked = set()
    for target in targets:
        if target.is_dir():
            blocked.add(f"{target} is a folder where the file {target.name} goes")
        for folder in (dest, *(dest / p for p in reversed(target.relative_to(dest).parents[:-1]))):
            if folder.exists() and not folder.is_dir():
                blocked.add(f"{folder} is a file where a folder must be")
                break
    if blocked:
        raise WouldOverwrite(f"cannot copy into {dest}: {'; '.join(sorted(blocked))}; move it away or choose "
                             "another --dest (--force replaces files only)")


def run_dir(base: Path, name: str) -> Path:
    """The folder of one run inside a job folder: `<job folder>/runs/<run name>` (not created here)."""
    return Path(base) / "runs" / name
