"""What the store hands back: small frozen dataclasses, the contract between the store and its callers.

`to_dict()` gives the JSON shape that `hw3-submit ... --json` prints.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# "interrupted": stopped by Ctrl-C on an embedded-mode --wait; like failed and cancelled, only an explicit
# `hw3-submit resume` (Store.reopen_job) takes a job out of it
FINISHED = frozenset({"succeeded", "failed", "cancelled", "interrupted"})
RESUMABLE = frozenset({"failed", "cancelled", "interrupted"})


class _Dict:
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunInfo(_Dict):
    """One run's row. `role`: "run" (one of the job's parallel runs) or "final" (the sweep's retrain)."""
    run_id: int
    job_id: str
    name: str
    role: str
    config: dict
    state: str
    epochs_total: int
    epochs_done: int
    attempts: int
    result: dict | None
    error: str | None
    worker: str | None
    pid: int | None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


@dataclass(frozen=True)
class RunStatus(RunInfo):
    """A run with its progress: validation accuracies seen so far, timing and lease state."""
    best_val_accuracy: float | None = None
    last_val_accuracy: float | None = None
    mean_epoch_seconds: float | None = None
    started_at: str | None = None
    heartbeat_at: str | None = None
    finished_at: str | None = None
    heartbeat_age_s: float | None = None
    lost: bool = False  # running, but its worker has been silent past the lease


@dataclass(frozen=True)
class JobStatus(_Dict):
    job_id: str
    kind: str
    state: str
    error: str | None
    params: dict
    result: dict | None
    cancel_requested: bool
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    best_val_accuracy: float | None
    eta_seconds: float | None
    runs: list[RunStatus] = field(default_factory=list)
    lost_runs: list[str] = field(default_factory=list)
    workers_alive: int = 0  # workers (of any job) whose main process reported within the lease
    # why an unfinished job makes no progress, instead of an ETA: "waiting for a worker" (none has ever
    # reported) or "no worker alive since <time>"; None while a worker is alive or once the job has ended
    waiting_for: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def run(self, name: str) -> RunStatus | None:
        return next((r for r in self.runs if r.name == name), None)

    def failed_runs(self) -> dict[str, str | None]:
        return {r.name: r.error for r in self.runs if r.state == "failed"}


@dataclass(frozen=True)
class JobSummary(_Dict):
    """A line of `hw3-submit list`."""
    job_id: str
    kind: str
    state: str
    created_at: str | None
    finished_at: str | None
    runs: int
    epochs_done: int
    epochs_total: int
    error: str | None
    result: dict | None


@dataclass(frozen=True)
class EpochRow(_Dict):
    """One epoch of one run, as recorded."""
    run_id: int
    run: str
    epoch: int
    lr: float | None
    train_loss: float | None
    train_accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    seconds: float | None


@dataclass(frozen=True)
class ArtifactInfo(_Dict):
    path: str  # relative to the job folder
    size: int
    sha256: str


@dataclass(frozen=True)
class LostRun(_Dict):
    """A run `Store.requeue_stale` changed: queued again, or failed/cancelled for good."""
    run_id: int
    job_id: str
    kind: str
    role: str
    state: str
    worker: str | None
    job_ended: bool
