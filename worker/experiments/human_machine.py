"""Problem 4 ("human-machine"): tell bit sequences typed by people from a generator's.

Data: ``x`` (N, 20) in {-1, +1}, ``y`` 1 = human, 0 = machine. A seeded stratified 80/20 split
(:func:`shared.analysis.stratified_split`) gives training and validation sets; every run of a
job recomputes the same split from (y, val_fraction, split_seed).

Model (as prescribed): Dense(20, ReLU) → Dense(1, sigmoid), binary cross-entropy, batch size 16.
Regularisation variants: "none"; "l2" (kernel L2 on the hidden layer); "dropout" (Dropout after
the hidden layer). Runs are the grid optimizer × regularisation, named ``<optimizer>-<reg>``
(``adam-l2``, ``momentum-none``...): 4 × 3 = 12 runs by default, each a separate call of
:func:`run_human_machine`. Each run keeps the weights of its best epoch by validation accuracy
(ties: lower validation loss), so late over-fitting is not kept. :func:`summarize_human_machine`
then picks the run with the best validation accuracy from the runs' stored results (only the
chosen run's weights and model are read from disk).

Params (``DEFAULT_PARAMS``):
    epochs               150
    batch_size           16
    hidden_units         20
    val_fraction         0.2
    split_seed           0       (the train/validation split)
    seed                 0       (weight initialisation, shuffling, dropout)
    optimizers           ["sgd", "momentum", "adam", "rmsprop"]
    regularizations      ["none", "l2", "dropout"]
    learning_rates       {"sgd": 0.05, "momentum": 0.005, "adam": 0.001, "rmsprop": 0.0005}
    momentum             0.9
    l2                   1e-3
    dropout              0.2
    steps_per_execution  64      (batches per compiled call: speed only, same updates)

Artifacts (relative to out_dir):
    runs/<run>/model.hdf5           best-epoch model, Keras legacy HDF5 (plain ``load_model``)
    runs/<run>/weights.npz          kernel_1 (20×20), bias_1, kernel_2 (20×1), bias_2
    runs/<run>/history.json, runs/<run>/learning_curve.png, runs/<run>/metrics.json
    (history.json and metrics.json are for the user: the summary never reads them)
    summary:
    model.hdf5                      copy of the best run's model
    runs.csv, runs_comparison.png   every run's validation accuracy at its kept and its final epoch
    learning_curves_all.png         every run's accuracy curves side by side, the kept epochs marked
    weights_input_hidden.csv/.md/.png   the best model's 20×20 input→hidden matrix
    insight.json                    :func:`shared.analysis.weight_insight` of that matrix, with
                                    its sentences (:func:`shared.reports.weight_insight_sentences`)
"""
from __future__ import annotations

import csv
import logging
import shutil
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shared import analysis, reports
from shared.analysis import stratified_split
from shared.artifacts import run_dir
from shared.serialize import to_jsonable
from worker.experiments.keras_common import (ExperimentResult, OnEpoch, ShouldStop, build_mlp,
                                             checkpoint_callback, configure_tensorflow, dense_kernels,
                                             epoch_callback, make_optimizer, merge_params, rel,
                                             resume_point, seed_everything, write_json)

__all__ = ["DEFAULT_PARAMS", "REGULARIZATIONS", "run_names", "parse_run_name",
           "split_data", "run_human_machine", "summarize_human_machine", "stratified_split"]

REGULARIZATIONS = ("none", "l2", "dropout")

DEFAULT_PARAMS: dict[str, Any] = {
    "epochs": 150,
    "batch_size": 16,
    "hidden_units": 20,
    "val_fraction": 0.2,
    "split_seed": 0,
    "seed": 0,
    "optimizers": ["sgd", "momentum", "adam", "rmsprop"],
    "regularizations": list(REGULARIZATIONS),
    "learning_rates": {"sgd": 0.05, "momentum": 0.005, "adam": 0.001, "rmsprop": 0.0005},
    "momentum": 0.9,
    "l2": 1e-3,
    "dropout": 0.2,
    "steps_per_execution": 64,
}

MODEL_FILE = "model.hdf5"


