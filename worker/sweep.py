"""Problem 1, the sweep, as plain functions the Celery tasks call (no Celery in here).

A sweep job has one run per (activation, initial LR) pair, trained in parallel on the first 50,000 images of
mnist_traindata.hdf5 (or the first --train-size of them) and validated on the last 10,000. When every run
has ended, `finalize` picks the configuration with the best validation accuracy at the final epoch, retrains
it with the same schedule on all 60,000 images, and evaluates it once on mnist_testdata.hdf5.
"""
from __future__ import annotations

import math
import os
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from shared import datasets, reports
from shared.artifacts import job_dir, publish
from shared.models import FINISHED
from shared.settings import Settings
from shared.store import Store
from worker import failures
from worker.engine import DEFAULT_ACTIVATIONS, DEFAULT_LRS, ConfigError, TrainConfig, Trainer, evaluate

SELECTION = "validation accuracy at the final epoch"


class TrainingDiverged(RuntimeError):
    pass


def run_name(activation: str, lr: float) -> str:
    return f"{activation}-lr{lr:g}"


def plan_sweep(params: dict) -> tuple[dict, list[dict]]:
    """Validate the sweep's parameters; return them normalised and the run specs for `Store.create_job`.

    params: activations, lrs, train_size, datasets (the input files' folder as the workers see it, None for their
    HW3_DATASETS), and any TrainConfig field (hidden, batch_size, epochs, ...).
    Raises ConfigError with a specific message for anything invalid, before a job is created."""
    params = dict(params)
    activations = tuple(params.pop("activations", None) or DEFAULT_ACTIVATIONS)
    lrs = tuple(float(v) for v in (params.pop("lrs", None) or DEFAULT_LRS))
    train_size = params.pop("train_size", None)
    train_size = datasets.N_TRAIN if train_size is None else int(train_size)
    folder = params.pop("datasets", None)
    try:
        folder = datasets.check_datasets_option(folder)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if not 1 <= train_size <= datasets.N_TRAIN:
        raise ConfigError(f"train size {train_size} is outside 1..{datasets.N_TRAIN} "
                          f"(the first N of the {datasets.N_TRAIN:,} training images)")
    if not activations or not lrs:
        raise ConfigError("a sweep needs at least one activation and one learning rate")
    if len(set(activations)) != len(activations) or len(set(lrs)) != len(lrs):
        raise ConfigError(f"activations {activations} and learning rates {lrs} must not repeat")
    base = {k: v for k, v in params.items() if v is not None}
    if "epochs" in base and "decay_epochs" not in base:
        base["decay_epochs"] = scaled_decay_epochs(base["epochs"])
    runs = []
    for activation in activations:
        for lr in lrs:
            config = TrainConfig.from_dict({**base, "activation": activation, "lr": lr})
            config.validate(train_size)
            config.validate(datasets.N_TRAIN + datasets.N_VAL)  # the final retrain uses all 60,000
            runs.append({"name": run_name(activation, lr), "config": config.to_dict(),
                         "epochs_total": config.epochs})
    normalised = {**TrainConfig.from_dict({**base, "activation": activations[0], "lr": lrs[0]}).to_dict(),
                  "activations": list(activations), "lrs": list(lrs), "train_size": train_size}
    normalised.pop("activation")
    normalised.pop("lr")
    if folder is not None:
        normalised["datasets"] = folder
    return normalised, runs


def scaled_decay_epochs(epochs) -> list[int]:
    """The default schedule (halve after 20 and 40 of 50) scaled to another number of epochs, for when
    --epochs is given without --decay-epochs: after 40 % and 80 % of the epochs, boundaries kept in
    1..epochs-1 (so 2 epochs halve once, after epoch 1; 1 epoch never halves)."""
    if not isinstance(epochs, int) or epochs < 2:
        return []
    return sorted({min(max(round(epochs * f), 1), epochs - 1) for f in (0.4, 0.8)})


@lru_cache(maxsize=4)
def mnist_train_file(datasets_dir: str) -> tuple[np.ndarray, np.ndarray]:
    """All 60,000 training images, read once per worker process and folder; the train/val split is a pair of views.
    Missing course files are first fetched with tf.keras.datasets when the machine is online."""
    datasets.ensure_mnist(Path(datasets_dir))
    return datasets.mnist_full_train(Path(datasets_dir))


