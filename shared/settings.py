"""One settings object, read from the environment (12-factor).

HW3_DATA           the volume: database, artifacts/<job_id>/, the embedded broker's file   (default ./data)
HW3_DATASETS       where input files are looked for                                       (default $HW3_DATA/datasets)
CELERY_BROKER_URL  unset => embedded SQLite broker under HW3_DATA; redis://... => Redis
DATABASE_URL       unset => sqlite:///$HW3_DATA/hw3.sqlite; any SQLAlchemy URL otherwise
HW3_TASK_TIME_LIMIT  hard time limit of one task, seconds (default 6 hours)
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

    def job_dir(self, job_id: str) -> Path:
        return self.artifacts_dir / job_id


def available_cores() -> int:
    """CPU cores this process may run on (the affinity mask, e.g. a container's cpuset)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def get_settings(env: dict[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    data_dir = Path(env.get("HW3_DATA") or "./data").expanduser().absolute()
    datasets_dir = Path(env.get("HW3_DATASETS") or data_dir / "datasets").expanduser().absolute()
    database_url = env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'hw3.sqlite'}"
    return Settings(
        data_dir=data_dir,
        datasets_dir=datasets_dir,
        broker_url=env.get("CELERY_BROKER_URL") or None,
        database_url=database_url,
        task_time_limit=int(env.get("HW3_TASK_TIME_LIMIT") or 6 * 3600),
    )
