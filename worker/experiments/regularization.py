"""Problem 3 ("regularization"): how L2 + dropout change a network's weights.

Two runs on Fashion-MNIST, each a separate call of :func:`run_regularization`:
    plain       Dense(128, ReLU)                               → Dense(10, softmax)
    l2_dropout  Dense(48, ReLU, kernel L2 1e-4) → Dropout(0.2) → Dense(10, softmax)
trained like Problem 2 (Adam, cosine-decayed learning rate, last 10 % of the training set for
validation). After both ended, :func:`summarize_regularization` compares their weights, given the
runs' results and epoch rows as the service stored them (only the weights are read from disk).

Params (``DEFAULT_PARAMS``):
    epochs             40
    batch_size         128
    optimizer          "adam"
    learning_rate      1e-3
    lr_schedule        "cosine"   ("cosine" | "constant")
    final_lr_fraction  0.02
    val_fraction       0.1
    seed               0
    models             MODELS: per model name {hidden_units, l2, dropout}; override per key

Initialization: Keras' default Glorot-uniform kernels (std √(2 / (fan_in + fan_out))), drawn from the
seed before the first update, so the 48-unit and the 128-unit layers start with different spreads. Each
run saves those initial weights and puts their statistics in its result; the summary separates what the
initialization set from what training (with or without L2 + dropout) changed
(:func:`shared.analysis.spread_baseline`).

Artifacts (relative to out_dir):
    runs/<model>/history.json, runs/<model>/learning_curves.png,
    runs/<model>/weights.npz (kernel_1, bias_1, kernel_2, bias_2), runs/<model>/metrics.json,
    runs/<model>/weights_init.npz (the same keys, before the first update)
    (history.json and metrics.json are for the user: the summary never reads them)
    summary:
    weights_<model>_<junction>.png  four histograms (junction: input_hidden, hidden_output),
                                    shared bins per junction, the initial weights outlined
    weights_overlay_<junction>.png  both models on one axes, per junction
    learning_curves.png             both models' accuracy curves
    weight_stats.csv, weight_stats.json, weight_differences.md
"""
from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shared import analysis, reports
from shared.artifacts import run_dir
from shared.serialize import to_jsonable
from worker.experiments.fashion import FASHION_TRAINING, last_metrics, train_fashion_mlp
from worker.experiments.keras_common import (ExperimentResult, OnEpoch, ShouldStop, dense_kernels,
                                             merge_params, rel, write_json)

MODELS: dict[str, dict[str, Any]] = {
    "plain": {"hidden_units": 128, "l2": 0.0, "dropout": 0.0},
    "l2_dropout": {"hidden_units": 48, "l2": 1e-4, "dropout": 0.2},
}
MODEL_LABELS = {"plain": "plain (128)", "l2_dropout": "L2 + dropout (48)"}
RUN_NAMES: tuple[str, ...] = tuple(MODELS)


def curve_file(model_name: str) -> str:
    """Where a model's learning curves go in the job folder (drawn from its epoch rows by the job kind)."""
    return f"runs/{model_name}/learning_curves.png"


JUNCTIONS = (("input_hidden", "input→hidden", "kernel_1"), ("hidden_output", "hidden→output", "kernel_2"))

DEFAULT_PARAMS: dict[str, Any] = {**FASHION_TRAINING, "models": MODELS}

SUMMARY_FILES = {
    "learning_curves": "learning_curves.png",
    "stats_csv": "weight_stats.csv",
    "stats_json": "weight_stats.json",
    "description": "weight_differences.md",
}