def train_val(datasets_dir: Path, train_size: int):
    x, y = mnist_train_file(str(datasets_dir))
    n = datasets.N_TRAIN
    return x[:train_size], y[:train_size], x[n:], y[n:]


def _run_dir(settings: Settings, job_id: str, name: str) -> Path:
    path = job_dir(settings, job_id) / "runs" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def train(store: Store, run: dict, config: TrainConfig, data: tuple, run_dir: Path) -> Trainer | None:
    """Train one run, resuming from its checkpoint; every epoch is stored as it ends, then checkpointed.
    Returns the trainer when all epochs are done, None when the job was cancelled in between."""
    checkpoint = run_dir / "checkpoint.npz"
    if checkpoint.exists():
        trainer = Trainer.resume(checkpoint, *data)
        store.truncate_epochs(run["run_id"], trainer.epoch)
    else:
        trainer = Trainer(config, *data)
    for report in trainer.run():
        if not math.isfinite(report.train_loss):
            raise TrainingDiverged(f"training loss became {report.train_loss} at epoch {report.epoch} "
                                   f"(lr {report.lr:g}); try a smaller learning rate")
        store.record_epoch(run["run_id"], report.to_dict())  # row first: a crash re-runs, never skips, it
        trainer.save_checkpoint(checkpoint)
        if store.cancel_requested(run["job_id"]):
            return None
    return trainer


def train_run(store: Store, settings: Settings, run_id: int, worker: str, threads: int) -> bool:
    """Train one of the sweep's parallel runs. Returns True when this call ended the last pending run
    (the caller then dispatches `finalize`)."""
    run = store.start_run(run_id, worker)
    if run is None:  # already ended (redelivered after success, or cancelled while queued)
        return store.claim_finalize(store.run_info(run_id)["job_id"])
    job_id = run["job_id"]
    run_dir = _run_dir(settings, job_id, run["name"])
    try:
        config = replace(TrainConfig.from_dict(run["config"]), threads=threads)
        params = store.job_status(job_id)["params"]
        data = train_val(settings.job_datasets_dir(params), params["train_size"])
        trainer = train(store, run, config, data, run_dir)
        if trainer is None:
            store.finish_run(run_id, "cancelled")
        else:
            weights = run_dir / "weights.npz"
            trainer.model.save_npz(weights)
            (run_dir / "checkpoint.npz").unlink(missing_ok=True)
            last = trainer.history[-1]
            store.finish_run(run_id, "succeeded", result={"val_accuracy": last.val_accuracy,
                                                          "val_loss": last.val_loss})
    except Exception as exc:  # the run fails with the reason; the sweep's other runs go on
        store.finish_run(run_id, "failed", error=failures.describe(exc))
    return store.claim_finalize(job_id)


def choose_best(runs: list[dict]) -> dict | None:
    done = [r for r in runs if r["role"] == "run" and r["state"] == "succeeded"]
    return max(done, key=lambda r: (r["result"]["val_accuracy"], -r["run_id"])) if done else None


