"""Client functions behind `hw3-submit`: submit jobs, read them back, run local workers for the embedded mode."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from shared.entities import JobStatus
from shared.settings import Settings, available_cores, get_settings, masked_url, process_environment
from shared.store import Store


def get_store(settings: Settings | None = None, *, readonly: bool = False) -> Store:
    """The configured store. `readonly` (status, list, metrics, report): an existing database whose schema is
    behind is not migrated; SchemaBehind says to run `hw3-submit db upgrade`."""
    settings = settings or get_settings()
    store = Store(settings.database_url, lease_seconds=settings.lease_seconds,
                  migrate="check" if readonly else True)
    if store.created:
        print(f"hw3: created a new, empty store at {masked_url(store.url)} (HW3_DATA={settings.data_dir})",
              file=sys.stderr)
    return store


class BrokerUnavailable(RuntimeError):
    """The broker could not be reached or refused the client; the message names it with its password masked."""


# submitting gives up after a few seconds (a worker publishing its next task keeps trying for minutes)
DISPATCH_CONNECT = {"max_retries": 2, "interval_start": 0.5, "interval_step": 1.0, "interval_max": 2.0, "timeout": 10}
DISPATCH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.5, "interval_step": 1.0, "interval_max": 2.0}


def _broker_failure(url: str, exc: BaseException) -> BrokerUnavailable:
    """One line naming the broker (password masked) and the reason; the password never appears in it."""
    from urllib.parse import urlsplit

    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in chain:
        chain.append(e)
        e = e.__cause__ or e.__context__
    reason = " ".join(str(exc).split()) or type(exc).__name__
    password = urlsplit(url).password
    if password:
        reason = reason.replace(password, "***")
    if any("Authentication" in type(e).__name__ for e in chain):  # redis-py's AuthenticationError and kin
        reason = f"authentication failed ({reason})"
    return BrokerUnavailable(f"cannot send the job to the broker {masked_url(url)}: {reason}")


def dispatch(task: str, calls: list[list]) -> None:
    """Send one message per argument list to the configured broker. A broker that cannot be reached, or that
    refuses the credentials, raises BrokerUnavailable within seconds."""
    from kombu.exceptions import OperationalError

    from worker.app import make_app

    settings = get_settings()
    url = settings.effective_broker_url
    app = make_app(settings)
    try:
        with app.connection_for_write() as conn:
            failures = (OperationalError, OSError, *conn.connection_errors)
            try:
                conn.ensure_connection(**DISPATCH_CONNECT)
                for args in calls:
                    app.send_task(task, args=args, connection=conn, retry_policy=DISPATCH_RETRY_POLICY)
            except failures as exc:
                raise _broker_failure(url, exc) from None
    finally:
        app.close()


def plan(kind: str, params: dict):
    """Validate a job's parameters through its kind (ValueError naming what is wrong); nothing is created."""
    from worker import kinds

    return kinds.get(kind).plan(params)


def submit(kind: str, params: dict, store: Store | None = None, *, job_plan=None) -> str:
    """Validate, create the job and its runs, dispatch one task per run; returns the job id. `params`: the
    kind's options (None: its default) and `datasets`, the folder with the input files as the workers see it
    (default: the worker's HW3_DATASETS). `job_plan`: the kind's plan of these params, when already made."""
    from worker.app import TRAIN_TASK

    store = store or get_store()
    job_plan = job_plan or plan(kind, params)
    job_id = store.create_job(kind, job_plan.params, [r.as_row() for r in job_plan.runs])
    try:
        dispatch(TRAIN_TASK, [[run.run_id] for run in store.runs(job_id)])
    except BrokerUnavailable as exc:  # the job is failed with the reason, never left queued
        store.abandon_job(job_id, str(exc))
        raise
    return job_id


def worker_command(concurrency: int, name: str, loglevel: str = "WARNING") -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "worker.app", "worker", "--pool", "prefork",
            "--concurrency", str(concurrency), "--queues", "hw3", "--hostname", name,
            "--without-gossip", "--without-mingle", "--loglevel", loglevel]


def worker_env(concurrency: int) -> dict[str, str]:
    """Environment for a worker: BLAS threads per task × concurrent tasks ≤ cores."""
    env = process_environment()
    env.setdefault("HW3_BLAS_THREADS", str(max(1, available_cores() // concurrency)))
    return env


@contextmanager
def local_workers(concurrency: int | None = None, settings: Settings | None = None) -> Iterator[subprocess.Popen]:
    """Start a worker process group for the duration of a command (the embedded default), stop it after."""
    settings = settings or get_settings()
    concurrency = concurrency or available_cores()
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / f"worker-{os.getpid()}.log", "ab")
    proc = subprocess.Popen(worker_command(concurrency, f"local-{os.getpid()}@%h"), env=worker_env(concurrency),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_stop_with_parent)
    try:
        yield proc
    finally:
        stop_process_group(proc)
        log.close()


def _stop_with_parent() -> None:
    """In the child before exec: ask Linux to send SIGTERM if the submitting command dies (even by SIGKILL),
    so embedded-mode workers never outlive it."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except OSError:
        pass


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


def wait_for(job_ids: list[str], store: Store, on_update: Callable[[list[JobStatus]], None] | None = None,
             interval: float = 0.5, worker: subprocess.Popen | None = None) -> list[JobStatus]:
    """Poll the jobs until all have ended; `on_update` sees their statuses. Raises if the local worker died."""
    while True:
        statuses = [store.job_status(j) for j in job_ids]
        if on_update:
            on_update(statuses)
        if all(s.finished for s in statuses):
            return statuses
        if worker is not None and worker.poll() is not None:
            raise RuntimeError(f"the local worker exited with code {worker.returncode}; "
                               f"see {get_settings().data_dir / 'logs'}")
        time.sleep(interval)
