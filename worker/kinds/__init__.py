"""The registry of job kinds: name -> JobKind. The CLI, the client, the Celery tasks, `plot`, `report` and
`status` look kinds up here; none of them names one.

The built-in kinds are the modules of this package that define `KIND` (or `KINDS`, several): the homework's
four problems and grading. More are loaded from the modules named in HW3_KINDS (comma-separated); the
submitting command and the workers must see the same list. To add a kind: write a module with a `JobKind`
subclass (worker/kinds/base.py says what each method does) and `KIND = MyKind()`, and put it in this package
(nothing else to edit) or name it in HW3_KINDS.
"""
from __future__ import annotations

import importlib
import pkgutil

from worker.kinds.base import (JobCancelled, JobContext, JobFailed, JobKind, Option, Plan, RunContext,  # noqa: F401
                               RunSpec)

BUILTIN = tuple(f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if m.name != "base")

_registry: dict[str, JobKind] = {}
_loaded: set[str] = set()


class UnknownKind(LookupError):
    pass


def register(kind: JobKind) -> JobKind:
    if not kind.name:
        raise ValueError(f"{type(kind).__name__} has no name")
    _registry[kind.name] = kind
    return kind


def _load() -> None:
    from shared.settings import get_settings

    for module in (*BUILTIN, *get_settings().extra_kinds):
        if module in _loaded:
            continue
        try:
            loaded = importlib.import_module(module)
        except ImportError as exc:
            raise UnknownKind(f"cannot load the job kind module {module!r} (HW3_KINDS): {exc}") from exc
        found = getattr(loaded, "KINDS", None) or ((loaded.KIND,) if hasattr(loaded, "KIND") else ())
        if not found and module not in BUILTIN:  # a package module without kinds is a helper (keras.py)
            raise UnknownKind(f"cannot load the job kind module {module!r} (HW3_KINDS): it defines no KIND")
        for kind in found:
            register(kind)
        _loaded.add(module)


def all_kinds() -> dict[str, JobKind]:
    """Every registered kind by name, the homework's problems first in their order."""
    _load()
    return dict(sorted(_registry.items(), key=lambda item: (item[1].problem is None, item[1].problem or 0)))


def get(name: str) -> JobKind:
    kinds = all_kinds()
    if name not in kinds:
        raise UnknownKind(f"unknown job kind {name!r}; known: {', '.join(kinds)}")
    return kinds[name]
