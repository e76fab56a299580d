"""What the three Keras kinds (Problems 2–4) have in common: `--epochs` and `--seed`, one task per run with the
epochs recorded through a Keras callback, a summary of the runs' stored results once they have ended, and a
report made of a heading and the kind's section. TensorFlow is imported only inside the experiment functions,
i.e. in worker pool processes after the fork.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from shared import datasets, reports
from shared.entities import EpochRow, JobStatus, RunInfo
from worker.experiments.keras_common import CHECKPOINT_FILE, ExperimentResult, checkpoint_epoch, merge_params
from worker.kinds.base import JobContext, JobFailed, JobKind, Option, Plan, RunContext, RunSpec

MAX_EPOCHS = 10_000
HISTORY_KEYS = ("epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds")


@dataclass(frozen=True)
class Resume:
    """Where a run's training starts: `checkpoint` (written after every epoch; resumed from when it exists)
    and `earlier`, the stored rows of the epochs it holds, in the experiment's history format."""
    checkpoint: Path
    earlier: list[dict]


def _kept_order(row: EpochRow) -> tuple[float, float]:
    """The order in which a run keeps an epoch: higher validation accuracy, then lower validation loss (the
    human-machine runs' rule), then the earlier epoch (`max` keeps the first of equals)."""
    return row.val_accuracy, -(row.val_loss if row.val_loss is not None else float("inf"))


def epochs_deviation(epochs: int, homework: int) -> list[str]:
    """The phrase of `deviations` for a number of epochs other than the homework's; [] for the homework's."""
    return [] if epochs == homework else [f"{epochs} epoch{'s' if epochs != 1 else ''} instead of {homework}"]


