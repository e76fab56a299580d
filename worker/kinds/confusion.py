"""Problem 2: a Keras MLP on Fashion-MNIST and its confusion-rate matrix (one run)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from shared import datasets, reports
from worker.experiments import confusion
from worker.experiments.keras_common import ExperimentResult
from worker.kinds.keras import KerasKind, epochs_deviation

HOMEWORK_EPOCHS = 40  # what Problem 2 specifies


@lru_cache(maxsize=2)
def fashion(datasets_dir: str):
    """Fashion-MNIST, read once per worker process."""
    return datasets.load_fashion_mnist(Path(datasets_dir))


class Confusion(KerasKind):
    name = "confusion"
    title = "Problem 2 — Fashion-MNIST confusion matrix"
    problem = 2
    help = "Problem 2: a Keras MLP on Fashion-MNIST and its confusion-rate matrix."
    defaults = confusion.DEFAULT_PARAMS
    result_keys = ("test_accuracy", "test_loss", "most_confused_pair", "most_confused_for", "epochs_run")
    downloads = ("fashion-mnist",)

    def check_inputs(self, params: dict, settings) -> None:
        datasets.require_fashion_mnist(settings.job_datasets_dir(params))

    def run_names(self, merged: dict) -> list[str]:
        return ["confusion"]

    def experiment(self, ctx, resume) -> ExperimentResult:
        (x_tr, y_tr), (x_te, y_te) = fashion(str(ctx.settings.job_datasets_dir(ctx.job.params)))
        return confusion.run_confusion(x_tr, y_tr, x_te, y_te, ctx.job.params["params"], ctx.job_dir,
                                       ctx.record_epoch, ctx.should_stop, ctx.threads,
                                       checkpoint=resume.checkpoint, earlier=resume.earlier)

    def summarize(self, ctx, results: dict, histories: dict) -> dict:
        return results["confusion"]

    def curve(self, job, run) -> tuple[str, str, None]:
        return confusion.FILES["learning_curves"], confusion.curve_title(self.merged_params(job)), None

    def deviations(self, params: dict) -> list[str]:
        return epochs_deviation(self.experiment_params(params)["epochs"], HOMEWORK_EPOCHS)

    def section(self, result: dict) -> str:
        return reports.confusion_section(result)

    def summary(self, job) -> list[str]:
        result = job.result or {}
        if "most_confused_pair" not in result:
            return []
        pair = result["most_confused_pair"]
        a, b = pair["classes"]
        epochs = result["epochs_run"]
        return [f"test accuracy: {result['test_accuracy']:.2%} after {epochs} epoch{'s' if epochs != 1 else ''}",
                f"most confused pair: {a} and {b} (rates summed: {pair['rate']:.2%})",
                f"{a} taken for {b}: {pair['rate_ab']:.2%} of its test images",
                f"{b} taken for {a}: {pair['rate_ba']:.2%} of its test images"]


KIND = Confusion()
