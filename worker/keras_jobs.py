"""Problems 2–4 as jobs: plain functions the Celery tasks call (no Celery in here).

Each kind is a set of runs trained in parallel (one task each, epochs stored as they end through a Keras
callback) and a summary once every run has ended, which writes the comparison figures and report.md.
TensorFlow is imported only inside the experiment functions, i.e. in worker pool processes after the fork.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from shared import datasets, reports
from shared.artifacts import job_dir, publish
from shared.settings import Settings
from shared.store import Store
from worker import failures
from worker.experiments import confusion, human_machine, regularization
from worker.experiments.keras_common import merge_params


@dataclass(frozen=True)
class Kind:
    title: str
    defaults: dict
    run_names: Callable[[dict], list[str]]
    train: Callable[..., Any]      # (name, params, data, out_dir, on_epoch, should_stop, threads) -> ExperimentResult
    summarize: Callable[..., Any]  # (out_dir, names, params, run_results) -> result dict
    section: Callable[[dict], str]


@lru_cache(maxsize=2)
def fashion(datasets_dir: str):
    """Fashion-MNIST, read once per worker process."""
    return datasets.load_fashion_mnist(Path(datasets_dir))


@lru_cache(maxsize=4)
def human_machine_data(source: str, datasets_dir: str):
    """The human/machine sequences: `synthetic`, a file path, or `""` for HW3_DATASETS/binary_random*.hdf5."""
    if source == "synthetic":
        return datasets.synthetic_human_machine()
    path = Path(source) if source else datasets.find_human_machine(Path(datasets_dir))
    return datasets.load_human_machine(path)


def _train_confusion(name, params, settings, out_dir, on_epoch, should_stop, threads):
    (x_tr, y_tr), (x_te, y_te) = fashion(str(settings.job_datasets_dir(params)))
    return confusion.run_confusion(x_tr, y_tr, x_te, y_te, params["params"], out_dir, on_epoch, should_stop,
                                   threads)


def _train_regularization(name, params, settings, out_dir, on_epoch, should_stop, threads):
    (x_tr, y_tr), (x_te, y_te) = fashion(str(settings.job_datasets_dir(params)))
    return regularization.run_regularization(name, x_tr, y_tr, x_te, y_te, params["params"], out_dir, on_epoch,
                                             should_stop, threads)


def _train_human_machine(name, params, settings, out_dir, on_epoch, should_stop, threads):
    x, y = human_machine_data(params.get("data") or "", str(settings.job_datasets_dir(params)))
    return human_machine.run_human_machine(name, x, y, params["params"], out_dir, on_epoch, should_stop,
                                           threads)


KINDS: dict[str, Kind] = {
    "confusion": Kind(
        "Problem 2 — Fashion-MNIST confusion matrix", confusion.DEFAULT_PARAMS,
        lambda p: ["confusion"], _train_confusion,
        lambda out_dir, names, p, results: results["confusion"], reports.confusion_section),
    "regularization": Kind(
        "Problem 3 — regularization and weight histograms", regularization.DEFAULT_PARAMS,
        lambda p: list(regularization.RUN_NAMES), _train_regularization,
        lambda out_dir, names, p, results: regularization.summarize_regularization(out_dir, names).result,
        reports.regularization_section),
    "human-machine": Kind(
        "Problem 4 — human-typed or machine-generated?", human_machine.DEFAULT_PARAMS,
        human_machine.run_names, _train_human_machine,
        lambda out_dir, names, p, results: human_machine.summarize_human_machine(out_dir, names, p).result,
        reports.human_machine_section),
}

# what `status --json` shows of each kind's result (the full result stays in the run rows and report)
RESULT_KEYS = {
    "confusion": ("test_accuracy", "test_loss", "most_confused_pair", "most_confused_for", "epochs_run"),
    "regularization": ("test_accuracy", "description"),
    "human-machine": ("val_accuracy", "best_run", "model_path", "best_epoch", "goal", "goal_met", "ranking"),
}


def plan(kind: str, params: dict, data: str | None = None, datasets_dir: str | None = None
         ) -> tuple[dict, list[dict]]:
    """Validate a Keras job's parameters; return the job's stored params and its run specs. `datasets_dir`: the
    folder holding the input files as the workers see it (None: the worker's HW3_DATASETS)."""
    spec = KINDS[kind]
    merged = merge_params(spec.defaults, params)  # unknown keys raise ValueError naming the allowed ones
    epochs = merged["epochs"]
    if not isinstance(epochs, int) or not 1 <= epochs <= 10_000:
        raise ValueError(f"epochs must be an integer in 1..10000, got {epochs!r}")
    job_params = {"params": params, "data": data}
    folder = datasets.check_datasets_option(datasets_dir)
    if folder is not None:
        job_params["datasets"] = folder
    return job_params, [{"name": n, "config": {"kind": kind, "run": n}, "epochs_total": epochs}
                        for n in spec.run_names(merged)]


def train_run(store: Store, settings: Settings, run_id: int, worker: str, threads: int) -> bool:
    """Train one run of a Keras job; True when this call ended the job's last pending run."""
    run = store.start_run(run_id, worker)
    if run is None:
        return store.claim_finalize(store.run_info(run_id)["job_id"])
    job_id = run["job_id"]
    status = store.job_status(job_id)
    spec = KINDS[status["kind"]]
    try:
        cancelled = lambda: store.cancel_requested(job_id)  # noqa: E731
        outcome = spec.train(run["name"], status["params"], settings, job_dir(settings, job_id),
                             lambda report: store.record_epoch(run_id, report), cancelled, threads)
        store.finish_run(run_id, "cancelled" if cancelled() else "succeeded", result=outcome.result)
        publish(store, settings, job_id, [p for p in outcome.artifacts if Path(p).is_file()])
    except Exception as exc:
        store.finish_run(run_id, "failed", error=failures.describe(exc))
    return store.claim_finalize(job_id)


def finalize(store: Store, settings: Settings, job_id: str) -> None:
    """Once every run has ended: the kind's summary, report.md, and the job's end state."""
    status = store.job_status(job_id)
    if status["state"] in ("succeeded", "failed", "cancelled"):
        return
    spec = KINDS[status["kind"]]
    base = job_dir(settings, job_id)
    base.mkdir(parents=True, exist_ok=True)
    runs = status["runs"]
    failed = {r["name"]: r["error"] for r in runs if r["state"] == "failed"}
    done = [r["name"] for r in runs if r["state"] == "succeeded"]
    header = f"# {spec.title} (job `{job_id}`)\n\n"
    if status["cancel_requested"]:
        state, result, error = "cancelled", None, None
    elif not done or (status["kind"] == "regularization" and failed):
        state, result = "failed", None
        error = "; ".join(f"{name}: {err}" for name, err in failed.items()) or "no run finished"
    else:
        try:
            merged = merge_params(spec.defaults, status["params"]["params"])
            full = spec.summarize(base, done, merged, {r["name"]: r["result"] for r in runs})
            report = header + spec.section(full)
            if failed:
                report += "\n## Failed runs\n\n" + "".join(f"- {n}: {e}\n" for n, e in failed.items())
            (base / "report.md").write_text(report)
            result = {k: full[k] for k in RESULT_KEYS[status["kind"]] if k in full}
            result["failed_runs"] = failed
            state, error = "succeeded", None
        except Exception as exc:
            state, result, error = "failed", None, f"summary: {type(exc).__name__}: {exc}"
    if state != "succeeded":
        (base / "report.md").write_text(header + f"State: **{state}**" + (f" — {error}" if error else "") + "\n")
    publish(store, settings, job_id, [p for p in base.rglob("*") if p.is_file() and p.suffix != ".tmp"])
    store.finish_job(job_id, state, result=result, error=error)


def render_plots(store: Store, job_id: str, out_dir: Path) -> list[Path]:
    """Learning curves of every run from the database rows (the comparison figures come with the summary)."""
    from shared import plots

    status = store.job_status(job_id)
    rows = store.epochs(job_id)
    paths = []
    for run in status["runs"]:
        run_rows = [r for r in rows if r["run_id"] == run["run_id"]]
        if run_rows:
            paths.append(plots.plot_learning_curves(run_rows, out_dir / "runs" / run["name"] / "curve.png",
                                                    title=f"{status['kind']}: {run['name']}"))
    return paths
