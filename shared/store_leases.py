"""The store's lease queries: who holds a running run or a job's finalize step, their heartbeats, the takeover of
silent ones, and which workers are alive (worker/leases.py drives them). A mixin of `shared.store.Store`.
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shared.db import StoreError, _aware, _iso, _retry_locked, validate_job_id
from shared.entities import FINISHED, LostRun, RunInfo
from shared.models import Job, Run, Worker, utcnow


class RunBusy(StoreError):
    """The run (or a job's finalize step) is held by another live attempt (its lease is fresh): a duplicate
    delivery does nothing."""


class LeaseLost(StoreError):
    """The caller no longer holds the run's lease (it went silent and another attempt took the run over): it
    must stop, and write nothing more for the run."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LeaseQueries:
    @_retry_locked
    def start_finalize(self, job_id: str, worker: str, pid: int | None = None) -> bool:
        """Take the lease of the job's finalize step. False when there is nothing to do (the job has ended, or
        its finalize was never claimed); RunBusy while another live attempt holds it."""
        pid = os.getpid() if pid is None else pid
        with self._write() as s:
            job = s.get(Job, validate_job_id(job_id), with_for_update=True)
            if job is None or job.state in FINISHED or not job.finalize_claimed:
                return False
            now = utcnow()
            if job.finalize_worker is not None and (job.finalize_worker, job.finalize_pid) != (worker, pid):
                if self._fresh(job.finalize_heartbeat_at, now) and not (
                        job.finalize_worker == worker and not _pid_alive(job.finalize_pid)):
                    raise RunBusy(f"finalizing job {job_id} is held by {job.finalize_worker} "
                                  f"(pid {job.finalize_pid})")
            job.finalize_worker, job.finalize_pid, job.finalize_heartbeat_at = worker, pid, now
            return True

    @_retry_locked
    def heartbeat_finalize(self, job_id: str, worker: str, pid: int | None = None) -> bool:
        pid = os.getpid() if pid is None else pid
        with self._write() as s:
            res = s.execute(update(Job).where(Job.id == job_id, Job.state.not_in(FINISHED),
                                              Job.finalize_worker == worker, Job.finalize_pid == pid)
                            .values(finalize_heartbeat_at=utcnow()))
            return res.rowcount == 1

    @_retry_locked
    def stale_finalizations(self) -> list[tuple[str, str]]:
        """Jobs whose finalize step was claimed but whose lease went stale (its task never started, or its
        worker died while finalizing): [(job_id, kind)]. Each is handed out once per lease period (the lease is
        renewed here and its holder cleared) for the caller to dispatch the finalize task again."""
        now = utcnow()
        cutoff = now - timedelta(seconds=self.lease_seconds)
        with self._write() as s:
            jobs = s.scalars(select(Job).where(Job.finalize_claimed.is_(True), Job.state.not_in(FINISHED),
                                               Job.finalize_heartbeat_at < cutoff)
                             .with_for_update(skip_locked=True)).all()
            for job in jobs:
                job.finalize_worker = job.finalize_pid = None
                job.finalize_heartbeat_at = now
            return [(j.id, j.kind) for j in jobs]

    def _fresh(self, heartbeat: datetime | None, now: datetime) -> bool:
        return heartbeat is not None and _aware(heartbeat) > now - timedelta(seconds=self.lease_seconds)

    @_retry_locked
    def start_run(self, run_id: int, worker: str, pid: int | None = None) -> RunInfo | None:
        """Take the run's lease (worker node, process id, heartbeat) and mark it running; return it as
        `run_info`, or None if it has already ended (a redelivered task after success, or a run cancelled while
        queued). Raises RunBusy while another attempt holds a fresh lease: a duplicate delivery must not train
        the same run twice. A lease left by a dead process of the same worker node is taken over at once."""
        pid = os.getpid() if pid is None else pid
        with self._write() as s:
            # The job's row is locked before the run's, in the order request_cancel takes them (job, then
            # its runs), so the two cannot deadlock on PostgreSQL.
            job_id = s.scalar(select(Run.job_id).where(Run.id == run_id))
            if job_id is None:
                raise LookupError(f"no run {run_id}")
            s.get(Job, job_id, with_for_update=True)
            run = s.get(Run, run_id, with_for_update=True)
            if run.state in FINISHED:
                return None
            now = utcnow()
            if run.state == "running" and (run.worker, run.pid) != (worker, pid):
                fresh = self._fresh(run.heartbeat_at, now)
                owner_dead = run.worker == worker and run.pid is not None and not _pid_alive(run.pid)
                if fresh and not owner_dead:
                    raise RunBusy(f"run {run_id} is held by {run.worker} (pid {run.pid}), last heartbeat "
                                  f"{(now - _aware(run.heartbeat_at)).total_seconds():.0f} s ago")
            run.state, run.worker, run.pid, run.attempts = "running", worker, pid, run.attempts + 1
            run.started_at, run.heartbeat_at = run.started_at or now, now
            job = run.job
            if job.state == "queued":
                job.state, job.started_at = "running", now
            return self._run_info(run)

    @_retry_locked
    def heartbeat(self, run_id: int, worker: str, pid: int | None = None) -> bool:
        """Renew the lease of a running run held by (worker, pid); False if the run is no longer held by it."""
        pid = os.getpid() if pid is None else pid
        with self._write() as s:
            res = s.execute(update(Run).where(Run.id == run_id, Run.state == "running", Run.worker == worker,
                                              Run.pid == pid).values(heartbeat_at=utcnow()))
            return res.rowcount == 1

    @_retry_locked
    def requeue_stale(self, max_attempts: int = 3) -> list[LostRun]:
        """Runs whose worker went silent — running, heartbeat older than the lease — are put back to queued
        (the caller dispatches them again; they resume from their checkpoint), or failed once they have been
        attempted `max_attempts` times. Atomic: of several workers calling this, one takes each run.
        Returns what changed."""
        now = utcnow()
        cutoff = now - timedelta(seconds=self.lease_seconds)
        changed = []
        with self._write() as s:
            rows = s.execute(select(Run, Job.kind).join(Job, Job.id == Run.job_id)
                             .where(Run.state == "running", Run.heartbeat_at < cutoff)
                             .with_for_update(of=Run, skip_locked=True)).all()
            for run, kind in rows:
                silent = (now - _aware(run.heartbeat_at)).total_seconds()
                lost_from, job_ended = run.worker, run.job.state in FINISHED
                if job_ended:  # its job ended without it (e.g. failed in between): close it
                    run.state, run.finished_at = "failed", now
                    run.error = run.error or f"WorkerLost: its job had ended ({run.job.state})"
                elif run.attempts >= max_attempts or run.job.cancel_requested:
                    run.state, run.finished_at = ("cancelled" if run.job.cancel_requested else "failed"), now
                    if run.state == "failed":
                        run.error = (f"WorkerLost: its worker {run.worker} (pid {run.pid}) went silent for "
                                     f"{silent:.0f} s on attempt {run.attempts} of {max_attempts}; not retried")
                else:
                    run.state = "queued"
                run.pid = None
                changed.append(LostRun(run_id=run.id, job_id=run.job_id, kind=kind, role=run.role,
                                       state=run.state, worker=lost_from, job_ended=job_ended))
        return changed

    # -- workers --------------------------------------------------------------------------------------------
    @_retry_locked
    def worker_seen(self, name: str) -> None:
        """A worker's main process reports that it is alive (every heartbeat interval)."""
        now = utcnow()
        with self._write() as s:
            worker = s.get(Worker, name, with_for_update=True)
            if worker is None:
                s.add(Worker(name=name, started_at=now, last_seen=now, stopped_at=None))
            else:
                if worker.stopped_at is not None:  # the same node name started again
                    worker.started_at = now
                worker.last_seen, worker.stopped_at = now, None

    @_retry_locked
    def worker_stopped(self, name: str) -> None:
        """A worker stopped (or was stopped): it no longer counts as alive, without waiting for the lease."""
        with self._write() as s:
            s.execute(update(Worker).where(Worker.name == name, Worker.stopped_at.is_(None))
                      .values(stopped_at=utcnow()))

    def workers_alive(self) -> list[str]:
        """Names of the workers whose main process reported within the lease and has not stopped."""
        with self._read() as s:
            return list(s.scalars(self._alive_workers(utcnow()).order_by(Worker.name)))

    def _alive_workers(self, now: datetime):
        return select(Worker.name).where(Worker.stopped_at.is_(None),
                                         Worker.last_seen > now - timedelta(seconds=self.lease_seconds))

    def _waiting_for(self, s: Session, now: datetime) -> tuple[int, str | None]:
        """(how many workers are alive, why a job that no run's lease shows at work makes no progress when
        none is)."""
        alive = len(s.scalars(self._alive_workers(now)).all())
        if alive:
            return alive, None
        gone = s.scalar(select(func.max(func.coalesce(Worker.stopped_at, Worker.last_seen))))
        if gone is None:
            return 0, "waiting for a worker"
        since = gone if isinstance(gone, datetime) else datetime.fromisoformat(str(gone))
        return 0, f"no worker alive since {_iso(since)}"
