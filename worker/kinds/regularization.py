"""Problem 3: two Keras MLPs (plain; L2 + dropout) trained in parallel, and histograms of their weights."""
from __future__ import annotations

from shared import datasets, reports
from worker.experiments import regularization
from worker.experiments.keras_common import ExperimentResult
from worker.kinds.confusion import fashion
from worker.kinds.keras import KerasKind


class Regularization(KerasKind):
    name = "regularization"
    title = "Problem 3 — regularization and weight histograms"
    problem = 3
    help = "Problem 3: two Keras MLPs (plain, L2 + dropout) and histograms of their weights."
    defaults = regularization.DEFAULT_PARAMS
    result_keys = ("test_accuracy", "description")
    downloads = ("fashion-mnist",)
    all_runs_needed = True  # the histograms compare the two models

    def run_names(self, merged: dict) -> list[str]:
        return list(regularization.RUN_NAMES)

    def check_inputs(self, params: dict, settings) -> None:
        datasets.require_fashion_mnist(settings.job_datasets_dir(params))

    def experiment(self, ctx) -> ExperimentResult:
        (x_tr, y_tr), (x_te, y_te) = fashion(str(ctx.settings.job_datasets_dir(ctx.job.params)))
        return regularization.run_regularization(ctx.run.name, x_tr, y_tr, x_te, y_te, ctx.job.params["params"],
                                                 ctx.job_dir, ctx.record_epoch, ctx.should_stop, ctx.threads)

    def summarize(self, ctx, results: dict, histories: dict) -> dict:
        return regularization.summarize_regularization(ctx.job_dir, results, histories).result

    def section(self, result: dict) -> str:
        return reports.regularization_section(result)

    def summary(self, job) -> list[str]:
        result = job.result or {}
        labels = result.get("labels", {})
        return [f"{labels.get(model, model)}: test accuracy {acc:.2%}"
                for model, acc in (result.get("test_accuracy") or {}).items()]


KIND = Regularization()
