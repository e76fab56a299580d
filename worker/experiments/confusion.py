"""Problem 2 ("confusion"): which Fashion-MNIST classes a small network mixes up.

Model: Dense(100, ReLU, kernel L2 1e-4) → Dropout(0.3) → Dense(10, softmax), trained with Adam
(learning rate 1e-3 decayed along a cosine to 2 % of it over the run) on the first 90 % of the
60,000 training images; the last 10 % give the validation learning curves. The model after the
last epoch is evaluated on the 10,000 test images.

Params (``DEFAULT_PARAMS``; any subset may be given):
    epochs             40
    batch_size         128
    optimizer          "adam"     (sgd | momentum | adam | rmsprop)
    learning_rate      1e-3
    lr_schedule        "cosine"   ("cosine": decay to final_lr_fraction × learning_rate; "constant")
    final_lr_fraction  0.02
    hidden_units       100
    l2                 1e-4       (kernel L2 of the hidden layer)
    dropout            0.3
    val_fraction       0.1        (the last part of the training set)
    seed               0

Artifacts (relative to out_dir):
    history.json          per-epoch metrics
    learning_curves.png   training/validation accuracy and loss
    confusion.txt         the rate matrix as an aligned text table, classes as "m: name" (m = 0..9)
    confusion.csv         the rate matrix (rows = true class, columns = decision)
    confusion.json        rates, counts and the most-confused analysis
    confusion.png         annotated heat map (percent of the true class; classes as "m: name")
"""
from __future__ import annotations

import csv
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shared import analysis, reports
from shared.datasets import FASHION_CLASSES
from shared.serialize import to_jsonable
from worker.experiments.fashion import FASHION_TRAINING, last_metrics, train_fashion_mlp
from worker.experiments.keras_common import ExperimentResult, OnEpoch, ShouldStop, merge_params, write_json

log = logging.getLogger(__name__)

DEFAULT_PARAMS: dict[str, Any] = {**FASHION_TRAINING, "hidden_units": 100, "l2": 1e-4, "dropout": 0.3}

FILES = {
    "history": "history.json",
    "learning_curves": "learning_curves.png",
    "table": "confusion.txt",
    "csv": "confusion.csv",
    "json": "confusion.json",
    "heatmap": "confusion.png",
}


def curve_title(p: Mapping[str, Any]) -> str:
    """The title of the learning curves (drawn from the run's epoch rows by the job kind)."""
    return ("Problem 2: Fashion-MNIST learning curves (validation: the last "
            f"{100 * float(p['val_fraction']):g}% of the training set)")


def confusion_analysis(y_true: np.ndarray, y_pred: np.ndarray,
                       class_names: Sequence[str] = FASHION_CLASSES) -> dict[str, Any]:
    """Rates, counts, accuracy and the most-confused answers, with class names (JSON-ready)."""
    names = list(class_names)
    k = len(names)
    counts = analysis.confusion_counts(y_true, y_pred, k)
    rates = analysis.confusion_rates(y_true, y_pred, k)
    per_class = []
    for row in analysis.most_confused_for(rates):
        predicted = row["predicted"]
        per_class.append({
            "class": names[row["true"]],
            "confused_with": names[predicted[0]] if predicted else None,
            "rate": row["rate"],
            "ties": [names[j] for j in predicted[1:]],
            "correct_rate": float(rates[row["true"], row["true"]]),
        })
    pair = analysis.most_confused_pair(rates)
    i, j = pair["pair"]
    return {
        "class_names": names,
        "accuracy": float(np.mean(np.asarray(y_true) == np.asarray(y_pred))),
        "rates": rates.tolist(),
        "counts": counts.tolist(),
        "most_confused_for": per_class,
        "most_confused_pair": {
            "classes": [names[i], names[j]],
            "indices": [i, j],
            "rate": pair["rate"],
            "rate_ab": pair["rate_ij"],
            "rate_ba": pair["rate_ji"],
            "ties": [[names[a], names[b]] for a, b in pair["ties"][1:]],
        },
    }


def write_confusion_csv(rates: np.ndarray, class_names: Sequence[str], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["true\\predicted", *class_names])
        for name, row in zip(class_names, np.asarray(rates)):
            writer.writerow([name, *(f"{v:.6f}" for v in row)])
    return path


def run_confusion(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                  params: dict[str, Any] | None, out_dir: Path, on_epoch: OnEpoch | None = None,
                  should_stop: ShouldStop | None = None, threads: int = 1,
                  class_names: Sequence[str] = FASHION_CLASSES, checkpoint: Path | None = None,
                  earlier: Sequence[Mapping[str, Any]] = ()) -> ExperimentResult:
    """Train the Problem 2 network, then analyse its confusions on the test set.

    Result keys: test_accuracy, test_loss, most_confused_pair {classes, rate, rate_ab, rate_ba,
    ties}, most_confused_for [{class, confused_with, rate, ties, correct_rate}] (one per class),
    confusion_rates (10×10), confusion_table (text), class_names, epochs_run, stopped_early,
    final (last epoch's train/val metrics), seconds, params, n_train, n_val, n_test, files
    (artifact paths relative to out_dir).
    """
    from shared import plots  # matplotlib only where figures are drawn: the CLI imports this module
    p = merge_params(DEFAULT_PARAMS, params)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trained = train_fashion_mlp(x_train, y_train, x_test, y_test, hidden_units=p["hidden_units"],
                                l2=p["l2"], dropout=p["dropout"], p=p, on_epoch=on_epoch,
                                should_stop=should_stop, threads=threads, checkpoint=checkpoint, earlier=earlier)
    conf = confusion_analysis(y_test, trained.test_predictions, class_names)
    rates = np.asarray(conf["rates"])
    labels = reports.indexed_names(class_names)
    table = reports.format_confusion_table(rates, labels)
    log.info("test accuracy %.4f; confusion rates:\n%s", trained.test_accuracy, table)

    artifacts = [write_json(out_dir / FILES["history"], trained.history)]  # the curves: drawn from the rows
    (out_dir / FILES["table"]).write_text(table + "\n")
    artifacts.append(out_dir / FILES["table"])
    artifacts.append(write_confusion_csv(rates, class_names, out_dir / FILES["csv"]))
    artifacts.append(write_json(out_dir / FILES["json"], {**conf, "test_accuracy": trained.test_accuracy}))
    artifacts.append(plots.plot_confusion_heatmap(
        rates, labels, out_dir / FILES["heatmap"],
        title=f"Test confusion rates, % of each true class (accuracy {100 * trained.test_accuracy:.2f}%)"))

    result = {
        "test_accuracy": trained.test_accuracy,
        "test_loss": trained.test_loss,
        "most_confused_pair": conf["most_confused_pair"],
        "most_confused_for": conf["most_confused_for"],
        "confusion_rates": conf["rates"],
        "confusion_table": table,
        "class_names": list(class_names),
        "epochs_run": len(trained.history),
        "stopped_early": trained.stopped_early,
        "final": last_metrics(trained.history),
        "seconds": trained.seconds,
        "params": p,
        "n_train": trained.n_train,
        "n_val": trained.n_val,
        "n_test": int(len(y_test)),
        "files": dict(FILES),
    }
    return ExperimentResult(result=to_jsonable(result), artifacts=artifacts)