def run_regularization(model_name: str, x_train: np.ndarray, y_train: np.ndarray,
                       x_test: np.ndarray, y_test: np.ndarray, params: dict[str, Any] | None,
                       out_dir: Path, on_epoch: OnEpoch | None = None,
                       should_stop: ShouldStop | None = None, threads: int = 1, checkpoint: Path | None = None,
                       earlier: Sequence[Mapping[str, Any]] = ()) -> ExperimentResult:
    """Train one of the two Problem 3 models (``model_name`` in ``RUN_NAMES``) and save its weights.

    Result keys: model, test_accuracy, test_loss, hidden_units, l2, dropout, epochs_run,
    stopped_early, final, seconds, n_train, n_val, params (the training settings), init
    ({initializer, seed, stats {junction: weight_stats}, fans {junction: [fan_in, fan_out]}}: the
    weights before the first update), files (relative to out_dir): everything the summary and the
    report need of this run.
    """
    p = merge_params(DEFAULT_PARAMS, params)
    if model_name not in p["models"]:
        raise ValueError(f"unknown model {model_name!r}; choose one of {sorted(p['models'])}")
    arch = {**MODELS.get(model_name, {}), **p["models"][model_name]}
    folder = run_dir(out_dir, model_name)
    folder.mkdir(parents=True, exist_ok=True)
    trained = train_fashion_mlp(x_train, y_train, x_test, y_test, hidden_units=arch["hidden_units"],
                                l2=arch["l2"], dropout=arch["dropout"], p=p, on_epoch=on_epoch,
                                should_stop=should_stop, threads=threads, checkpoint=checkpoint, earlier=earlier)
    (k1, b1), (k2, b2) = dense_kernels(trained.model)
    weights_path = folder / "weights.npz"
    np.savez(weights_path, kernel_1=k1, bias_1=b1, kernel_2=k2, bias_2=b2)
    (i1, c1), (i2, c2) = trained.initial_weights
    init_path = folder / "weights_init.npz"
    np.savez(init_path, kernel_1=i1, bias_1=c1, kernel_2=i2, bias_2=c2)
    initial = {"kernel_1": i1, "kernel_2": i2}
    metrics = {
        "model": model_name,
        "test_accuracy": trained.test_accuracy,
        "test_loss": trained.test_loss,
        "hidden_units": int(arch["hidden_units"]),
        "l2": float(arch["l2"]),
        "dropout": float(arch["dropout"]),
        "epochs_run": len(trained.history),
        "stopped_early": trained.stopped_early,
        "final": last_metrics(trained.history),
        "seconds": trained.seconds,
        "n_train": trained.n_train,
        "n_val": trained.n_val,
        "params": {k: v for k, v in p.items() if k != "models"},  # how it was trained, for the report
        "init": {"initializer": "glorot_uniform", "seed": int(p["seed"]),
                 "stats": {slug: analysis.weight_stats(initial[key]) for slug, _, key in JUNCTIONS},
                 "fans": {slug: list(initial[key].shape) for slug, _, key in JUNCTIONS}},
    }
    artifacts = [  # the learning curves are drawn from the run's epoch rows by the job kind
        write_json(folder / "history.json", trained.history),
        weights_path,
        write_json(folder / "metrics.json", metrics),
        init_path,
    ]
    metrics["files"] = {"history": rel(artifacts[0], Path(out_dir)),
                        "learning_curves": curve_file(model_name),
                        "weights": rel(weights_path, Path(out_dir)),
                        "metrics": rel(artifacts[2], Path(out_dir)),
                        "weights_init": rel(init_path, Path(out_dir))}
    return ExperimentResult(result=to_jsonable(metrics), artifacts=artifacts)


def _write_stats_csv(stats: dict[str, dict[str, dict[str, float]]], path: Path) -> Path:
    keys = ("n", "mean", "std", "mean_abs", "frac_small", "max_abs", "excess_kurtosis")
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["junction", "model", *keys])
        for junction, _, _ in JUNCTIONS:
            for model, by_junction in stats.items():
                s = by_junction[junction]
                writer.writerow([junction, model, *(s[k] if k == "n" else f"{s[k]:.6g}" for k in keys)])
    return path


def _by_label(by_model: Mapping[str, Mapping[str, Any]], junction_labels: Mapping[str, str]) -> dict:
    """{model: {junction slug: x}} → {model: {junction label: x}} (the sentences name junctions by label)."""
    return {n: {junction_labels.get(j, j): x for j, x in by_junction.items()} for n, by_junction in by_model.items()}


def _by_label_baseline(spread: Mapping[str, Any] | None, junction_labels: Mapping[str, str]) -> dict | None:
    if spread is None:
        return None
    return {**spread, "junctions": {junction_labels.get(j, j): b for j, b in spread["junctions"].items()}}