def finalize(store: Store, settings: Settings, job_id: str, worker: str, threads: int) -> None:
    """After every parallel run: retrain the best configuration on all 60,000 images, test it once, and write
    the plots and report. Ends the job succeeded, failed (no run succeeded) or cancelled."""
    status = store.job_status(job_id)
    if status["state"] in ("succeeded", "failed", "cancelled"):
        return
    runs = status["runs"]
    failed = {r["name"]: r["error"] for r in runs if r["role"] == "run" and r["state"] == "failed"}
    best = choose_best(runs)
    if status["cancel_requested"]:
        return _end(store, settings, job_id, "cancelled")
    if best is None:
        return _end(store, settings, job_id, "failed", error="every run failed: " +
                    "; ".join(f"{name}: {err}" for name, err in failed.items()))
    try:
        config = replace(TrainConfig.from_dict(best["config"]), threads=threads)
        final_id = store.add_run(job_id, "final", best["config"], config.epochs, role="final")
        final = store.start_run(final_id, worker)
        run_dir = _run_dir(settings, job_id, "final")
        if final is not None:
            folder = settings.job_datasets_dir(status["params"])
            x, y = mnist_train_file(str(folder))
            trainer = train(store, final, config, (x, y), run_dir)
            if trainer is None:
                store.finish_run(final_id, "cancelled")
                return _end(store, settings, job_id, "cancelled")
            trainer.model.save_npz(run_dir / "weights.npz")
            x_test, y_test = datasets.mnist_test(folder)
            test = evaluate(trainer.model, x_test, y_test)
            store.finish_run(final_id, "succeeded", result={"test_accuracy": test.accuracy,
                                                            "test_loss": test.loss})
            (run_dir / "checkpoint.npz").unlink(missing_ok=True)
        final_info = store.run_info(final_id)
        if final_info["state"] != "succeeded":  # ended earlier without a result (e.g. its worker lost for good)
            return _end(store, settings, job_id, "failed",
                        error=f"final retrain: {final_info['error'] or final_info['state']}")
        final_result = final_info["result"]
        result = {
            "chosen": {"run": best["name"], "activation": best["config"]["activation"],
                       "lr": best["config"]["lr"], "val_accuracy": best["result"]["val_accuracy"]},
            "selection": SELECTION,
            "test_accuracy": final_result["test_accuracy"],
            "test_loss": final_result["test_loss"],
            "val_accuracy": {r["name"]: (r["result"] or {}).get("val_accuracy")
                             for r in runs if r["role"] == "run"},
            "failed_runs": failed,
            "weights": "runs/final/weights.npz",
        }
    except Exception as exc:
        error = failures.describe(exc)
        final_id = store.run_id(job_id, "final")
        if final_id is not None and store.run_info(final_id)["state"] not in FINISHED:
            store.finish_run(final_id, "failed", error=error)
        return _end(store, settings, job_id, "failed", error=f"final retrain: {error}")
    _end(store, settings, job_id, "succeeded", result=result)


def _end(store: Store, settings: Settings, job_id: str, state: str, *, result: dict | None = None,
         error: str | None = None) -> None:
    """Write the plots and report.md (showing the outcome), record them, then end the job: whoever sees the
    job ended finds its artifacts complete."""
    base = job_dir(settings, job_id)
    try:
        base.mkdir(parents=True, exist_ok=True)
        from worker.jobs import render_plots as render_confined  # figures checked to stay inside `base`

        paths = render_confined(store, job_id, base)
        outcome = {**store.job_status(job_id), "state": state, "result": result, "error": error}
        report = base / "report.md"
        report.write_text(reports.sweep_report(outcome, store.epochs(job_id)))
        publish(store, settings, job_id, [*paths, report, *base.glob("runs/*/weights.npz")])
    except Exception as exc:  # the job must still end, with the reason
        state, error = "failed", f"{error + '; ' if error else ''}writing plots and report: {type(exc).__name__}: {exc}"
    store.finish_job(job_id, state, result=result, error=error)


def render_plots(store: Store, job_id: str, out_dir: Path) -> list[Path]:
    """Every sweep figure, from the database rows alone (so `hw3-submit plot` can run mid-training)."""
    from shared import plots  # matplotlib only where figures are drawn: the CLI imports this module
    status = store.job_status(job_id)
    rows = store.epochs(job_id)
    decay = tuple(status["params"].get("decay_epochs") or ())
    paths = []
    for run in status["runs"]:
        run_rows = [r for r in rows if r["run_id"] == run["run_id"]]
        if run_rows:
            paths.append(plots.sweep_run_curve(run_rows, run["name"], decay,
                                               out_dir / "runs" / run["name"] / "curve.png"))
    grid = [r for r in status["runs"] if r["role"] == "run"]
    if grid:
        paths.append(plots.sweep_overview(rows, grid, decay, out_dir / "overview.png"))
    return paths


def default_threads() -> int:
    """BLAS threads per task: the cores divided by the worker's concurrency (set by `hw3-submit worker`)."""
    env = os.environ.get("HW3_BLAS_THREADS")
    return max(1, int(env)) if env else 1