def run_names(params: dict[str, Any] | None = None) -> list[str]:
    """The job's run names, ``<optimizer>-<regularization>``, optimizer-major."""
    p = merge_params(DEFAULT_PARAMS, params)
    return [f"{o}-{r}" for o in p["optimizers"] for r in p["regularizations"]]


def parse_run_name(name: str) -> tuple[str, str]:
    """``"adam-l2"`` → ``("adam", "l2")``."""
    optimizer, sep, reg = name.rpartition("-")
    if not sep or reg not in REGULARIZATIONS or not optimizer:
        raise ValueError(f"run name {name!r} is not <optimizer>-<{'|'.join(REGULARIZATIONS)}>")
    return optimizer, reg


def split_data(x: np.ndarray, y: np.ndarray, params: dict[str, Any] | None = None
               ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The job's ((x_train, y_train), (x_val, y_val)), identical for every run of a job."""
    p = merge_params(DEFAULT_PARAMS, params)
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y)
    train_idx, val_idx = stratified_split(y, float(p["val_fraction"]), int(p["split_seed"]))
    return (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx])


def binary_accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    """Share of samples whose sigmoid output lies on the right side of 0.5."""
    prob = model.predict(x, batch_size=4096, verbose=0).ravel()
    return float(np.mean((prob > 0.5).astype(np.int64) == np.asarray(y).ravel()))


