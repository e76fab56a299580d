"""The job-kind contract: what one kind of job (the sweep, confusion, ...) tells the service about itself.

A kind is one module defining `KIND`, an instance of a `JobKind` subclass. From it the service derives
everything else: the CLI command and its options (`options`), what is stored when a job is submitted
(`plan`), how each of the job's runs trains on a worker (`train`), how the job ends once its runs have ended
(`finalize`), its figures (`figures`, from the database rows) and its report (`report`). No other module
names a kind.

The life of a job, for every kind (worker/jobs.py runs it):

    hw3-submit KIND ...  ->  plan(params)              validated params + one RunSpec per parallel run
                             check_inputs(...)         the input files' headers, where the client sees them
                             stage(job_id, plan, dir)  files the workers read, copied into the job's folder
    a pool process starts -> warm_up(settings)         reads what every task of the kind reads (no download)
    a worker, per run    ->  train(RunContext)         epochs recorded through ctx.record_epoch as they end;
                                                       returns the run's result (a JSON-able dict)
    the last run to end  ->  finalize(JobContext)      the job's result, from the runs' results in the store
                             figures(job, rows, dir)   PNGs drawn from the epoch rows (also mid-run)
                             report(job, rows)         report.md
    status, --wait's end ->  summary(job)              the headline result in sentences, for a person
    progress totals      ->  pending_epochs(job)       epochs of runs not created yet (the sweep's retrain)
    reports, summaries   ->  deviations(params)        how the job's settings differ from the homework's

Only `plan`, `train`, `finalize` and `report` must be written; the rest have defaults (tests/toykind.py is a
complete kind in 70 lines).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from shared.artifacts import job_dir, publish, run_dir
from shared.entities import EpochRow, JobStatus, RunInfo
from shared.settings import Settings
from shared.store import Store


class JobFailed(Exception):
    """Raised by `finalize`: the job ends failed with this message."""


class JobCancelled(Exception):
    """Raised by `finalize`: the job was cancelled while it finalized."""


@dataclass(frozen=True)
class Option:
    """A parameter of a kind, offered as `--NAME` on its CLI command (underscores become dashes).

    `type`: int, float or str; `csv`: a comma-separated list of `type`; `flag`: a switch; `path`: a file the
    client resolves against its current folder; `argument`: a positional argument instead of `--NAME` (with
    `many`, one or more of them, given to `plan` as a list). `default` is what the kind uses when the option is not given,
    shown in the help (None: not shown). `label`: what a `csv` list holds, for the CLI's error message (None:
    "integers", "numbers" or "names" by `type`)."""
    name: str
    help: str
    type: Callable[[str], Any] = str
    csv: bool = False
    flag: bool = False
    path: bool = False
    default: Any = None
    label: str | None = None
    argument: bool = False
    many: bool = False


@dataclass(frozen=True)
class RunSpec:
    name: str
    config: dict
    epochs_total: int
    role: str = "run"

    def as_row(self) -> dict:
        return {"name": self.name, "config": self.config, "epochs_total": self.epochs_total, "role": self.role}


@dataclass(frozen=True)
class Plan:
    """What `plan` hands back: the job's params as they will be stored, and its parallel runs."""
    params: dict
    runs: list[RunSpec]


@dataclass
class RunContext:
    """What a kind's `train` gets for one run: the job and run as stored, its folder, and the two calls that
    tie training to the service. `record_epoch` writes only while this attempt holds the run's lease (it raises
    LeaseLost otherwise, which stops the training: nothing more is written for the run)."""
    store: Store
    settings: Settings
    job: JobStatus
    run: RunInfo
    worker: str
    threads: int  # the worker's thread budget for one task
    pid: int = field(default_factory=os.getpid)

    @property
    def holder(self) -> tuple[str, int]:
        return self.worker, self.pid

    @property
    def job_dir(self) -> Path:
        return job_dir(self.settings, self.job.job_id)

    @property
    def run_dir(self) -> Path:
        path = run_dir(self.job_dir, self.run.name)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def record_epoch(self, row: dict) -> None:
        self.store.record_epoch(self.run.run_id, row, holder=self.holder)

    def should_stop(self) -> bool:
        """True once the job's cancel was requested: stop at this epoch boundary."""
        return self.store.cancel_requested(self.job.job_id)

    def publish(self, paths: Sequence[Path]) -> None:
        publish(self.store, self.settings, self.job.job_id, [p for p in paths if Path(p).is_file()])


