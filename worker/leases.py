"""Leases: how the service notices a worker that died or went silent, and gives its work to another.

- While a task trains a run, a thread renews the run's heartbeat every quarter of HW3_LEASE_SECONDS
  (`holding_run`). While a task finalizes a job, the same is done for the job's finalize step and any run the
  step trains itself, the sweep's retrain (`holding_finalize`).
- Every worker's main process checks for leases that went stale (`lost_run_check`): runs go back to the queue
  (they resume from their last epoch checkpoint) or, past HW3_MAX_ATTEMPTS, fail; a finalize step whose worker
  died is dispatched again. An attempt that lost its lease finds out at its next epoch boundary: the store
  refuses its row (LeaseLost), and it stops without writing anything more.
- The same loop reports the worker alive (the `workers` table), so that `status` can tell a job that waits for
  a worker from one that is training.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from shared.entities import LostRun
from shared.settings import get_settings
from shared.store import Store
from worker.app import FINALIZE_TASK, TRAIN_TASK
from worker.kinds.base import JobContext

log = logging.getLogger(__name__)


@contextmanager
def renewing(renew: Callable[[], bool], what: str) -> Iterator[None]:
    """Call `renew` from a thread every heartbeat interval while the block runs; once it has returned True, stop
    renewing when it returns False (the lease ended or was taken over). A database hiccup is retried at the
    next beat."""
    stop = threading.Event()

    def beat() -> None:
        held = False
        while not stop.wait(get_settings().heartbeat_seconds):
            try:
                if renew():
                    held = True
                elif held:
                    return
            except Exception:
                log.warning("heartbeat of %s failed", what, exc_info=True)

    thread = threading.Thread(target=beat, name="hw3-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def holding_run(store: Store, run_id: int, worker: str) -> contextmanager:
    pid = os.getpid()
    return renewing(lambda: store.heartbeat(run_id, worker, pid), f"run {run_id}")


def holding_finalize(ctx: JobContext):
    """Renew the finalize lease of `ctx.job`, and the leases of the runs the finalize step holds."""
    def renew() -> bool:
        held = ctx.store.heartbeat_finalize(ctx.job.job_id, ctx.worker, ctx.pid)
        for run_id in list(ctx.held_runs):
            if not ctx.store.heartbeat(run_id, ctx.worker, ctx.pid):
                ctx.held_runs.discard(run_id)
        return held or bool(ctx.held_runs)

    return renewing(renew, f"finalizing job {ctx.job.job_id}")


def requeue_lost_runs(st: Store, max_attempts: int, send: Callable[[str, list], None]) -> list[LostRun]:
    """Queue again (or fail, past max_attempts) the runs whose worker went silent, and dispatch again the
    finalize steps whose worker went silent; `send(task_name, args)` dispatches. A run failed this way may
    have been its job's last pending one: its job is then finalized. A run whose job had already ended is
    only closed: nothing is sent for it."""
    changed = st.requeue_stale(max_attempts)
    finalizing: set[str] = set()  # jobs whose finalize step this pass has sent
    for c in changed:
        if c.job_ended:
            pass  # only closed: its job has been finalized already
        elif c.role == "final":  # the sweep's retrain is resumed by its job's finalize step
            finalizing.add(c.job_id)
            send(FINALIZE_TASK, [c.job_id])
        elif c.state == "queued":
            send(TRAIN_TASK, [c.run_id])
        elif st.claim_finalize(c.job_id):
            finalizing.add(c.job_id)
            send(FINALIZE_TASK, [c.job_id])
        log.warning("run %s of job %s: its worker %s went silent; %s", c.run_id, c.job_id, c.worker,
                    "queued again" if c.state == "queued" else c.state)
    for job_id, _kind in st.stale_finalizations():
        if job_id in finalizing:  # claimed a moment ago (a slow pass can outlast a short lease): sent once
            continue
        log.warning("job %s: its finalize step has no live worker; dispatched again", job_id)
        send(FINALIZE_TASK, [job_id])
    return changed


_stop = threading.Event()
_thread: threading.Thread | None = None


def _check_loop(name: str) -> None:
    from worker.app import make_app

    settings = get_settings()
    st = Store(settings.database_url, lease_seconds=settings.lease_seconds, migrate=False)
    sender = make_app(settings)
    try:
        while True:
            try:
                st.worker_seen(name)
            except Exception:  # the database is down for a moment: report again at the next beat
                log.warning("reporting worker %s alive failed", name, exc_info=True)
            if _stop.wait(settings.heartbeat_seconds):
                break
            try:
                requeue_lost_runs(st, settings.max_attempts, lambda task, args: sender.send_task(task, args=args))
            except Exception:  # the database or broker is down for a moment: check again later
                log.warning("lost-run check failed", exc_info=True)
        st.worker_stopped(name)
    except Exception:
        log.warning("recording that worker %s stopped failed", name, exc_info=True)
    finally:
        sender.close()
        st.dispose()


def start_lost_run_check(name: str | None = None) -> None:
    """In a worker's main process: report the worker alive (`name`: its node name) and look for stale leases,
    every heartbeat interval until `stop_lost_run_check`."""
    global _thread
    name = name or f"pid{os.getpid()}@{socket.gethostname()}"
    _stop.clear()
    _thread = threading.Thread(target=_check_loop, args=(name,), name="hw3-lost-run-check", daemon=True)
    _thread.start()


def stop_lost_run_check(timeout: float = 5.0) -> None:
    """Stop the loop; it records that the worker stopped (waited for up to `timeout` seconds)."""
    _stop.set()
    if _thread is not None:
        _thread.join(timeout)
