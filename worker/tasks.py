"""The Celery tasks: two, for every job kind. Each takes an id, holds the lease while it works, and calls plain
functions (worker/jobs.py); the kind's own code is found through the registry (worker/kinds/)."""
from __future__ import annotations

import logging
import os
from functools import lru_cache

from celery.signals import worker_process_init, worker_ready, worker_shutdown

from shared.settings import get_settings
from shared.store import LeaseLost, RunBusy, Store
from worker import failures, jobs, kinds, leases
from worker.app import FINALIZE_TASK, TRAIN_TASK, app

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _store_for(pid: int, url: str, lease_seconds: float) -> Store:  # one engine per process: no fork sharing
    return Store(url, lease_seconds=lease_seconds)


def store() -> Store:
    settings = get_settings()
    return _store_for(os.getpid(), settings.database_url, settings.lease_seconds)


@app.task(name=TRAIN_TASK, bind=True)
def train_run(self, run_id: int) -> None:
    """Train one run; the last run of a job to end dispatches the job's finalize task."""
    st, worker = store(), self.request.hostname
    try:
        with leases.holding_run(st, run_id, worker):
            last = jobs.train_run(st, get_settings(), run_id, worker)
    except RunBusy as exc:
        log.info("duplicate delivery ignored: %s", exc)
        return
    except Exception as exc:  # a fault outside the run's own error handling: the run fails, the worker goes on
        log.exception("run %s failed outside its training loop", run_id)
        try:
            job_id = st.run_info(run_id).job_id
            # refused if the run had ended; LeaseLost if another attempt has it now
            st.finish_run(run_id, "failed", error=failures.describe(exc), holder=(worker, os.getpid()))
            last = st.claim_finalize(job_id)
        except (LookupError, LeaseLost):
            return
    if last:
        finalize_job.delay(st.run_info(run_id).job_id)


@app.task(name=FINALIZE_TASK, bind=True)
def finalize_job(self, job_id: str) -> None:
    """End a job whose runs have all ended: the kind's finalize step, figures, report, end state."""
    st = store()
    try:
        jobs.finalize(st, get_settings(), job_id, self.request.hostname, holding=leases.holding_finalize)
    except RunBusy as exc:
        log.info("duplicate delivery ignored: %s", exc)
    except Exception as exc:  # the job must not stay running forever
        log.exception("finalizing job %s failed", job_id)
        st.finish_job(job_id, "failed", error=f"finalizing: {failures.describe(exc)}")  # refused if it had ended


@worker_process_init.connect
def _warm_up(**_) -> None:
    """As a pool process starts: open the store and let each kind read what it reads on every task (the sweep:
    the MNIST training file, if it is there), so that the first task's first epoch is not delayed. Nothing is
    downloaded and TensorFlow is not imported; a missing or bad file is reported by the task that needs it."""
    settings = get_settings()
    store()
    for kind in kinds.all_kinds().values():
        try:
            kind.warm_up(settings)
        except Exception:
            log.info("warming up %s failed; its tasks will report why", kind.name, exc_info=True)


@worker_ready.connect
def _start_lost_run_check(sender=None, **_) -> None:
    leases.start_lost_run_check(getattr(sender, "hostname", None))  # sender: the worker's consumer


@worker_shutdown.connect
def _stop_lost_run_check(**_) -> None:
    leases.stop_lost_run_check()