@dataclass
class JobContext:
    """What a kind's `finalize` gets: the job as stored once its parallel runs have ended. `held_runs` are runs
    the finalize step trains itself (the sweep's retrain): their leases are renewed with the finalize lease."""
    store: Store
    settings: Settings
    job: JobStatus
    worker: str
    pid: int = field(default_factory=os.getpid)
    held_runs: set[int] = field(default_factory=set)

    @property
    def job_dir(self) -> Path:
        path = job_dir(self.settings, self.job.job_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def rows(self) -> list[EpochRow]:
        return self.store.epochs(self.job.job_id)

    def start_run(self, name: str, config: dict, epochs_total: int, threads: int) -> RunContext | None:
        """Add a run to the job (once) and take its lease, for training it inside the finalize step; None if
        it has ended already. RunBusy while another live attempt holds it."""
        run_id = self.store.add_run(self.job.job_id, name, config, epochs_total, role="final")
        run = self.store.start_run(run_id, self.worker, self.pid)
        if run is None:
            return None
        self.held_runs.add(run_id)
        return RunContext(self.store, self.settings, self.job, run, self.worker, threads, self.pid)


class JobKind:
    """The contract; subclasses set the attributes and implement the methods (see the module docstring)."""

    name: str = ""           # the stored kind, and its CLI command unless `command` says otherwise
    command: tuple[str, ...] = ()  # the CLI command's words, e.g. ("grade", "mnist"); default (name,)
    group_help: str = ""     # the help of the group its first words make (when `command` has several)
    title: str = ""          # the report's heading
    help: str = ""           # the CLI command's help
    problem: int | None = None  # the homework problem it answers; such kinds make up `hw3-submit all`
    options: tuple[Option, ...] = ()
    result_keys: tuple[str, ...] = ()  # what `status --json` shows of the result (all of it is stored)
    # which epoch's validation accuracy stands for a run: "final" (its last epoch) or "best" (the epoch it keeps)
    kept_epoch: str = "final"
    downloads: tuple[str, ...] = ()  # data sets its --download fetches first (`hw3-submit datasets fetch NAME`)
    # True: an interrupted run continues from the checkpoint of its last epoch; False: it is trained again
    resumes_runs: bool = False
    accuracy_column: str = ""  # the progress table's heading of the runs' accuracy (default: best val / last val)

    def warm_up(self, settings: Settings) -> None:
        """Called in each worker pool process as it starts: read what every task of the kind reads (cached
        there). Must not download anything or import TensorFlow."""

    def plan(self, params: dict) -> Plan:
        """Validate `params` (the options given, None for those not given) before anything is created;
        raise ValueError with a message naming the parameter, the value and what is expected."""
        raise NotImplementedError

    def check_inputs(self, params: dict, settings: Settings) -> None:
        """Check the input files the job will read, cheaply (present, the right format, headers and shapes; no
        data loaded), before it is created: raise shared.datasets.DatasetError (a ValueError) with one message
        naming the folder and the files expected. `params`: the plan's params; the folder is
        settings.job_datasets_dir(params). Called by the client where it sees that folder; the workers' loaders
        check everything again. By default nothing is checked."""

    def stage(self, job_id: str, job_plan: Plan, job_dir: Path) -> None:
        """Called by the submitting client once the job exists and before its runs are queued: copy what the
        workers must read from the job's folder on the shared volume (e.g. uploaded files). Default: nothing."""

    def train(self, ctx: RunContext) -> dict:
        """Train one run; call ctx.record_epoch(row) after every epoch (keys: epoch, lr, train_loss,
        train_accuracy, val_loss, val_accuracy, seconds) and stop when ctx.should_stop(). Returns the run's
        result."""
        raise NotImplementedError

    def finalize(self, ctx: JobContext) -> dict:
        """The job's result once every parallel run has ended (raise JobFailed / JobCancelled otherwise).
        Figures and the report are written afterwards by the service, through `figures` and `report`."""
        raise NotImplementedError

    def figures(self, job: JobStatus, rows: Sequence[EpochRow], out_dir: Path) -> list[Path]:
        """The job's figures drawn from its rows (works mid-run): by default one learning curve per run."""
        from shared import plots

        paths = []
        for run in job.runs:
            run_rows = [r.to_dict() for r in rows if r.run_id == run.run_id]
            if run_rows:
                paths.append(plots.plot_learning_curves(run_rows, run_dir(out_dir, run.name) / "curve.png",
                                                        title=f"{job.kind}: {run.name}"))
        return paths

    def report(self, job: JobStatus, rows: Sequence[EpochRow]) -> str:
        """report.md for the job as it ended (or as it is)."""
        raise NotImplementedError

    def public_result(self, result: dict | None) -> dict | None:
        """The part of the stored result that `status --json` shows."""
        if result is None or not self.result_keys:
            return result
        return {k: result[k] for k in (*self.result_keys, "failed_runs") if k in result}

    def summary(self, job: JobStatus) -> list[str]:
        """The job's headline result for a person (the end of `--wait`, `status JOB`): short sentences, each
        showing the number it rests on; [] while there is no result. Failed runs, the job's error, its folder
        and the report command are added by the display."""
        return []

    def deviations(self, params: dict) -> list[str]:
        """How the job's settings differ from what the homework specifies, one short phrase each ("2 epochs
        instead of 50"), from its stored params alone (`plan`'s params); [] for the homework's own settings and
        for settings the homework leaves open. The report and the end-of-job summary open with them, so that a
        quick run is never taken for the real thing. By default: none."""
        return []

    def pending_epochs(self, job: JobStatus) -> int:
        """Epochs the job will still add in runs that do not exist yet (the sweep's final retrain before it
        starts), so that progress totals count every run of the job from the start."""
        return 0

    pending_runs: str = ""  # what the runs of `pending_epochs` are, for the progress note (e.g. "the final retrain")

    def pending_epoch_cost(self, job: JobStatus) -> float:
        """How long one of the pending epochs takes against an epoch of the existing runs (for the ETA)."""
        return 1.0
