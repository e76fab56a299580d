"""Problem 1, the sweep: the numpy MLP (worker/engine/) trained for every (activation, initial LR) pair.

A sweep job has one run per pair, trained in parallel on the first 50,000 images of mnist_traindata.hdf5 (or
the first --train-size of them) and validated on the last 10,000. When every run has ended, `finalize` picks
the configuration with the best validation accuracy at the final epoch, retrains it with the same schedule on
all 60,000 images, and evaluates it once on mnist_testdata.hdf5.

Reproducibility: the BLAS thread count shapes the float sums, so it is part of each run's config, fixed when
the job is submitted (`--threads`, default 1), and used by whichever worker trains or resumes the run.
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from shared import datasets
from shared.artifacts import run_dir
from shared.entities import EpochRow, JobStatus, RunInfo
from shared.store import LeaseLost, RunBusy
from worker import failures
from worker.engine import DEFAULT_ACTIVATIONS, DEFAULT_LRS, ConfigError, TrainConfig, Trainer, evaluate
from worker.kinds.base import JobCancelled, JobContext, JobFailed, JobKind, Option, Plan, RunContext, RunSpec

SELECTION = "validation accuracy at the final epoch"
_DEFAULTS = TrainConfig()

# What Problem 1 specifies (the momentum, L2 and dropout defaults are the service's choices, not these)
HOMEWORK_EPOCHS = 50
HOMEWORK_HALVINGS = 2  # the LR halved twice in the run
HOMEWORK_TRAIN_SIZE = 50_000
HOMEWORK_ACTIVATIONS = ("tanh", "relu")
HOMEWORK_LR_COUNT = 3  # initial learning rates per activation: 2 × 3 = 6 configurations


class TrainingDiverged(RuntimeError):
    pass


def run_name(activation: str, lr: float) -> str:
    return f"{activation}-lr{lr:g}"


def scaled_decay_epochs(epochs) -> list[int]:
    """The default schedule (halve after 20 and 40 of 50) scaled to another number of epochs, for when
    --epochs is given without --decay-epochs: after 40 % and 80 % of the epochs, boundaries kept in
    1..epochs-1 (so 2 epochs halve once, after epoch 1; 1 epoch never halves)."""
    if not isinstance(epochs, int) or epochs < 2:
        return []
    return sorted({min(max(round(epochs * f), 1), epochs - 1) for f in (0.4, 0.8)})


def _times(n: int) -> str:
    return {0: "never", 1: "once", 2: "twice"}.get(n, f"{n} times")


def _grid(activations, n_lrs: int) -> str:
    return f"{' and '.join(activations)} × {n_lrs} initial LR{'s' if n_lrs != 1 else ''}"


def sweep_deviations(params: dict) -> list[str]:
    """How a sweep's stored params differ from Problem 1's settings (HOMEWORK_*), one phrase each."""
    out = []
    epochs = params.get("epochs", HOMEWORK_EPOCHS)
    if epochs != HOMEWORK_EPOCHS:
        out.append(f"{epochs} epoch{'s' if epochs != 1 else ''} instead of {HOMEWORK_EPOCHS}")
    halvings = len(params.get("decay_epochs", [None] * HOMEWORK_HALVINGS))  # each one is < epochs (validated)
    if halvings != HOMEWORK_HALVINGS:
        out.append(f"the LR was never halved instead of {_times(HOMEWORK_HALVINGS)}" if not halvings else
                   f"the LR was halved {_times(halvings)}, not {_times(HOMEWORK_HALVINGS)}")
    train_size = params.get("train_size", HOMEWORK_TRAIN_SIZE)
    if train_size != HOMEWORK_TRAIN_SIZE:
        out.append(f"{train_size:,} training images instead of {HOMEWORK_TRAIN_SIZE:,}")
    activations = list(params.get("activations", HOMEWORK_ACTIVATIONS))
    n_lrs = len(params.get("lrs", [None] * HOMEWORK_LR_COUNT))
    homework_grid = _grid(HOMEWORK_ACTIVATIONS, HOMEWORK_LR_COUNT)
    count, homework_count = len(activations) * n_lrs, len(HOMEWORK_ACTIVATIONS) * HOMEWORK_LR_COUNT
    if count != homework_count:
        out.append(f"{count} configuration{'s' if count != 1 else ''} instead of {homework_count} "
                   f"({_grid(activations, n_lrs)}, not {homework_grid})")
    elif set(activations) != set(HOMEWORK_ACTIVATIONS) or n_lrs != HOMEWORK_LR_COUNT:
        out.append(f"configurations {_grid(activations, n_lrs)} instead of {homework_grid}")
    return out


def plan_sweep(params: dict) -> Plan:
    """Validate the sweep's parameters; return them normalised and one run spec per (activation, LR).

    params: activations, lrs, train_size, threads, datasets (the input files' folder as the workers see it,
    None for their HW3_DATASETS), and any TrainConfig field (hidden, batch_size, epochs, ...); None values take
    the defaults. Raises ConfigError with a specific message for anything invalid, before a job is created."""
    params = {k: v for k, v in params.items() if v is not None}
    activations = tuple(params.pop("activations", None) or DEFAULT_ACTIVATIONS)
    lrs = tuple(float(v) for v in (params.pop("lrs", None) or DEFAULT_LRS))
    train_size = int(params.pop("train_size", datasets.N_TRAIN))
    try:
        folder = datasets.check_datasets_option(params.pop("datasets", None))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    params.setdefault("threads", 1)  # fixed here, not by the worker's load: see the module docstring
    if not 1 <= train_size <= datasets.N_TRAIN:
        raise ConfigError(f"train size {train_size} is outside 1..{datasets.N_TRAIN} "
                          f"(the first N of the {datasets.N_TRAIN:,} training images)")
    if len(set(activations)) != len(activations) or len(set(lrs)) != len(lrs):
        raise ConfigError(f"activations {activations} and learning rates {lrs} must not repeat")
    if "epochs" in params and "decay_epochs" not in params:
        params["decay_epochs"] = scaled_decay_epochs(params["epochs"])
    runs = []
    for activation in activations:
        for lr in lrs:
            config = TrainConfig.from_dict({**params, "activation": activation, "lr": lr})
            config.validate(train_size)
            config.validate(datasets.N_TRAIN + datasets.N_VAL)  # the final retrain uses all 60,000
            runs.append(RunSpec(run_name(activation, lr), config.to_dict(), config.epochs))
    normalised = {k: v for k, v in runs[0].config.items() if k not in ("activation", "lr")}
    normalised.update(activations=list(activations), lrs=list(lrs), train_size=train_size)
    if folder is not None:
        normalised["datasets"] = folder
    return Plan(normalised, runs)


@lru_cache(maxsize=4)
def mnist_train_file(datasets_dir: str) -> tuple[np.ndarray, np.ndarray]:
    """All 60,000 training images, read once per worker process and folder; splits are views of it."""
    return datasets.mnist_full_train(Path(datasets_dir))


def train_val(datasets_dir: Path, train_size: int):
    """The first `train_size` of the 50,000 training images, and the 10,000 validation images after them."""
    return datasets.split_train_val(*mnist_train_file(str(datasets_dir)), train_size)


def train_epochs(ctx: RunContext, config: TrainConfig, data: tuple) -> Trainer | None:
    """Train one run, resuming from its checkpoint; every epoch is stored as it ends, then checkpointed (a
    lost lease raises LeaseLost at the row, so nothing more is written). Returns the trainer when all epochs
    are done, None when the job was cancelled in between."""
    checkpoint = ctx.run_dir / "checkpoint.npz"
    if checkpoint.exists():  # the run's own thread count, not the checkpoint writer's budget
        trainer = Trainer.resume(checkpoint, *data, threads=config.threads)
        ctx.store.truncate_epochs(ctx.run.run_id, trainer.epoch)
    else:
        trainer = Trainer(config, *data)
    for report in trainer.run():
        if not math.isfinite(report.train_loss):
            raise TrainingDiverged(f"training loss became {report.train_loss} at epoch {report.epoch} "
                                   f"(lr {report.lr:g}); try a smaller learning rate")
        ctx.record_epoch(report.to_dict())  # row first: a crash re-runs, never skips, it
        trainer.save_checkpoint(checkpoint)
        if ctx.should_stop():
            return None
    return trainer


def choose_best(runs: Sequence[RunInfo]) -> RunInfo | None:
    """The parallel run with the highest final validation accuracy; ties go to the earlier run."""
    done = [r for r in runs if r.role == "run" and r.state == "succeeded"]
    return max(done, key=lambda r: (r.result["val_accuracy"], -r.run_id)) if done else None


class Sweep(JobKind):
    name = "sweep"
    title = "Problem 1 — numpy MLP sweep"
    problem = 1
    help = ("Problem 1: the numpy MLP sweep (activations × initial LRs) in parallel, then the best "
            "configuration retrained on all 60,000 images and tested once.")
    options = (
        Option("activations", "hidden activations to compare, comma-separated (tanh, relu)", csv=True,
               label="activation names (tanh, relu)", default=",".join(DEFAULT_ACTIVATIONS)),
        Option("lrs", "initial learning rates to compare, comma-separated", float, csv=True,
               label="learning rates", default=",".join(f"{v:g}" for v in DEFAULT_LRS)),
        Option("hidden", "hidden layer widths, comma-separated", int, csv=True, label="layer widths",
               default=",".join(map(str, _DEFAULTS.hidden))),
        Option("batch_size", "minibatch size (must divide the training set)", int, default=_DEFAULTS.batch_size),
        Option("epochs", "epochs per run", int, default=_DEFAULTS.epochs),
        Option("decay_epochs", "halve the LR after these epochs (default with --epochs E: after 40 % and 80 % "
               "of E)", int, csv=True, label="epoch numbers", default=",".join(map(str, _DEFAULTS.decay_epochs))),
        Option("momentum", "classic momentum (0 = plain SGD)", float, default=_DEFAULTS.momentum),
        Option("l2", "L2 penalty on the weights", float, default=_DEFAULTS.l2),
        Option("dropout", "dropout rate on the hidden layers", float, default=_DEFAULTS.dropout),
        Option("init", "weight initialization: he or glorot", default=_DEFAULTS.init),
        Option("seed", "seed of initialization, shuffling and dropout", int, default=_DEFAULTS.seed),
        Option("train_size", "train on the first N of the 50,000 images (quick tries)", int,
               default=datasets.N_TRAIN),
        Option("threads", "BLAS threads per run; part of the numerics (same value, same numbers)", int, default=1),
    )
    result_keys = ("chosen", "selection", "test_accuracy", "test_loss", "val_accuracy", "weights")
    downloads = ("mnist",)
    resumes_runs = True  # the engine's checkpoint after every epoch

    def plan(self, params: dict) -> Plan:
        return plan_sweep(params)

    def check_inputs(self, params: dict, settings) -> None:
        datasets.require_mnist(settings.job_datasets_dir(params))

    def warm_up(self, settings) -> None:
        if (settings.datasets_dir / datasets.MNIST_TRAIN_FILE).is_file():
            mnist_train_file(str(settings.datasets_dir))

    def train(self, ctx: RunContext) -> dict | None:
        config = TrainConfig.from_dict(ctx.run.config)
        data = train_val(ctx.settings.job_datasets_dir(ctx.job.params), ctx.job.params["train_size"])
        trainer = train_epochs(ctx, config, data)
        if trainer is None:
            return None
        trainer.model.save_npz(ctx.run_dir / "weights.npz")
        (ctx.run_dir / "checkpoint.npz").unlink(missing_ok=True)
        last = trainer.history[-1]
        return {"val_accuracy": last.val_accuracy, "val_loss": last.val_loss}

    def finalize(self, ctx: JobContext) -> dict:
        """Retrain the best configuration on all 60,000 images (as the job's "final" run, under its own lease)
        and test it once."""
        runs = [r for r in ctx.job.runs if r.role == "run"]
        failed = {r.name: r.error for r in runs if r.state == "failed"}
        best = choose_best(runs)
        if best is None:
            raise JobFailed("every run failed: " + "; ".join(f"{name}: {err}" for name, err in failed.items()))
        config = TrainConfig.from_dict(best.config)
        final = ctx.start_run("final", best.config, config.epochs, config.threads or 1)
        if final is not None:
            self._retrain(final, config)
        final_info = ctx.store.run_info(ctx.store.run_id(ctx.job.job_id, "final"))
        if final_info.state != "succeeded":  # ended earlier without a result (e.g. its worker lost for good)
            raise JobFailed(f"final retrain: {final_info.error or final_info.state}")
        return {
            "chosen": {"run": best.name, "activation": best.config["activation"], "lr": best.config["lr"],
                       "val_accuracy": best.result["val_accuracy"]},
            "selection": SELECTION,
            "test_accuracy": final_info.result["test_accuracy"],
            "test_loss": final_info.result["test_loss"],
            "val_accuracy": {r.name: (r.result or {}).get("val_accuracy") for r in runs},
            "failed_runs": failed,
            "weights": "runs/final/weights.npz",
        }

    def _retrain(self, final: RunContext, config: TrainConfig) -> None:
        store, run_id = final.store, final.run.run_id
        try:
            folder = final.settings.job_datasets_dir(final.job.params)
            trainer = train_epochs(final, config, mnist_train_file(str(folder)))
            if trainer is None:
                store.finish_run(run_id, "cancelled", holder=final.holder)
                raise JobCancelled()
            trainer.model.save_npz(final.run_dir / "weights.npz")
            test = evaluate(trainer.model, *datasets.mnist_test(folder))
            store.finish_run(run_id, "succeeded", result={"test_accuracy": test.accuracy,
                                                         "test_loss": test.loss}, holder=final.holder)
            (final.run_dir / "checkpoint.npz").unlink(missing_ok=True)
        except (JobCancelled, LeaseLost, RunBusy):
            raise  # not a failure of the retrain: cancelled, or another attempt has it
        except Exception as exc:
            error = failures.describe(exc)
            store.finish_run(run_id, "failed", error=error, holder=final.holder)
            raise JobFailed(f"final retrain: {error}") from exc

    def figures(self, job: JobStatus, rows: Sequence[EpochRow], out_dir: Path) -> list[Path]:
        """Every sweep figure, from the database rows alone (so `hw3-submit plot` can run mid-training)."""
        from shared import plots  # matplotlib only where figures are drawn: the CLI imports this module

        rows = [r.to_dict() for r in rows]
        decay = tuple(job.params.get("decay_epochs") or ())
        result = job.result or {}
        paths = []
        for run in job.runs:
            run_rows = [r for r in rows if r["run_id"] == run.run_id]
            if not run_rows:
                continue
            title = None
            if run.role != "run":  # the final retrain: no validation rows, so its configuration and test result
                title = (f"final retrain of {run.config.get('activation')}, initial LR {run.config.get('lr'):g} "
                         f"on all {datasets.N_TRAIN + datasets.N_VAL:,} training images")
                test = result.get("test_accuracy", (run.result or {}).get("test_accuracy"))
                if test is not None:
                    title += f"\ntest accuracy {test:.2%} (mnist_testdata.hdf5, after the last epoch)"
            paths.append(plots.sweep_run_curve(run_rows, run.name, decay, run_dir(out_dir, run.name) / "curve.png",
                                               title=title))
        grid = [r.to_dict() for r in job.runs if r.role == "run"]
        if grid:
            paths.append(plots.sweep_overview(rows, grid, decay, out_dir / "overview.png"))
        return paths

    def report(self, job: JobStatus, rows: Sequence[EpochRow]) -> str:
        from shared import reports

        return reports.sweep_report(job.to_dict(), [r.to_dict() for r in rows], self.deviations(job.params))

    def deviations(self, params: dict) -> list[str]:
        return sweep_deviations(params)

    def summary(self, job: JobStatus) -> list[str]:
        result = job.result or {}
        if "chosen" not in result:
            return []
        chosen = result["chosen"]
        ranked = [v for v in result["val_accuracy"].values() if v is not None]
        return [f"chosen configuration: {chosen['activation']}, initial LR {chosen['lr']:g} (run {chosen['run']})",
                f"its validation accuracy: {chosen['val_accuracy']:.2%} at the final epoch, best of {len(ranked)} "
                f"run{'s' if len(ranked) != 1 else ''}",
                f"its test accuracy: {result['test_accuracy']:.2%} after a retrain on all "
                f"{datasets.N_TRAIN + datasets.N_VAL:,} images"]

    pending_runs = "the final retrain"

    def pending_epoch_cost(self, job: JobStatus) -> float:
        """The retrain's epoch passes over all 60,000 images, a run's over its training images and then the
        10,000 validation images once (about a third of a training pass: forward only)."""
        train_size = int(job.params.get("train_size", datasets.N_TRAIN))
        return (datasets.N_TRAIN + datasets.N_VAL) / (train_size + datasets.N_VAL / 3)

    def pending_epochs(self, job: JobStatus) -> int:
        """The final retrain's epochs, until its run exists (it is created when the parallel runs have ended);
        an interrupted or cancelled job still plans it (`resume` continues there), a job that ended otherwise
        does not."""
        if job.state in ("succeeded", "failed") or job.run("final") is not None:
            return 0
        return int(job.params.get("epochs", _DEFAULTS.epochs))


KIND = Sweep()
