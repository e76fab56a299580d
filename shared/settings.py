"""One settings object, read from the environment (12-factor).

HW3_DATA           the volume: database, artifacts/<job_id>/, the embedded broker's file
                   (default: data/ of the project folder when hw3 runs from a source checkout, else the user's
                   data folder, $XDG_DATA_HOME/hw3 or ~/.local/share/hw3; never the current folder)
HW3_DATASETS       where input files are looked for                                       (default $HW3_DATA/datasets)
CELERY_BROKER_URL  unset => embedded SQLite broker under HW3_DATA; redis://... => Redis
DATABASE_URL       unset => sqlite:///$HW3_DATA/hw3.sqlite; any SQLAlchemy URL otherwise
HW3_TASK_TIME_LIMIT  hard time limit of one task, seconds (default 6 hours); the soft limit, which fails the
                   run with a clear message, comes a little earlier (a tenth of it, at most 60 s)
HW3_LEASE_SECONDS  a running run whose worker has not written a heartbeat for this long is presumed lost and
                   is queued again (default 120; heartbeats every quarter of it)
HW3_MAX_ATTEMPTS   a run lost this many times is failed instead of queued again (default 3)
HW3_BLAS_THREADS   BLAS / TensorFlow threads of one Keras task on a worker (set by `hw3-submit worker`: its
                   cores divided by its concurrency; default 1). The sweep's runs use the thread count recorded
                   with the job instead, so that their numbers do not depend on the worker.
HW3_KINDS          extra job-kind modules to load, comma-separated (e.g. `mypackage.mykind`); each defines KIND

This module is the only one that reads the environment.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    datasets_dir: Path
    broker_url: str | None
    database_url: str
    task_time_limit: int
    lease_seconds: float = 120.0
    max_attempts: int = 3
    blas_threads: int = 1
    extra_kinds: tuple[str, ...] = ()
    data_dir_given: bool = False  # HW3_DATA was set (not the default folder)
    datasets_dir_given: bool = False  # HW3_DATASETS was set (not $HW3_DATA/datasets)

    @property
    def heartbeat_seconds(self) -> float:
        """How often a running task renews its lease, and how often workers look for lost runs."""
        return max(self.lease_seconds / 4, 0.25)

    @property
    def soft_time_limit(self) -> int:
        return self.task_time_limit - min(60, max(1, self.task_time_limit // 10))

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def embedded(self) -> bool:
        """True when no broker is configured: the SQLite broker and local workers are used."""
        return self.broker_url is None

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{(self.data_dir / 'broker.sqlite').resolve()}"

    def job_datasets_dir(self, params: dict) -> Path:
        """The folder a job reads its input files from: its --datasets, else HW3_DATASETS."""
        return Path(params["datasets"]) if params.get("datasets") else self.datasets_dir


def masked_url(url: str) -> str:
    """`url` with its password, if it has one, replaced by *** (for messages and logs)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def available_cores() -> int:
    """CPU cores this process may run on (the affinity mask, e.g. a container's cpuset)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


PROJECT_DIR = Path(__file__).resolve().parents[1]


def default_data_dir(env) -> Path:
    """Where data lives when HW3_DATA is unset: the project's data/ folder in a source checkout (where the
    README's commands run), otherwise the platform's per-user data folder. Never the current folder, so a
    command run from elsewhere finds the same store."""
    if (PROJECT_DIR / "pyproject.toml").is_file() and (PROJECT_DIR / "data").is_dir():
        return PROJECT_DIR / "data"
    return Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "hw3"


def _absolute(path) -> Path:
    """An absolute, normalised path (`a/../b` is `b`) whose symbolic links are kept, as `--datasets` is read."""
    return Path(os.path.abspath(os.path.expanduser(path)))


def get_settings(env: dict[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    data_dir = _absolute(env.get("HW3_DATA") or default_data_dir(env))
    datasets_dir = _absolute(env.get("HW3_DATASETS") or data_dir / "datasets")
    database_url = env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'hw3.sqlite'}"
    return Settings(
        data_dir=data_dir,
        datasets_dir=datasets_dir,
        broker_url=env.get("CELERY_BROKER_URL") or None,
        database_url=database_url,
        task_time_limit=_number(env, "HW3_TASK_TIME_LIMIT", int, 6 * 3600, 2),
        lease_seconds=_number(env, "HW3_LEASE_SECONDS", float, 120.0, 1.0),
        max_attempts=_number(env, "HW3_MAX_ATTEMPTS", int, 3, 1),
        blas_threads=_number(env, "HW3_BLAS_THREADS", int, 1, 1),
        extra_kinds=tuple(m.strip() for m in env.get("HW3_KINDS", "").split(",") if m.strip()),
        data_dir_given=bool(env.get("HW3_DATA")),
        datasets_dir_given=bool(env.get("HW3_DATASETS")),
    )


def process_environment() -> dict[str, str]:
    """A copy of this process's environment, for starting child processes (workers) with a few changes."""
    return dict(os.environ)


def _number(env, name: str, kind, default, minimum):
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or value != value or value < minimum:
        raise ValueError(f"{name}={raw!r}: expected {'an integer' if kind is int else 'a number'} >= {minimum}")
    return value
