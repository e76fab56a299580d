"""The life of a job, the same for every kind: train one run, finalize the job, draw its figures, write its
report. Plain functions over the store (no Celery in here); the kind's own steps come from the registry.
"""
from __future__ import annotations

import logging
import os
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Callable, ContextManager

from shared.artifacts import job_dir, publish
from shared.settings import Settings
from shared.store import LeaseLost, Store
from worker import failures, kinds
from worker.kinds.base import JobCancelled, JobContext, JobFailed, RunContext

log = logging.getLogger(__name__)

NOT_PUBLISHED = {"checkpoint.npz"}  # resumable state, not a result


def train_run(store: Store, settings: Settings, run_id: int, worker: str, pid: int | None = None) -> bool:
    """Train one run of any kind under its lease. Returns True when this call ended the job's last pending run
    (the caller then dispatches the job's finalize task). RunBusy (another live attempt holds the run)
    propagates: a duplicate delivery does nothing."""
    pid = os.getpid() if pid is None else pid
    run = store.start_run(run_id, worker, pid)
    if run is None:  # already ended (redelivered after success, or cancelled while queued)
        return store.claim_finalize(store.run_info(run_id).job_id)
    job = store.job_status(run.job_id)
    kind = kinds.get(job.kind)
    if run.epochs_done and not kind.resumes_runs:  # trained again from its first epoch: its old rows go
        store.truncate_epochs(run_id, 0)
    ctx = RunContext(store, settings, job, run, worker, settings.blas_threads, pid)
    try:
        result = kind.train(ctx)
        stopped = result is None or ctx.should_stop()
        store.finish_run(run_id, "cancelled" if stopped else "succeeded", result=result, holder=ctx.holder)
    except LeaseLost as exc:  # another attempt has the run now: it records and ends it
        log.warning("run %s stopped: %s", run_id, exc)
        return False
    except Exception as exc:  # the run fails with the reason; the job's other runs go on
        log.info("run %s failed", run_id, exc_info=True)
        try:
            store.finish_run(run_id, "failed", error=failures.describe(exc), holder=ctx.holder)
        except LeaseLost:
            return False
    return store.claim_finalize(run.job_id)


def finalize(store: Store, settings: Settings, job_id: str, worker: str, *, pid: int | None = None,
             holding: Callable[[JobContext], ContextManager] | None = None) -> None:
    """Once every parallel run has ended: the kind's finalize step, then the figures, report.md and the job's
    end state. Does nothing when the job has already ended; RunBusy while another live attempt finalizes it.
    `holding(ctx)`: a context that keeps the finalize lease renewed while the step works."""
    pid = os.getpid() if pid is None else pid
    if not store.start_finalize(job_id, worker, pid):
        return
    ctx = JobContext(store, settings, store.job_status(job_id), worker, pid)
    with holding(ctx) if holding else nullcontext():
        _finalize(ctx)


def _finalize(ctx: JobContext) -> None:
    store, job = ctx.store, ctx.job
    result, error = None, None
    if job.cancel_requested:
        state = "cancelled"
    else:
        try:
            result, state = kinds.get(job.kind).finalize(ctx), "succeeded"
        except JobCancelled:
            state = "cancelled"
        except JobFailed as exc:
            state, error = "failed", str(exc)
        except LeaseLost as exc:  # the retrain was taken over by another attempt, which ends the job
            log.warning("finalizing job %s stopped: %s", job.job_id, exc)
            return
    state, error = write_outputs(store, ctx.settings, job.job_id, state, result, error)
    store.finish_job(job.job_id, state, result=result, error=error)


def _partial(path: Path) -> bool:
    """A file still being written, or left half-written by a killed process (`x.tmp`, `x.npz.tmp-PID`)."""
    return path.suffix == ".tmp" or ".tmp-" in path.name


def write_outputs(store: Store, settings: Settings, job_id: str, state: str, result: dict | None,
                  error: str | None) -> tuple[str, str | None]:
    """Draw the figures and write report.md as the job will end, and record every file of the job folder as
    an artifact, before the job is marked ended: whoever sees it ended finds its artifacts complete. A failure
    here fails the job with the reason. Returns the (state, error) to end the job with."""
    base = job_dir(settings, job_id)
    try:
        base.mkdir(parents=True, exist_ok=True)
        render_plots(store, job_id, base)
        status = store.job_status(job_id)
        ending = replace(status, state=state, result=result, error=error)
        kind = kinds.get(status.kind)
        (base / "report.md").write_text(kind.report(ending, store.epochs(job_id)))
        publish(store, settings, job_id, [p for p in base.rglob("*") if p.is_file() and not p.is_symlink()
                                          and not _partial(p) and p.name not in NOT_PUBLISHED])
    except Exception as exc:  # the job must still end, with the reason
        log.exception("writing the figures and report of job %s failed", job_id)
        reason = f"writing plots and report: {type(exc).__name__}: {exc}"
        return "failed", f"{error}; {reason}" if error else reason
    return state, error


def render_plots(store: Store, job_id: str, out_dir: Path) -> list[Path]:
    """The job's figures from its database rows, written inside `out_dir` only: each path is checked before
    it is written, and one that would leave the folder (e.g. through a symbolic link) raises UnsafePath."""
    from shared import plots

    job = store.job_status(job_id)
    with plots.confined_to(out_dir):
        return kinds.get(job.kind).figures(job, store.epochs(job_id), Path(out_dir))