def summarize_regularization(out_dir: Path, results: Mapping[str, dict],
                             histories: Mapping[str, Sequence[Mapping]]) -> ExperimentResult:
    """Compare the runs' weights: histograms, statistics, generated description.

    ``results[name]`` is the result :func:`run_regularization` returned for run ``name`` (as
    stored); its keys, in order, are the runs to compare (at least two; the second is described
    relative to the first). ``histories[name]`` holds that run's epoch rows in epoch order. Only
    ``runs/<name>/weights.npz`` (and, for the histograms' outline, ``weights_init.npz``) is read from
    disk; the initial statistics come from the results' ``init``. Result keys: test_accuracy {model: acc},
    models {model: result}, weight_stats {model: {junction: stats}}, init_stats {model: {junction:
    stats}} (empty when a result has no ``init``), spread (:func:`shared.analysis.spread_baseline` by
    junction slug, None without init_stats), description [sentences], junctions {slug: label}, labels,
    stopped_early, files (relative to out_dir; histograms under files["histograms"][model][junction],
    overlays under files["overlays"][junction]).
    """
    from shared import plots  # matplotlib only where figures are drawn: the CLI imports this module
    out_dir = Path(out_dir)
    names = list(results)
    if len(names) < 2:
        raise ValueError(f"need at least two runs to compare, got {names}")
    no_rows = [n for n in names if n not in histories]
    if no_rows:
        raise ValueError(f"no epoch rows for run(s) {no_rows}; histories has {sorted(histories)}")
    weights, initial = {}, {}
    for name in names:
        with np.load(run_dir(out_dir, name) / "weights.npz") as npz:
            weights[name] = {slug: np.array(npz[key]) for slug, _, key in JUNCTIONS}
        init_file = run_dir(out_dir, name) / "weights_init.npz"
        if init_file.is_file():
            with np.load(init_file) as npz:
                initial[name] = {slug: np.array(npz[key]) for slug, _, key in JUNCTIONS}
    init_stats = {n: results[n]["init"]["stats"] for n in names if (results[n].get("init") or {}).get("stats")}
    if len(init_stats) < len(names):
        init_stats = {}

    labels = {n: MODEL_LABELS.get(n, n) for n in names}
    artifacts: list[Path] = []
    files: dict[str, Any] = {"histograms": {n: {} for n in names}, "overlays": {}}
    stats: dict[str, dict[str, dict[str, float]]] = {n: {} for n in names}
    colors = ("tab:blue", "tab:orange", "tab:green", "tab:red")
    for slug, label, _ in JUNCTIONS:
        bins = analysis.shared_bins([weights[n][slug] for n in names]
                                    + [initial[n][slug] for n in names if n in initial], n_bins=80)
        for name, color in zip(names, colors):
            w = weights[name][slug]
            stats[name][slug] = analysis.weight_stats(w)
            path = plots.plot_weight_histogram(
                w, bins, out_dir / f"weights_{name}_{slug}.png",
                title=f"{labels[name]}: {label} weights", color=color,
                initial=initial.get(name, {}).get(slug))
            artifacts.append(path)
            files["histograms"][name][slug] = rel(path, out_dir)
        path = plots.plot_weight_overlay({labels[n]: weights[n][slug] for n in names}, bins,
                                         out_dir / f"weights_overlay_{slug}.png",
                                         title=f"{label} weights (shared bins)")
        artifacts.append(path)
        files["overlays"][slug] = rel(path, out_dir)

    junction_labels = {slug: label for slug, label, _ in JUNCTIONS}
    spread = analysis.spread_baseline(init_stats, stats, names[1], names[0]) if init_stats else None
    description = reports.describe_weight_differences(
        _by_label(stats, junction_labels), subject=names[1], reference=names[0], labels=labels,
        baseline=_by_label_baseline(spread, junction_labels),
        fans=_by_label({n: (results[n].get("init") or {}).get("fans", {}) for n in names}, junction_labels))
    artifacts.append(plots.plot_curve_comparison({labels[n]: histories[n] for n in names},
                                                 out_dir / SUMMARY_FILES["learning_curves"],
                                                 title="Problem 3: accuracy by model"))
    artifacts.append(_write_stats_csv(stats, out_dir / SUMMARY_FILES["stats_csv"]))
    artifacts.append(write_json(out_dir / SUMMARY_FILES["stats_json"], stats))
    desc_path = out_dir / SUMMARY_FILES["description"]
    desc_path.write_text("\n".join(f"- {s}" for s in description) + "\n")
    artifacts.append(desc_path)
    files.update(SUMMARY_FILES)
    files["runs"] = {n: {"learning_curves": curve_file(n)} for n in names}

    result = {
        "test_accuracy": {n: results[n]["test_accuracy"] for n in names},
        "models": {n: dict(results[n]) for n in names},
        "weight_stats": stats,
        "init_stats": init_stats,
        "spread": spread,
        "description": description,
        "junctions": junction_labels,
        "labels": labels,
        "stopped_early": any(results[n].get("stopped_early") for n in names),
        "files": files,
    }
    return ExperimentResult(result=to_jsonable(result), artifacts=artifacts)
