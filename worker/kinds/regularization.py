"""Problem 3: two Keras MLPs (plain; L2 + dropout) trained in parallel, and histograms of their weights."""
from __future__ import annotations

from shared import datasets, reports
from worker.experiments import regularization
from worker.experiments.keras_common import ExperimentResult
from worker.kinds.confusion import fashion
from worker.kinds.keras import KerasKind, epochs_deviation

# What Problem 3 specifies: 40 epochs; a plain Dense(128) model and a Dense(48) one with L2 and dropout
# ("l2"/"dropout": whether the model has it; their strengths are the service's choice)
HOMEWORK_EPOCHS = 40
HOMEWORK_MODELS = {"plain": {"hidden_units": 128, "l2": False, "dropout": False},
                   "l2_dropout": {"hidden_units": 48, "l2": True, "dropout": True}}


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

    def experiment(self, ctx, resume) -> ExperimentResult:
        (x_tr, y_tr), (x_te, y_te) = fashion(str(ctx.settings.job_datasets_dir(ctx.job.params)))
        return regularization.run_regularization(ctx.run.name, x_tr, y_tr, x_te, y_te, ctx.job.params["params"],
                                                 ctx.job_dir, ctx.record_epoch, ctx.should_stop, ctx.threads,
                                                 checkpoint=resume.checkpoint, earlier=resume.earlier)

    def summarize(self, ctx, results: dict, histories: dict) -> dict:
        return regularization.summarize_regularization(ctx.job_dir, results, histories).result

    def curve(self, job, run) -> tuple[str, str, None]:
        label = regularization.MODEL_LABELS.get(run.name, run.name)
        return regularization.curve_file(run.name), f"Problem 3: {label}", None

    def deviations(self, params: dict) -> list[str]:
        merged = self.experiment_params(params)
        out = epochs_deviation(merged["epochs"], HOMEWORK_EPOCHS)
        for name, homework in HOMEWORK_MODELS.items():
            arch = {**regularization.MODELS.get(name, {}), **merged["models"].get(name, {})}  # as trained
            if arch["hidden_units"] != homework["hidden_units"]:
                out.append(f"the {name} model has {arch['hidden_units']} hidden units instead of "
                           f"{homework['hidden_units']}")
            for key, label in (("l2", "L2"), ("dropout", "dropout")):
                if bool(arch[key]) and not homework[key]:
                    out.append(f"the {name} model has {label} {arch[key]:g}, not none")
                elif homework[key] and not arch[key]:
                    out.append(f"the {name} model has no {label}")
        return out

    def section(self, result: dict) -> str:
        return reports.regularization_section(result)

    def summary(self, job) -> list[str]:
        result = job.result or {}
        labels = result.get("labels", {})
        return [f"{labels.get(model, model)}: test accuracy {acc:.2%}"
                for model, acc in (result.get("test_accuracy") or {}).items()]


KIND = Regularization()
