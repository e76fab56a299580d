"""Client functions behind `hw3-submit`: submit jobs, read them back, run local workers for the embedded mode."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
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
    """Validate a job's parameters through its kind, then check the input files it will read (ValueError naming
    what is wrong; shared.datasets.DatasetError is one); nothing is created.

    The folder is params' `datasets` (a relative path is taken from the current folder), else HW3_DATASETS. In
    the embedded mode the workers are this machine's: the folder is always checked, and recorded with the job
    when not given. With an external broker the workers may see another folder: the folder is checked only if it
    exists here and was named, by --datasets or by this machine's HW3_DATASETS; the default $HW3_DATA/datasets is
    not checked (e.g. the host's data/datasets beside a compose stack is not the workers' folder). Without
    --datasets the job is left to the workers' HW3_DATASETS."""
    from worker import kinds

    settings = get_settings()
    job_kind = kinds.get(kind)
    if settings.embedded and params.get("datasets") is None:
        params = {**params, "datasets": str(settings.datasets_dir)}
    job_plan = job_kind.plan(params)
    named = job_plan.params.get("datasets") or (settings.datasets_dir if settings.datasets_dir_given else None)
    if settings.embedded or (named is not None and Path(named).exists()):
        job_kind.check_inputs(job_plan.params, settings)
    return job_plan


def submit(kind: str, params: dict, store: Store | None = None, *, job_plan=None) -> str:
    """Validate, create the job and its runs, dispatch one task per run; returns the job id. `params`: the
    kind's options (None: its default) and `datasets`, the folder with the input files as the workers see it
    (default: the worker's HW3_DATASETS). `job_plan`: the kind's plan of these params, when already made."""
    from worker.app import TRAIN_TASK

    from shared.artifacts import job_dir
    from worker import kinds

    store = store or get_store()
    job_plan = job_plan or plan(kind, params)
    job_id = store.create_job(kind, job_plan.params, [r.as_row() for r in job_plan.runs])
    try:
        kinds.get(kind).stage(job_id, job_plan, job_dir(get_settings(), job_id))
    except Exception as exc:  # e.g. the volume is full: the job fails with the reason, nothing is queued
        store.abandon_job(job_id, f"staging the job's files: {type(exc).__name__}: {exc}")
        raise
    try:
        dispatch(TRAIN_TASK, [[run.run_id] for run in store.runs(job_id)])
    except BrokerUnavailable as exc:  # the job is failed with the reason, never left queued
        store.abandon_job(job_id, str(exc))
        raise
    return job_id


def resume(job_id: str, store: Store | None = None) -> str:
    """Continue an interrupted, failed or cancelled job (`Store.reopen_job`): its unfinished runs are queued
    again and continue from their checkpoints, or its finalize step is dispatched when no parallel run is left
    to train. Returns the job id. JobNotResumable when there is nothing to resume; if the broker cannot be
    reached the job is marked interrupted again (BrokerUnavailable), to be resumed later."""
    from worker.app import FINALIZE_TASK, TRAIN_TASK

    store = store or get_store()
    run_ids = store.reopen_job(job_id)
    try:
        if run_ids:
            dispatch(TRAIN_TASK, [[run_id] for run_id in run_ids])
        if store.claim_finalize(job_id):
            dispatch(FINALIZE_TASK, [[job_id]])
    except BrokerUnavailable:
        store.interrupt_job(job_id)
        raise
    return job_id


def interrupt(job_ids: list[str], store: Store, settings: Settings | None = None) -> list[str]:
    """Ctrl-C in the embedded mode, once the local workers are gone: mark the jobs interrupted and delete
    their messages from the embedded broker. Returns the jobs that were marked (not those already ended)."""
    settings = settings or get_settings()
    marked = [j for j in job_ids if store.interrupt_job(j)]
    purge_embedded(job_ids, store, settings)
    _remove_partial_files(job_ids, settings)
    return marked


def _remove_partial_files(job_ids: list[str], settings: Settings) -> None:
    """A process killed while writing a checkpoint leaves its temporary file (`checkpoint.npz.tmp-PID`, see
    worker/engine/model.py): nobody will finish it, and it must not be published with the job's artifacts."""
    from shared.artifacts import job_dir

    for job_id in job_ids:
        for path in job_dir(settings, job_id).glob("runs/*/*.tmp-*"):
            path.unlink(missing_ok=True)


