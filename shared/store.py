"""The store: the only module that issues database queries (with its lease queries, shared/store_leases.py,
on the engines and sessions of shared/db.py).

Tasks and the CLI call its methods (`create_job`, `record_epoch`, `job_status`, ...), never raw sessions.
"""
from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session

from shared.db import (MIGRATIONS_DIR, Database, InvalidJobId, SchemaBehind, StoreError,  # noqa: F401 (re-exported)
                       _aware, _iso, _retry_locked, normalise_url, validate_job_id, validate_job_id_prefix)
from shared.entities import (FINISHED, RESUMABLE, ArtifactInfo, EpochRow, JobStatus, JobSummary, RunInfo,
                             RunStatus)
from shared.models import Artifact, Epoch, Job, Run, utcnow
from shared.serialize import to_jsonable
from shared.settings import masked_url
from shared.store_leases import LeaseLost, LeaseQueries, RunBusy  # noqa: F401 (re-exported)

EPOCH_FIELDS = ("lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds")


class JobNotFound(StoreError, LookupError):
    pass


class AmbiguousJobId(StoreError, LookupError):
    pass


class JobEnded(StoreError):
    """The job has already ended."""


class JobNotResumable(StoreError):
    """`reopen_job` of a job that succeeded or has not ended: there is nothing to resume."""