class KerasKind(JobKind):
    defaults: dict[str, Any] = {}
    all_runs_needed = False  # True: one failed run fails the job (the comparison needs every run)

    @property
    def options(self) -> tuple[Option, ...]:
        return (Option("epochs", "epochs per run", int, default=self.defaults["epochs"]),
                Option("seed", "seed of initialization, shuffling and dropout", int, default=self.defaults["seed"]),
                *self.extra_options)

    extra_options: tuple[Option, ...] = ()

    def run_names(self, merged: dict) -> list[str]:
        raise NotImplementedError

    def plan(self, params: dict) -> Plan:
        given = {k: params.get(k) for k in ("epochs", "seed") if params.get(k) is not None}
        merged = merge_params(self.defaults, given)
        epochs = merged["epochs"]
        if not isinstance(epochs, int) or not 1 <= epochs <= MAX_EPOCHS:
            raise ValueError(f"epochs must be an integer in 1..{MAX_EPOCHS}, got {epochs!r}")
        job_params = {"params": given, "data": self.data_source(params)}
        folder = datasets.check_datasets_option(params.get("datasets"))
        if folder is not None:
            job_params["datasets"] = folder
        return Plan(job_params, [RunSpec(n, {"kind": self.name, "run": n}, epochs) for n in self.run_names(merged)])

    def data_source(self, params: dict) -> str | None:
        return None

    def merged_params(self, job: JobStatus) -> dict:
        return merge_params(self.defaults, job.params["params"])

    def experiment_params(self, params: dict) -> dict:
        """What the experiment trains with, from a job's stored params (for `deviations`): the defaults updated
        with the params given."""
        return merge_params(self.defaults, params.get("params"))

    # -- training ----------------------------------------------------------------------------------------------
    def experiment(self, ctx: RunContext, resume: Resume) -> ExperimentResult:
        """Train the run `ctx.run.name` with `ctx.record_epoch` / `ctx.should_stop` as the Keras callbacks,
        checkpointing every epoch to `resume.checkpoint` and resuming from it (`resume.earlier`: the stored
        rows of the epochs it holds)."""
        raise NotImplementedError

    resumes_runs = True  # every epoch's state is checkpointed: weights, optimizer, the kept epoch's weights

    def train(self, ctx: RunContext) -> dict:
        outcome = self.experiment(ctx, self._resume(ctx))
        ctx.publish(outcome.artifacts)
        if not outcome.result.get("stopped_early"):  # trained to its last epoch: nothing left to resume
            (ctx.run_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
        return outcome.result

    @staticmethod
    def _resume(ctx: RunContext) -> Resume:
        """Where the run starts: after its checkpoint's epoch (rows past it dropped, they are trained again), or
        from its first epoch (rows of an earlier attempt dropped) when there is no usable checkpoint."""
        checkpoint = ctx.run_dir / CHECKPOINT_FILE
        epoch = checkpoint_epoch(checkpoint)
        ctx.store.truncate_epochs(ctx.run.run_id, epoch)
        rows = [r.to_dict() for r in ctx.store.epochs(ctx.job.job_id, ctx.run.run_id)]
        if [r["epoch"] for r in rows] != list(range(1, epoch + 1)):  # a row is missing: start again
            checkpoint.unlink(missing_ok=True)
            ctx.store.truncate_epochs(ctx.run.run_id, 0)
            rows = []
        return Resume(checkpoint, [{k: r[k] for k in HISTORY_KEYS} for r in rows])

    # -- the end of the job -------------------------------------------------------------------------------------
    summarize: Callable[..., dict]

    def finalize(self, ctx: JobContext) -> dict:
        runs = ctx.job.runs
        failed = {r.name: r.error for r in runs if r.state == "failed"}
        done = {r.name: r.result for r in runs if r.state == "succeeded"}
        if not done or (self.all_runs_needed and failed):
            raise JobFailed("; ".join(f"{name}: {err}" for name, err in failed.items()) or "no run finished")
        rows = ctx.rows()
        histories = {name: [r.to_dict() for r in rows if r.run == name] for name in done}
        result = self.summarize(ctx, done, histories)
        return {**result, "failed_runs": failed}

    # -- figures ------------------------------------------------------------------------------------------------
    show_loss = True  # the learning curves' second panel

    def curve(self, job: JobStatus, run: RunInfo) -> tuple[str, str, int | None]:
        """The run's learning-curve figure: its path in the job folder (the one the report links), its title
        and the epoch to mark (None for no mark), from the run's stored result where it has one."""
        raise NotImplementedError

    def figures(self, job: JobStatus, rows: Sequence[EpochRow], out_dir: Path) -> list[Path]:
        """Each run's learning curves, drawn from its epoch rows (so also mid-run, by `hw3-submit plot`). The
        figures that compare the runs are drawn by `finalize`, from the same rows."""
        from shared import plots

        paths = []
        for run in job.runs:
            run_rows = [r.to_dict() for r in rows if r.run_id == run.run_id]
            if run_rows:
                path, title, mark = self.curve(job, run)
                paths.append(plots.plot_learning_curves(run_rows, Path(out_dir) / path, title=title,
                                                        best_epoch=mark, show_loss=self.show_loss))
        return paths

    def section(self, result: dict) -> str:
        raise NotImplementedError

    def _runs_so_far(self, job: JobStatus, rows: Sequence[EpochRow]) -> str:
        """A job that has not succeeded: each run's state, epochs and validation accuracy from its rows (at its
        kept epoch or its last one, as the kind ranks runs)."""
        if not any(r.epochs_done for r in job.runs):
            return ""
        best = self.kept_epoch == "best"
        table = []
        for run in job.runs:
            mine = [r for r in rows if r.run_id == run.run_id and r.val_accuracy is not None]
            kept = (max(mine, key=_kept_order) if best else mine[-1]) if mine else None
            table.append([run.name, run.state, f"{run.epochs_done}/{run.epochs_total}",
                          "—" if kept is None else f"{kept.val_accuracy:.2%} (epoch {kept.epoch})"])
        which = "best epoch so far" if best else "last epoch"
        return ("\n## Runs so far\n\n" + reports.markdown_table(
            ["run", "state", "epochs", f"validation accuracy ({which})"], table, ["l", "l", "r", "r"]) + "\n")

    def report(self, job: JobStatus, rows: Sequence[EpochRow]) -> str:
        header = f"# {self.title} (job `{job.job_id}`)\n\n"
        header += "".join(line + "\n" for line in reports.homework_note(self.deviations(job.params)))
        if job.state != "succeeded" or not job.result:
            state = header + f"State: **{job.state}**" + (f" — {job.error}" if job.error else "") + "\n"
            return state + self._runs_so_far(job, rows)
        report = header + self.section(job.result)
        failed = job.result.get("failed_runs") or {}
        if failed:
            report += "\n## Failed runs\n\n" + "".join(f"- {n}: {e}\n" for n, e in failed.items())
        return report
