"""The registry of job kinds: name -> JobKind. The CLI, the client, the Celery tasks, `plot`, `report` and
`status` look kinds up here; none of them names one.

The built-in kinds are the homework's four problems. More are loaded from the modules named in HW3_KINDS
(comma-separated), each defining `KIND`; the submitting command and the workers must see the same list.
To add a kind: write a module with a `JobKind` subclass (worker/kinds/base.py says what each method does)
and `KIND = MyKind()`, then either list it in BUILTIN or name it in HW3_KINDS.
"""
from __future__ import annotations

import importlib

from worker.kinds.base import (JobCancelled, JobContext, JobFailed, JobKind, Option, Plan, RunContext,  # noqa: F401
                               RunSpec)

BUILTIN = ("worker.kinds.sweep", "worker.kinds.confusion", "worker.kinds.regularization",
           "worker.kinds.human_machine")

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
            kind = importlib.import_module(module).KIND
        except (ImportError, AttributeError) as exc:
            raise UnknownKind(f"cannot load the job kind module {module!r} (HW3_KINDS): {exc}") from exc
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