class Store(LeaseQueries, Database):
    """Jobs, their runs, epoch rows and artifacts. `Store(url, migrate=..., lease_seconds=...)`: see Database;
    the lease queries (start_run, heartbeat, requeue_stale, the finalize lease, workers) are in LeaseQueries."""

    # -- jobs -----------------------------------------------------------------------------------------------
    @_retry_locked
    def create_job(self, kind: str, params: dict, runs: list[dict]) -> str:
        """Create a queued job and its runs. `runs`: dicts with name, config, epochs_total and optional role."""
        job_id = secrets.token_hex(6)
        with self._write() as s:
            job = Job(id=job_id, kind=kind, params=params, state="queued", created_at=utcnow(),
                      cancel_requested=False, finalize_claimed=False)
            job.runs = [Run(name=r["name"], role=r.get("role", "run"), config=r["config"], state="queued",
                            epochs_total=int(r["epochs_total"]), epochs_done=0, attempts=0) for r in runs]
            s.add(job)
        return job_id

    @_retry_locked
    def add_run(self, job_id: str, name: str, config: dict, epochs_total: int, role: str = "run") -> int:
        """Add a run to an existing job (e.g. the sweep's final retrain); returns the existing id if present."""
        with self._write() as s:
            existing = s.scalar(select(Run).where(Run.job_id == job_id, Run.name == name))
            if existing is not None:
                return existing.id
            run = Run(job_id=job_id, name=name, role=role, config=config, state="queued",
                      epochs_total=epochs_total, epochs_done=0, attempts=0)
            s.add(run)
            s.flush()
            return run.id

    def _job(self, s: Session, job_id: str) -> Job:
        job = s.get(Job, validate_job_id(job_id))
        if job is None:
            raise JobNotFound(f"no job {job_id} in {masked_url(self.url)}")
        return job

    @_retry_locked
    def finish_job(self, job_id: str, state: str, *, result: dict | None = None, error: str | None = None) -> bool:
        """End the job in `state`. A job that has already ended stays as it is: False, nothing written."""
        _check_final(state)
        with self._write() as s:
            job = self._job(s, job_id)
            if job.state in FINISHED:
                return False
            job.state, job.finished_at = state, utcnow()
            job.finalize_worker = job.finalize_pid = None
            job.started_at = job.started_at or job.finished_at
            if result is not None:
                job.result = to_jsonable(result)
            if error is not None:
                job.error = error
            return True

    @_retry_locked
    def request_cancel(self, job_id: str) -> str:
        """Flag the job; queued runs are cancelled at once, running ones stop at their next epoch boundary.
        Returns the job's state afterwards. A job that had already ended is left alone: JobEnded."""
        with self._write() as s:
            job = self._job(s, job_id)
            if job.state in FINISHED:
                raise JobEnded(f"job {job_id} has already ended ({job.state}); nothing to cancel")
            job.cancel_requested = True
            now = utcnow()
            for run in job.runs:
                if run.state == "queued":
                    run.state, run.finished_at = "cancelled", now
            if all(r.state in FINISHED for r in job.runs):
                job.state, job.finished_at = "cancelled", now
            return job.state

    @_retry_locked
    def abandon_job(self, job_id: str, error: str) -> None:
        """A job that could not be started (its messages were refused): queued runs are cancelled (those that
        were sent find the job over and do nothing) and the job fails with `error`."""
        with self._write() as s:
            job = self._job(s, job_id)
            if job.state in FINISHED:
                return
            now = utcnow()
            job.cancel_requested = True
            for run in job.runs:
                if run.state == "queued":
                    run.state, run.finished_at = "cancelled", now
            job.state, job.error, job.finished_at = "failed", error, now

    @_retry_locked
    def interrupt_job(self, job_id: str) -> bool:
        """Ctrl-C on an embedded-mode --wait, once its workers are stopped: the runs that had not ended, and the
        job, become "interrupted" (a final state); rows stay, and so do the checkpoints on disk. False (nothing
        written) when the job had already ended. `reopen_job` continues it."""
        with self._write() as s:
            job = self._job(s, job_id)
            if job.state in FINISHED:
                return False
            now = utcnow()
            for run in job.runs:
                if run.state not in FINISHED:
                    run.state, run.finished_at, run.pid = "interrupted", now, None
            job.state, job.finished_at = "interrupted", now
            job.finalize_worker = job.finalize_pid = None
            return True

    @_retry_locked
    def reopen_job(self, job_id: str) -> list[int]:
        """The explicit resume, the only way out of a final state: an interrupted, failed or cancelled job goes
        back to queued (running if it had started), its error, result, cancel flag and finalize claim cleared.
        Runs that succeeded are kept; the others go back to queued with their rows (they continue from their
        checkpoint). Once a job's final run exists (the sweep's retrain), the choice it was made from is
        settled: only the final run is reopened, and it is resumed by the finalize step. Returns the ids of the
        parallel runs to dispatch; the caller then dispatches the finalize step if `claim_finalize` says so
        (no parallel run left to train). JobNotResumable for a job that succeeded or has not ended."""
        with self._write() as s:
            job = self._job(s, job_id)
            _check_resumable(job_id, job.state)
            finals = [r for r in job.runs if r.role != "run"]
            reopened = [r for r in (finals or job.runs) if r.state != "succeeded"]
            for run in reopened:
                run.state, run.error, run.result, run.finished_at = "queued", None, None, None
                run.worker = run.pid = run.heartbeat_at = None
                run.attempts = 0  # HW3_MAX_ATTEMPTS counts the lost attempts of this resume afresh
            job.state = "running" if job.started_at else "queued"
            job.error = job.result = job.finished_at = None
            job.cancel_requested = job.finalize_claimed = False
            job.finalize_worker = job.finalize_pid = job.finalize_heartbeat_at = None
            return [r.id for r in reopened if r.role == "run"]

    def check_resumable(self, job_id: str) -> None:
        """JobNotResumable unless `reopen_job` would reopen the job now (checked before workers are started)."""
        _check_resumable(job_id, self.job_state(job_id))

    def cancel_requested(self, job_id: str) -> bool:
        with self._read() as s:
            return bool(s.scalar(select(Job.cancel_requested).where(Job.id == job_id)))

    @_retry_locked
    def claim_finalize(self, job_id: str) -> bool:
        """True for exactly one caller, once every parallel run of the job has ended. The claim starts the
        finalize step's lease: if no finalize task takes it within the lease, `stale_finalizations` hands it out
        again."""
        pending = exists().where(Run.job_id == job_id, Run.role == "run", Run.state.not_in(FINISHED))
        with self._write() as s:
            res = s.execute(update(Job).where(Job.id == job_id, Job.finalize_claimed.is_(False), ~pending)
                            .values(finalize_claimed=True, finalize_heartbeat_at=utcnow()))
            return res.rowcount == 1

    # -- runs -----------------------------------------------------------------------------------------------
    def run_id(self, job_id: str, name: str) -> int | None:
        with self._read() as s:
            return s.scalar(select(Run.id).where(Run.job_id == job_id, Run.name == name))

    def run_info(self, run_id: int) -> RunInfo:
        with self._read() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise LookupError(f"no run {run_id}")
            return self._run_info(run)

    @staticmethod
    def _run_fields(run: Run) -> dict:
        return {"run_id": run.id, "job_id": run.job_id, "name": run.name, "role": run.role,
                "config": dict(run.config), "state": run.state, "epochs_total": run.epochs_total,
                "epochs_done": run.epochs_done, "attempts": run.attempts, "result": run.result,
                "error": run.error, "worker": run.worker, "pid": run.pid}

    def _run_info(self, run: Run) -> RunInfo:
        return RunInfo(**self._run_fields(run))

    @staticmethod
    def _check_holder(s: Session, run_id: int, holder: tuple[str, int] | None) -> Run:
        """The run, locked; LeaseLost unless `holder` (worker, pid) still holds it running (None: no check)."""
        run = s.get(Run, run_id, with_for_update=holder is not None)
        if run is None:
            raise LookupError(f"no run {run_id}")
        if holder is not None and (run.state != "running" or (run.worker, run.pid) != tuple(holder)):
            raise LeaseLost(f"run {run_id} is no longer held by {holder[0]} (pid {holder[1]}): now {run.state}"
                            + (f" on {run.worker} (pid {run.pid})" if run.worker else ""))
        return run

    @_retry_locked
    def record_epoch(self, run_id: int, report: dict[str, Any], *, holder: tuple[str, int] | None = None) -> None:
        """Store one epoch's metrics; recording the same (run, epoch) again replaces the row. With `holder`
        (worker, pid), only while that attempt holds the run's lease: LeaseLost otherwise, nothing written."""
        epoch = int(report["epoch"])
        values = {k: (None if report.get(k) is None else float(report[k])) for k in EPOCH_FIELDS}
        with self._write() as s:
            self._check_holder(s, run_id, holder)
            s.execute(delete(Epoch).where(Epoch.run_id == run_id, Epoch.epoch == epoch))
            s.add(Epoch(run_id=run_id, epoch=epoch, recorded_at=utcnow(), **values))
            s.flush()
            done = s.scalar(select(func.count()).select_from(Epoch).where(Epoch.run_id == run_id))
            s.execute(update(Run).where(Run.id == run_id).values(epochs_done=done, heartbeat_at=utcnow()))

    @_retry_locked
    def truncate_epochs(self, run_id: int, after_epoch: int) -> None:
        """Drop rows past `after_epoch` (a run resumed from an earlier checkpoint will record them again)."""
        with self._write() as s:
            s.execute(delete(Epoch).where(Epoch.run_id == run_id, Epoch.epoch > after_epoch))
            done = s.scalar(select(func.count()).select_from(Epoch).where(Epoch.run_id == run_id))
            s.execute(update(Run).where(Run.id == run_id).values(epochs_done=done))

    @_retry_locked
    def finish_run(self, run_id: int, state: str, *, result: dict | None = None, error: str | None = None,
                   holder: tuple[str, int] | None = None) -> bool:
        """End the run in `state`. A run that has already ended stays as it is (a succeeded run never becomes
        failed): False, nothing written. With `holder` (worker, pid), only while that attempt holds the lease
        (LeaseLost otherwise)."""
        _check_final(state)
        with self._write() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise LookupError(f"no run {run_id}")
            if run.state in FINISHED:
                return False
            self._check_holder(s, run_id, holder)
            run.state, run.finished_at = state, utcnow()
            if result is not None:
                run.result = to_jsonable(result)
            if error is not None:
                run.error = error
            return True

    def running_on(self, worker: str) -> int:
        """How many runs a worker host is running now (used to size BLAS thread pools)."""
        with self._read() as s:
            return s.scalar(select(func.count()).select_from(Run)
                            .where(Run.state == "running", Run.worker == worker)) or 0

    def runs(self, job_id: str) -> list[RunInfo]:
        with self._read() as s:
            return [self._run_info(r) for r in self._job(s, job_id).runs]

    # -- epochs -----------------------------------------------------------------------------------------------
    def epochs(self, job_id: str, run: str | int | None = None) -> list[EpochRow]:
        """Epoch rows of a job (optionally one run, by name or id), ordered by run then epoch."""
        with self._read() as s:
            job = self._job(s, job_id)
            q = (select(Run.id, Run.name, Epoch).join(Epoch, Epoch.run_id == Run.id)
                 .where(Run.job_id == job.id).order_by(Run.id, Epoch.epoch))
            if run is not None:
                names = {r.name: r.id for r in job.runs}
                ids = set(names.values())
                run_id = names.get(str(run)) or (int(run) if str(run).isdigit() and int(run) in ids else None)
                if run_id is None:
                    raise LookupError(f"job {job_id} has no run {run!r}; runs: {', '.join(names)}")
                q = q.where(Run.id == run_id)
            return [EpochRow(run_id=rid, run=name, epoch=e.epoch, **{k: getattr(e, k) for k in EPOCH_FIELDS})
                    for rid, name, e in s.execute(q)]

    # -- artifacts ----------------------------------------------------------------------------------------------
    @_retry_locked
    def record_artifact(self, job_id: str, path: str, size: int, sha256: str) -> None:
        with self._write() as s:
            s.execute(delete(Artifact).where(Artifact.job_id == job_id, Artifact.path == path))
            s.add(Artifact(job_id=job_id, path=path, size=size, sha256=sha256, created_at=utcnow()))

    def artifacts(self, job_id: str) -> list[ArtifactInfo]:
        with self._read() as s:
            job = self._job(s, job_id)
            rows = s.scalars(select(Artifact).where(Artifact.job_id == job.id).order_by(Artifact.path))
            return [ArtifactInfo(path=a.path, size=a.size, sha256=a.sha256) for a in rows]

    # -- reading jobs back ----------------------------------------------------------------------------------------
    def resolve_job_id(self, prefix: str) -> str:
        """The id of the one job whose id starts with `prefix`; JobNotFound when none does, AmbiguousJobId
        (listing them) when several do."""
        validate_job_id_prefix(prefix)
        with self._read() as s:
            ids = s.scalars(select(Job.id).where(Job.id.startswith(prefix)).order_by(Job.id).limit(11)).all()
        if not ids:
            raise JobNotFound(f"no job {prefix} in {masked_url(self.url)}")
        if len(ids) > 1:
            listing = ", ".join(ids[:10]) + (", ..." if len(ids) > 10 else "")
            raise AmbiguousJobId(f"job id {prefix!r} is ambiguous: it begins {len(ids) if len(ids) <= 10 else 'more than 10'} "
                                 f"jobs ({listing}); give more digits")
        return ids[0]

    def job_kind(self, job_id: str) -> str:
        with self._read() as s:
            return self._job(s, job_id).kind

    def job_state(self, job_id: str) -> str:
        with self._read() as s:
            return self._job(s, job_id).state

    def job_params(self, job_id: str) -> dict:
        with self._read() as s:
            return dict(self._job(s, job_id).params)

    def job_status(self, job_id: str) -> JobStatus:
        """The whole picture of a job: its state and result, and every run with its progress."""
        with self._read() as s:
            job = self._job(s, job_id)
            best = dict(s.execute(select(Epoch.run_id, func.max(Epoch.val_accuracy))
                                  .join(Run, Run.id == Epoch.run_id).where(Run.job_id == job.id)
                                  .group_by(Epoch.run_id)).all())
            last = {}
            for run_id, acc, secs in s.execute(
                    select(Epoch.run_id, Epoch.val_accuracy, Epoch.seconds).join(Run, Run.id == Epoch.run_id)
                    .where(Run.job_id == job.id).order_by(Epoch.run_id, Epoch.epoch)):
                last[run_id] = (acc, secs)
            mean_secs = dict(s.execute(select(Epoch.run_id, func.avg(Epoch.seconds))
                                       .join(Run, Run.id == Epoch.run_id).where(Run.job_id == job.id)
                                       .group_by(Epoch.run_id)).all())
            runs = []
            now = utcnow()
            for r in job.runs:
                silent = (now - _aware(r.heartbeat_at)).total_seconds() if r.heartbeat_at else None
                runs.append(RunStatus(
                    **self._run_fields(r),
                    best_val_accuracy=best.get(r.id), last_val_accuracy=last.get(r.id, (None,))[0],
                    mean_epoch_seconds=mean_secs.get(r.id), started_at=_iso(r.started_at),
                    heartbeat_at=_iso(r.heartbeat_at), finished_at=_iso(r.finished_at),
                    heartbeat_age_s=None if silent is None else round(silent, 1),
                    # running, but its worker has been silent past the lease: presumed lost until some worker
                    # queues it again (every worker checks) or, with none left, for good
                    lost=r.state == "running" and silent is not None and silent > self.lease_seconds,
                ))
            vals = [v for v in best.values() if v is not None]
            alive, waiting_for = self._waiting_for(s, now)
            # a fresh lease (a run's heartbeat, the finalize step's) is a worker at work, reported or not
            working = (any(r.state == "running" and not r.lost for r in runs)
                       or (job.finalize_worker is not None and self._fresh(job.finalize_heartbeat_at, now)))
            waiting_for = None if job.state in FINISHED or working else waiting_for
            return JobStatus(
                job_id=job.id, kind=job.kind, state=job.state, error=job.error, params=dict(job.params),
                result=job.result, cancel_requested=job.cancel_requested, created_at=_iso(job.created_at),
                started_at=_iso(job.started_at), finished_at=_iso(job.finished_at),
                best_val_accuracy=max(vals) if vals else None,
                eta_seconds=None if waiting_for else _eta(job.state, runs), runs=runs,
                lost_runs=[r.name for r in runs if r.lost], workers_alive=alive, waiting_for=waiting_for)

    def list_jobs(self, limit: int = 20) -> list[JobSummary]:
        with self._read() as s:
            jobs = s.scalars(select(Job).order_by(Job.created_at.desc()).limit(limit)).all()
            out = []
            for j in jobs:
                done = sum(r.epochs_done for r in j.runs)
                total = sum(r.epochs_total for r in j.runs)
                out.append(JobSummary(job_id=j.id, kind=j.kind, state=j.state, created_at=_iso(j.created_at),
                                      finished_at=_iso(j.finished_at), runs=len(j.runs), epochs_done=done,
                                      epochs_total=total, error=j.error, result=j.result))
            return out


def _check_resumable(job_id: str, state: str) -> None:
    if state not in RESUMABLE:
        hint = "" if state in FINISHED else f"; follow it with `hw3-submit wait {job_id}`"
        now = f"is {state}" if state not in FINISHED else f"has already {state}"
        raise JobNotResumable(f"job {job_id} {now}: only an interrupted, failed or cancelled job can be "
                              f"resumed{hint}")


def _check_final(state: str) -> None:
    if state not in FINISHED:  # not an assert: it must hold under python -O too
        raise ValueError(f"{state!r} is not a final state; expected one of {sorted(FINISHED)}")


def _eta(state: str, runs: list[RunStatus]) -> float | None:
    """Rough seconds left: remaining epochs × observed seconds per epoch, spread over the runs going at once."""
    if state in FINISHED:
        return 0.0
    per_epoch = [r.mean_epoch_seconds for r in runs if r.mean_epoch_seconds]
    if not per_epoch:
        return None
    mean = sum(per_epoch) / len(per_epoch)
    remaining = sum(max(r.epochs_total - r.epochs_done, 0) for r in runs if r.state not in FINISHED)
    parallel = max(1, sum(1 for r in runs if r.state == "running"))
    return remaining * mean / parallel