def purge_embedded(job_ids: list[str], store: Store, settings: Settings | None = None) -> int:
    """Delete every message of these jobs from the embedded broker, queued or delivered, so that no later
    command's workers pick them up; other jobs' messages stay (two embedded commands may share the broker file).
    Kombu's SQLAlchemy transport keeps each message as a row of its message table (delivered ones too, marked
    invisible), with the Celery task name in its headers and the task's arguments in its base64 body: a train
    task names a run id, a finalize task a job id. Returns how many were deleted."""
    from worker.app import FINALIZE_TASK, TRAIN_TASK, make_app

    settings = settings or get_settings()
    if not settings.embedded:
        raise ValueError("only the embedded broker's messages can be purged by job")
    ours = {(TRAIN_TASK, r.run_id) for j in job_ids for r in store.runs(j)} | {(FINALIZE_TASK, j) for j in job_ids}
    app = make_app(settings)
    try:
        with app.connection_for_write() as conn:
            channel = conn.default_channel  # a kombu.transport.sqlalchemy Channel: its session and model
            message = channel.message_cls
            doomed = [m.id for m in channel.session.query(message.id, message.payload)
                      if _task_and_first_arg(m.payload) in ours]
            if doomed:
                channel.session.query(message).filter(message.id.in_(doomed)).delete(synchronize_session=False)
            channel.session.commit()
            return len(doomed)
    finally:
        app.close()


def _task_and_first_arg(payload: str) -> tuple[str, object] | None:
    """(task name, first positional argument) of a Celery message stored by Kombu's virtual transport."""
    import base64
    import json

    try:
        message = json.loads(payload)
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]  # Celery's message protocol 2: [args, kwargs, embed]
        return message["headers"]["task"], args[0] if args else None
    except (ValueError, KeyError, IndexError, TypeError):
        return None


@contextmanager
def sigint_held(reraise: bool = True) -> Iterator[None]:
    """Ctrl-C inside the block does not cut it short: with `reraise`, it takes effect (KeyboardInterrupt) as
    the block ends; otherwise it is ignored. For steps that must not stop half-way: submitting a job (created
    and sent), stopping after an interrupt. Only in the main thread (elsewhere, the block runs unchanged)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pressed: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda *_: pressed.append(1))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pressed and reraise:
        raise KeyboardInterrupt


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
    """Start a worker process group for the duration of a command (the embedded default), stop it after: a warm
    shutdown when the block ends, or the whole group killed at once on Ctrl-C (KeyboardInterrupt, re-raised
    once every process of the group is gone; the runs it was training continue from their last checkpoint
    when resumed)."""
    settings = settings or get_settings()
    concurrency = concurrency or available_cores()
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / f"worker-{os.getpid()}.log", "ab")
    name = f"local-{os.getpid()}@{socket.gethostname()}"  # what Celery's %h would give
    proc = subprocess.Popen(worker_command(concurrency, name), env=worker_env(concurrency),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_stop_with_parent)
    try:
        yield proc
    except KeyboardInterrupt:
        with sigint_held(reraise=False):
            stop_process_group(proc, timeout=0)
            _forget_worker(name, settings)
        raise
    finally:
        stop_process_group(proc)  # nothing left to do after a Ctrl-C: the group is gone
        log.close()


def _forget_worker(name: str, settings: Settings) -> None:
    """A killed worker cannot say it stopped: say it for it, so that `status` does not count it alive."""
    try:
        store = get_store(settings)
        store.worker_stopped(name)
        store.dispose()
    except Exception:  # only a status nicety; the lease ends its "alive" anyway
        pass


def _stop_with_parent() -> None:
    """In the child before exec: ask Linux to send SIGTERM if the submitting command dies (even by SIGKILL),
    so embedded-mode workers never outlive it."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except OSError:
        pass


def stop_process_group(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """Stop the process group `proc` leads (started with start_new_session) and return once every process of
    it is gone. timeout > 0: a warm shutdown first (SIGTERM to the Celery main process: running tasks finish,
    the rest stay queued), the group killed past `timeout` or if anything outlived its leader; timeout 0: the
    whole group killed at once."""
    if timeout > 0 and proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            pass
    _kill_group(proc.pid)
    proc.wait()
    deadline = time.monotonic() + 10
    while group_members(proc.pid) and time.monotonic() < deadline:  # pool processes die after their leader
        _kill_group(proc.pid)
        time.sleep(0.02)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def group_members(pgid: int) -> list[int]:
    """Live processes (zombies excluded: a reaped-later orphan is gone for every purpose) of process group
    `pgid`, from /proc; where there is no /proc, whether a signal can still reach the group."""
    if not os.path.isdir("/proc/self"):
        try:
            os.killpg(pgid, 0)
            return [pgid]
        except (ProcessLookupError, PermissionError):
            return []
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry))
    return members


def wait_for(job_ids: list[str], store: Store, on_update: Callable[[list[JobStatus]], None] | None = None,
             interval: float = 0.5, worker: subprocess.Popen | None = None) -> list[JobStatus]:
    """Poll the jobs until all have ended (succeeded, failed, cancelled or interrupted); `on_update` sees their
    statuses. Raises if the local worker died. Ctrl-C raises KeyboardInterrupt: the caller decides what it
    means (embedded mode: interrupt the jobs; an external broker: detach, the jobs go on)."""
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