def best_weights_callback(monitor: str = "val_accuracy", tie_break: str = "val_loss") -> Any:
    """A callback that remembers the weights of the best epoch by ``monitor`` (higher is better;
    equal values are broken by lower ``tie_break``). Call ``.restore()`` after ``fit``."""
    import keras

    class BestWeights(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.best: float = -np.inf
            self.best_tie: float = np.inf
            self.best_epoch: int | None = None
            self.best_logs: dict[str, float] = {}
            self._weights: list[np.ndarray] | None = None

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            value = logs.get(monitor)
            if value is None:
                return
            value = float(value)
            tie = float(logs.get(tie_break, np.inf))
            if value > self.best or (value == self.best and tie < self.best_tie):
                self.best, self.best_tie = value, tie
                self.best_epoch = int(epoch) + 1
                self.best_logs = {k: float(v) for k, v in logs.items()}
                self._weights = [np.array(w) for w in self.model.get_weights()]

        def restore(self) -> bool:
            if self._weights is None:
                return False
            self.model.set_weights(self._weights)
            return True

        def state(self) -> dict[str, np.ndarray]:
            """What a checkpoint keeps of it (the kept epoch, its figures and weights)."""
            out = {"best": np.asarray(self.best), "best_tie": np.asarray(self.best_tie),
                   "best_epoch": np.asarray(self.best_epoch or 0),
                   "best_logs_keys": np.asarray(sorted(self.best_logs), dtype=str),
                   "best_logs_values": np.asarray([self.best_logs[k] for k in sorted(self.best_logs)], dtype=float)}
            out.update({f"best_weight_{i}": w for i, w in enumerate(self._weights or [])})
            return out

        def load_state(self, checkpoint: Mapping[str, np.ndarray]) -> None:
            """Take up the state `state` saved (`checkpoint`: its arrays, under the prefix "extra_")."""
            self.best, self.best_tie = float(checkpoint["extra_best"]), float(checkpoint["extra_best_tie"])
            self.best_epoch = int(checkpoint["extra_best_epoch"]) or None
            self.best_logs = dict(zip(checkpoint["extra_best_logs_keys"].tolist(),
                                      checkpoint["extra_best_logs_values"].tolist()))
            n = sum(k.startswith("extra_best_weight_") for k in checkpoint)
            self._weights = [checkpoint[f"extra_best_weight_{i}"] for i in range(n)] or None

    return BestWeights()


def save_hdf5(model: Any, path: Path) -> Path:
    """Save ``model`` in the legacy Keras HDF5 format (chosen by Keras 3 from the .h5/.hdf5 suffix),
    loadable by a plain ``tf.keras.models.load_model(path)``. The format's deprecation notice
    (and numpy's about Keras' HDF5 writer) is kept out of the logs."""
    path = Path(path)
    if path.suffix not in (".h5", ".hdf5"):
        raise ValueError(f"{path}: the HDF5 format needs a .h5 or .hdf5 suffix")
    path.parent.mkdir(parents=True, exist_ok=True)
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # Keras' HDF5 writer converts variables with np.array(), which numpy 2 flags.
            warnings.filterwarnings("ignore", message=r"__array__ implementation doesn't accept a copy",
                                    category=DeprecationWarning)
            model.save(str(path))
    finally:
        absl_logger.setLevel(level)
    return path


def run_human_machine(run_name: str, x: np.ndarray, y: np.ndarray, params: dict[str, Any] | None,
                      out_dir: Path, on_epoch: OnEpoch | None = None,
                      should_stop: ShouldStop | None = None, threads: int = 1, checkpoint: Path | None = None,
                      earlier: Sequence[Mapping[str, Any]] = ()) -> ExperimentResult:
    """Train one ``<optimizer>-<reg>`` configuration; keep and save its best epoch's model. With
    ``checkpoint``, the state after every epoch (the kept epoch's weights included) is saved there and training
    resumes from it when it exists (``earlier``: the stored rows of the epochs it holds).

    Result keys: run, optimizer, regularization, learning_rate, l2 and dropout (the strengths this
    run used, 0 for the one it did not), val_accuracy (of the saved model), val_loss, train_accuracy
    (at the kept epoch), best_epoch, final (the last epoch's epoch, train_accuracy, val_accuracy,
    val_loss: chosen by nothing), epochs_run, stopped_early, seconds, n_train, n_val, split
    ({val_fraction, split_seed, train_human, val_human}: label 1 = human), files (relative to
    out_dir): everything the summary and the report need of this run.
    """
    p = merge_params(DEFAULT_PARAMS, params)
    optimizer, reg = parse_run_name(run_name)
    if optimizer not in p["learning_rates"]:
        raise ValueError(f"no learning rate for optimizer {optimizer!r} in params['learning_rates']")
    out_dir = Path(out_dir)
    folder = run_dir(out_dir, run_name)
    folder.mkdir(parents=True, exist_ok=True)
    (x_tr, y_tr), (x_val, y_val) = split_data(x, y, p)

    configure_tensorflow(threads)
    seed_everything(int(p["seed"]))
    l2 = float(p["l2"]) if reg == "l2" else 0.0
    dropout = float(p["dropout"]) if reg == "dropout" else 0.0
    model = build_mlp(x_tr.shape[1], int(p["hidden_units"]), 1, l2=l2, dropout=dropout,
                      output_activation="sigmoid")
    lr = float(p["learning_rates"][optimizer])
    model.compile(optimizer=make_optimizer(optimizer, lr, float(p["momentum"])),
                  loss="binary_crossentropy", metrics=["accuracy"],
                  steps_per_execution=int(p["steps_per_execution"]))
    reporter = epoch_callback(on_epoch, should_stop)
    best = best_weights_callback("val_accuracy", "val_loss")
    epochs = int(p["epochs"])
    start, saved = resume_point(model, checkpoint, earlier)
    if saved is not None:
        best.load_state(saved)
    callbacks = [reporter, best] + ([checkpoint_callback(checkpoint, best.state)] if checkpoint is not None else [])
    t0 = time.perf_counter()
    if epochs > start:
        model.fit(x_tr, y_tr, batch_size=int(p["batch_size"]), epochs=epochs, initial_epoch=start,
                  validation_data=(x_val, y_val), callbacks=callbacks, verbose=0, shuffle=True)
    seconds = time.perf_counter() - t0 + sum(float(r.get("seconds") or 0.0) for r in earlier)
    best.restore()

    val_loss = float(model.evaluate(x_val, y_val, batch_size=4096, verbose=0)[0])
    val_acc = binary_accuracy(model, x_val, y_val)
    model_path = folder / MODEL_FILE
    save_hdf5(model, model_path)
    (k1, b1), (k2, b2) = dense_kernels(model)
    weights_path = folder / "weights.npz"
    np.savez(weights_path, kernel_1=k1, bias_1=b1, kernel_2=k2, bias_2=b2)
    history = [dict(r) for r in earlier] + reporter.history
    last = history[-1] if history else {}
    metrics = {
        "run": run_name,
        "optimizer": optimizer,
        "regularization": reg,
        "learning_rate": lr,
        "l2": l2,
        "dropout": dropout,
        "val_accuracy": val_acc,
        "val_loss": val_loss,
        "train_accuracy": best.best_logs.get("accuracy"),
        "best_epoch": best.best_epoch,
        "final": {k: last.get(k) for k in ("epoch", "train_accuracy", "val_accuracy", "val_loss")},
        "epochs_run": len(history),
        "stopped_early": reporter.stopped,
        "seconds": seconds,
        "n_train": int(len(y_tr)),
        "n_val": int(len(y_val)),
        "split": {"val_fraction": float(p["val_fraction"]), "split_seed": int(p["split_seed"]),
                  "train_human": int(np.sum(y_tr == 1)), "val_human": int(np.sum(y_val == 1))},
    }
    artifacts = [model_path, weights_path, write_json(folder / "history.json", history),
                 write_json(folder / "metrics.json", metrics)]
    metrics["files"] = {key: rel(a, out_dir) for key, a in zip(("model", "weights", "history", "metrics"), artifacts)}
    metrics["files"]["learning_curve"] = curve_file(run_name)  # drawn from the run's epoch rows by the job kind
    return ExperimentResult(result=to_jsonable(metrics), artifacts=artifacts)


def curve_file(run_name: str) -> str:
    """Where a run's learning curve goes in the job folder."""
    return f"runs/{run_name}/learning_curve.png"


def curve_title(run_name: str, m: Mapping[str, Any]) -> str:
    """The run's two validation figures, each named by its epoch: the kept (best) one and the final one."""
    title = f"{run_name}: validation accuracy {m['val_accuracy']:.2%} at kept epoch {m['best_epoch']}"
    final = m.get("final") or {}
    if final.get("val_accuracy") is not None:
        title += f", {final['val_accuracy']:.2%} at the final epoch {final['epoch']}"
    return title


def _rank_key(m: dict[str, Any]) -> tuple[float, float]:
    val_loss = m.get("val_loss")
    return (-float(m["val_accuracy"]), float(val_loss) if val_loss is not None else np.inf)


def summarize_human_machine(out_dir: Path, results: Mapping[str, dict],
                            histories: Mapping[str, Sequence[Mapping]],
                            params: dict[str, Any] | None = None) -> ExperimentResult:
    """Pick the best run, copy its model to ``out_dir/model.hdf5``, analyse its weights.

    ``results[name]`` is the result :func:`run_human_machine` returned for each run that
    succeeded (as stored; at least one); grid runs of ``params`` without one are listed under
    ``missing_runs``. ``histories[name]`` holds a run's epoch rows in epoch order; they draw the
    overview of every run's learning curves (``learning_curves_all.png``; a partial history draws
    what it has). Only the best run's ``model.hdf5`` and ``weights.npz`` are read from disk. Ranking:
    validation accuracy at the kept epoch, then lower validation loss, then grid order. Result keys:
    val_accuracy, best_run, model_path ("model.hdf5"), best_epoch, final (the best run's last epoch:
    epoch, val_accuracy, ...: an accuracy chosen by nothing), runs {name: result}, ranking [names],
    missing_runs, settings (epochs, batch_size, hidden_units, seed, learning_rates, momentum, l2,
    dropout), split (n_train, n_val, val_fraction, split_seed, train_human, val_human),
    weight_matrix (20×20, rows = input positions, columns = hidden units), weight_table (markdown),
    insight (:func:`shared.analysis.weight_insight` plus its ``sentences``), stopped_early, files
    (relative to out_dir).
    """
    from shared import plots  # matplotlib only where figures are drawn: the CLI imports this module
    out_dir = Path(out_dir)
    if not results:
        raise ValueError(f"no finished run to summarize in {out_dir}")
    p = merge_params(DEFAULT_PARAMS, params)
    grid = run_names(params)
    names = [n for n in grid if n in results] + [n for n in results if n not in grid]
    runs = {n: dict(results[n]) for n in names}
    missing = [n for n in grid if n not in results]
    ranking = sorted(names, key=lambda n: _rank_key(runs[n]))  # stable: ties keep grid order
    best_name = ranking[0]
    best = runs[best_name]

    model_path = out_dir / MODEL_FILE
    shutil.copyfile(run_dir(out_dir, best_name) / MODEL_FILE, model_path)
    with np.load(run_dir(out_dir, best_name) / "weights.npz") as npz:
        W = np.array(npz["kernel_1"])
        w_out = np.array(npz["kernel_2"])
    numbers = analysis.weight_insight(W, w_out=w_out)
    insight = {**numbers, "sentences": reports.weight_insight_sentences(numbers)}

    artifacts: list[Path] = [model_path]
    csv_path = out_dir / "weights_input_hidden.csv"
    with csv_path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["input", *(f"unit_{j + 1}" for j in range(W.shape[1]))])
        for i, row in enumerate(W):
            writer.writerow([i + 1, *(f"{v:.6f}" for v in row)])
    artifacts.append(csv_path)
    table = reports.matrix_markdown(W, row_label="input", col_label="unit", digits=2)
    md_path = out_dir / "weights_input_hidden.md"
    md_path.write_text(f"Input→hidden weights of `{best_name}` (rows: input position, columns: "
                       f"hidden unit)\n\n{table}\n")
    artifacts.append(md_path)
    artifacts.append(plots.plot_weight_matrix(
        W, out_dir / "weights_input_hidden.png",
        title=f"{best_name}: input→hidden weights (validation accuracy {best['val_accuracy']:.2%} at kept "
              f"epoch {best.get('best_epoch')})"))
    artifacts.append(write_json(out_dir / "insight.json", insight))

    runs_csv = out_dir / "runs.csv"
    cols = ("run", "optimizer", "regularization", "learning_rate", "l2", "dropout", "val_accuracy", "val_loss",
            "train_accuracy", "best_epoch", "epochs_run", "seconds")
    with runs_csv.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*cols, "final_val_accuracy"])  # val_accuracy: at best_epoch (the kept one)
        for name in ranking:
            writer.writerow([runs[name].get(c) for c in cols] + [(runs[name].get("final") or {}).get("val_accuracy")])
    artifacts.append(runs_csv)
    n_val = best.get("n_val")
    artifacts.append(plots.plot_run_comparison(
        ranking, [runs[n]["val_accuracy"] for n in ranking], out_dir / "runs_comparison.png",
        highlight=best_name, label="at the kept (best) epoch",
        second=[(runs[n].get("final") or {}).get("val_accuracy") for n in ranking], second_label="at the final epoch",
        title="Validation accuracy per run" + (f" ({n_val:,} validation rows)" if n_val else "")))
    in_grid = [n for n in names if n in histories]
    artifacts.append(plots.plot_run_grid(
        {n: histories[n] for n in in_grid}, out_dir / "learning_curves_all.png",
        kept_epochs={n: runs[n].get("best_epoch") for n in in_grid}, ncols=max(1, len(p["regularizations"])),
        highlight=best_name, title="Problem 4: accuracy of every run (dashed: the kept epoch; framed: the best run)"))

    files = {
        "model": MODEL_FILE,
        "weights_csv": rel(csv_path, out_dir),
        "weights_md": rel(md_path, out_dir),
        "weights_png": "weights_input_hidden.png",
        "insight": "insight.json",
        "runs_csv": "runs.csv",
        "runs_comparison": "runs_comparison.png",
        "learning_curves_all": "learning_curves_all.png",
        "learning_curves": {n: curve_file(n) for n in ranking},
    }
    result = {
        "val_accuracy": best["val_accuracy"],
        "best_run": best_name,
        "model_path": MODEL_FILE,
        "best_epoch": best.get("best_epoch"),
        "final": best.get("final") or {},
        "runs": runs,
        "ranking": ranking,
        "missing_runs": missing,
        "settings": {k: p[k] for k in ("epochs", "batch_size", "hidden_units", "seed", "learning_rates", "momentum",
                                       "l2", "dropout")},
        "split": {"n_train": best.get("n_train"), "n_val": best.get("n_val"), **(best.get("split") or {
            "val_fraction": p["val_fraction"], "split_seed": p["split_seed"]})},
        "weight_matrix": W.tolist(),
        "weight_table": table,
        "insight": insight,
        "stopped_early": any(r.get("stopped_early") for r in runs.values()),
        "files": files,
    }
    return ExperimentResult(result=to_jsonable(result), artifacts=artifacts)
