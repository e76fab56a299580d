"""Thin Celery tasks: load inputs, call plain Python (worker.sweep, worker.keras_jobs), let the store record results.

Leases: while a task trains a run, a thread renews the run's heartbeat (every quarter of HW3_LEASE_SECONDS).
Every worker's main process checks for runs whose heartbeat went stale — their worker was killed, or its host
vanished — and queues them again; they resume from their last epoch checkpoint (see `Store.requeue_stale`).
"""
from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from functools import lru_cache
from typing import Callable, Iterator

from celery.signals import worker_process_init, worker_ready, worker_shutdown

from shared import datasets
from shared.models import FINISHED
from shared.settings import available_cores, get_settings
from shared.store import RunBusy, Store
from worker import failures, keras_jobs, sweep
from worker.app import app, make_app

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _store_for(pid: int, url: str, lease_seconds: float) -> Store:  # one engine per process: no fork sharing
    return Store(url, lease_seconds=lease_seconds)


def store() -> Store:
    settings = get_settings()
    return _store_for(os.getpid(), settings.database_url, settings.lease_seconds)


@contextmanager
def leased(run: int | Callable[[], int | None], worker: str) -> Iterator[None]:
    """Renew a run's heartbeat from a thread for as long as the task works on it. `run`: its id, or a function
    returning the id once the run exists (the sweep's final retrain is created by the task itself)."""
    stop = threading.Event()
    interval = get_settings().heartbeat_seconds

    def beat() -> None:
        run_id = run if isinstance(run, int) else None
        held = False
        while not stop.wait(interval):
            try:
                run_id = run_id if run_id is not None else run()
                if run_id is None:
                    continue
                if store().heartbeat(run_id, worker):
                    held = True
                elif held or isinstance(run, int):
                    return  # ended, or no longer ours
            except Exception:  # a database hiccup: try again at the next beat
                log.warning("heartbeat of run %s failed", run_id, exc_info=True)

    thread = threading.Thread(target=beat, name="hw3-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@worker_process_init.connect
def _warm_up(**_) -> None:
    """Open the store and read the MNIST training file as a pool process starts, so that the first task's
    first epoch is not delayed by them (a missing or bad file is reported by the task that needs it)."""
    settings = get_settings()
    store()
    if (settings.datasets_dir / datasets.MNIST_TRAIN_FILE).is_file():
        try:
            sweep.mnist_train_file(str(settings.datasets_dir))
        except datasets.DatasetError:
            pass


def _train(task, run_id: int, train_fn, finalize_task) -> None:
    """Run `train_fn` under the run's lease; dispatch the job's final task when this run was its last."""
    st, worker = store(), task.request.hostname
    try:
        with leased(run_id, worker):
            last = train_fn(st, get_settings(), run_id, worker, sweep.default_threads())
    except RunBusy as exc:
        log.info("duplicate delivery ignored: %s", exc)
        return
    except Exception as exc:  # a fault outside the run's own error handling: the run fails, the worker goes on
        log.exception("run %s failed outside its training loop", run_id)
        try:
            st.finish_run(run_id, "failed", error=failures.describe(exc))
            last = st.claim_finalize(st.run_info(run_id)["job_id"])
        except LookupError:
            return
    if last:
        finalize_task.delay(st.run_info(run_id)["job_id"])


def _finalize(job_id: str, fn) -> None:
    try:
        fn()
    except RunBusy as exc:
        log.info("duplicate delivery ignored: %s", exc)
    except Exception as exc:  # the job must not stay running forever
        log.exception("finalizing job %s failed", job_id)
        if store().job_status(job_id)["state"] not in FINISHED:
            store().finish_job(job_id, "failed", error=f"finalizing: {failures.describe(exc)}")


@app.task(name="hw3.sweep.train_run", bind=True)
def train_sweep_run(self, run_id: int) -> None:
    _train(self, run_id, sweep.train_run, finalize_sweep)


@app.task(name="hw3.sweep.finalize", bind=True)
def finalize_sweep(self, job_id: str) -> None:
    # the retrain runs alone once the sweep has drained: give it every core unless this host is still busy
    worker = self.request.hostname
    threads = available_cores() if store().running_on(worker) == 0 else sweep.default_threads()

    def run() -> None:
        with leased(lambda: store().run_id(job_id, "final"), worker):
            sweep.finalize(store(), get_settings(), job_id, worker, threads)

    _finalize(job_id, run)


@app.task(name="hw3.keras.train_run", bind=True)
def train_keras_run(self, run_id: int) -> None:
    _train(self, run_id, keras_jobs.train_run, finalize_keras)


@app.task(name="hw3.keras.finalize")
def finalize_keras(job_id: str) -> None:
    _finalize(job_id, lambda: keras_jobs.finalize(store(), get_settings(), job_id))


# -- the lost-run check, in every worker's main process ---------------------------------------------------------
TRAIN_FOR = {"sweep": train_sweep_run}  # by job kind; every other kind is a Keras job
FINALIZE_FOR = {"sweep": finalize_sweep}
_reaper_stop = threading.Event()


def requeue_lost_runs(st: Store, max_attempts: int, send) -> list[dict]:
    """Queue again (or fail, past max_attempts) the runs whose worker went silent; `send(task, args)` dispatches.
    A run failed this way may have been its job's last pending one: its job is then finalized. A run whose job
    had already ended is only closed: nothing is sent for it."""
    changed = st.requeue_stale(max_attempts)
    for c in changed:
        finalize = FINALIZE_FOR.get(c["kind"], finalize_keras).name
        if c["job_ended"]:
            pass  # only closed: its job has been finalized already
        elif c["role"] == "final":  # the sweep's retrain is resumed by its job's finalize task
            send(finalize, [c["job_id"]])
        elif c["state"] == "queued":
            send(TRAIN_FOR.get(c["kind"], train_keras_run).name, [c["run_id"]])
        elif st.claim_finalize(c["job_id"]):
            send(finalize, [c["job_id"]])
        log.warning("run %s of job %s: its worker %s went silent; %s", c["run_id"], c["job_id"], c["worker"],
                    "queued again" if c["state"] == "queued" else c["state"])
    return changed


def _reaper_loop() -> None:
    settings = get_settings()
    st = Store(settings.database_url, lease_seconds=settings.lease_seconds, migrate=False)
    sender = make_app(settings)
    interval = settings.heartbeat_seconds
    try:
        while not _reaper_stop.wait(interval):
            try:
                requeue_lost_runs(st, settings.max_attempts, lambda task, args: sender.send_task(task, args=args))
            except Exception:  # the database or broker is down for a moment: check again later
                log.warning("lost-run check failed", exc_info=True)
    finally:
        sender.close()
        st.dispose()


@worker_ready.connect
def _start_reaper(**_) -> None:
    threading.Thread(target=_reaper_loop, name="hw3-lost-run-check", daemon=True).start()


@worker_shutdown.connect
def _stop_reaper(**_) -> None:
    _reaper_stop.set()
