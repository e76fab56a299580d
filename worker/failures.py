"""How a run's failure is worded in the store: the exception's type and message, made specific where the
exception itself says little (a time limit)."""
from __future__ import annotations

from celery.exceptions import SoftTimeLimitExceeded

from shared.settings import get_settings


def describe(exc: BaseException) -> str:
    if isinstance(exc, SoftTimeLimitExceeded):
        settings = get_settings()
        return (f"TimeLimitExceeded: the task ran past its soft time limit of {settings.soft_time_limit} s "
                f"(HW3_TASK_TIME_LIMIT={settings.task_time_limit} s); the epochs recorded so far are kept")
    return f"{type(exc).__name__}: {exc}"
