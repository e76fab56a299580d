"""Client functions behind `hw3-submit`: submit jobs, read them back, run local workers for the embedded mode."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from shared.models import FINISHED
from shared.settings import Settings, get_settings
from shared.store import Store


def get_store(settings: Settings | None = None) -> Store:
    return Store((settings or get_settings()).database_url)


def dispatch(task: str, calls: list[list]) -> None:
    """Send one message per argument list to the configured broker."""
    from worker.app import make_app

    app = make_app(get_settings())
    try:
        for args in calls:
            app.send_task(task, args=args)
    finally:
        app.close()


def submit_sweep(params: dict, store: Store | None = None) -> str:
    """Validate, create the job and its runs, dispatch one task per run; returns the job id."""
    from worker.sweep import plan_sweep

    store = store or get_store()
    normalised, runs = plan_sweep(params)
    job_id = store.create_job("sweep", normalised, runs)
    dispatch("hw3.sweep.train_run", [[run["run_id"]] for run in store.runs(job_id)])
    return job_id


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def worker_command(concurrency: int, name: str, loglevel: str = "WARNING") -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "worker.app", "worker", "--pool", "prefork",
            "--concurrency", str(concurrency), "--queues", "hw3", "--hostname", name,
            "--without-gossip", "--without-mingle", "--loglevel", loglevel]


def worker_env(concurrency: int) -> dict[str, str]:
    """Environment for a worker: BLAS threads per task × concurrent tasks ≤ cores."""
    env = dict(os.environ)
    env.setdefault("HW3_BLAS_THREADS", str(max(1, cores() // concurrency)))
    return env


@contextmanager
def local_workers(concurrency: int | None = None, settings: Settings | None = None) -> Iterator[subprocess.Popen]:
    """Start a worker process group for the duration of a command (the embedded default), stop it after."""
    settings = settings or get_settings()
    concurrency = concurrency or cores()
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / f"worker-{os.getpid()}.log", "ab")
    proc = subprocess.Popen(worker_command(concurrency, f"local-{os.getpid()}@%h"), env=worker_env(concurrency),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        stop_process_group(proc)
        log.close()


def stop_process_group(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """Warm shutdown (SIGTERM to the Celery main process: running tasks finish, the rest stay queued);
    past `timeout`, the whole group is killed."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def wait_for(job_id: str, store: Store, on_update: Callable[[dict], None] | None = None,
             interval: float = 0.5, worker: subprocess.Popen | None = None) -> dict:
    """Poll the job until it ends; `on_update` sees each status. Raises if the local worker died."""
    while True:
        status = store.job_status(job_id)
        if on_update:
            on_update(status)
        if status["state"] in FINISHED:
            return status
        if worker is not None and worker.poll() is not None:
            raise RuntimeError(f"the local worker exited with code {worker.returncode}; "
                               f"see {get_settings().data_dir / 'logs'}")
        time.sleep(interval)
