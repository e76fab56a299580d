"""What the service benchmarks share: a real redis-server and a real `hw3-submit worker` on a scratch volume,
with the client in this process pointed at them."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@contextmanager
def redis_and_worker(data: Path, datasets: Path, concurrency: int, extra_env: dict | None = None
                     ) -> Iterator[tuple[object, subprocess.Popen]]:
    """Start redis-server and a worker with `concurrency` pool processes on the volume `data`; yield the store
    and the worker's process once every pool process is up. Stops both afterwards."""
    from shared.settings import process_environment

    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
                             stdout=subprocess.DEVNULL)
    env = {**process_environment(), "HW3_DATA": str(data), "HW3_DATASETS": str(datasets),
           "CELERY_BROKER_URL": f"redis://127.0.0.1:{port}/0", **(extra_env or {})}
    env.pop("DATABASE_URL", None)
    os.environ.update({k: env[k] for k in ("HW3_DATA", "HW3_DATASETS", "CELERY_BROKER_URL")})  # for the client
    from shared.store import Store

    store = Store(f"sqlite:///{data}/hw3.sqlite")
    worker = subprocess.Popen([sys.executable, "-m", "api.cli", "worker", "-c", str(concurrency),
                               "--loglevel", "WARNING"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                              stderr=open(data / "worker.log", "w"))
    try:
        time.sleep(1.0)
        while len(children(worker.pid)) < concurrency:  # pool processes forked and ready
            time.sleep(0.2)
        time.sleep(2.0)
        yield store, worker
    finally:
        worker.terminate()
        worker.wait(60)
        redis.terminate()
        store.dispose()
