"""Problem 4: a Keras MLP telling human-typed from machine-generated 20-bit sequences; one run per
(optimizer, regularization) pair, the best epoch of each kept, the best run's model saved as model.hdf5."""
from __future__ import annotations

from fnmatch import fnmatch
from functools import lru_cache
from pathlib import Path

from shared import datasets, reports
from worker.experiments import human_machine
from worker.experiments.keras_common import ExperimentResult
from worker.kinds.base import Option
from worker.kinds.keras import KerasKind

# What Problem 4 specifies: minibatches of 16, 80 % of the course file to train and 20 % to validate
HOMEWORK_BATCH_SIZE = 16
HOMEWORK_VAL_FRACTION = 0.2


@lru_cache(maxsize=4)
def human_machine_data(source: str, datasets_dir: str):
    """The human/machine sequences: `synthetic`, a file path, or `""` for the folder's binary_random*.hdf5."""
    if source == "synthetic":
        return datasets.synthetic_human_machine()
    path = Path(source) if source else datasets.find_human_machine(Path(datasets_dir))
    return datasets.load_human_machine(path)


class HumanMachine(KerasKind):
    name = "human-machine"
    title = "Problem 4 — human-typed or machine-generated?"
    problem = 4
    help = "Problem 4: a Keras MLP telling human-typed from machine-generated 20-bit sequences."
    defaults = human_machine.DEFAULT_PARAMS
    extra_options = (
        Option("data", "HDF5 file with the keys human and machine (default: binary_random*.hdf5 in the "
               "datasets folder)", path=True),
        Option("synthetic", "train on a generated human-like set instead of the course file", flag=True),
    )
    result_keys = ("val_accuracy", "best_run", "model_path", "best_epoch", "ranking")
    kept_epoch = "best"  # each run keeps its epoch of best validation accuracy

    def run_names(self, merged: dict) -> list[str]:
        return human_machine.run_names(merged)

    def data_source(self, params: dict) -> str | None:
        if params.get("data") and params.get("synthetic"):
            raise ValueError("--data and --synthetic exclude each other")
        if params.get("synthetic"):
            return "synthetic"
        return str(Path(params["data"]).resolve()) if params.get("data") else None

    def check_inputs(self, params: dict, settings) -> None:
        if params.get("data") != "synthetic":  # params["data"]: the plan's source, a resolved path or None
            datasets.require_human_machine(settings.job_datasets_dir(params), params.get("data"))

    def experiment(self, ctx, resume) -> ExperimentResult:
        x, y = human_machine_data(ctx.job.params.get("data") or "",
                                  str(ctx.settings.job_datasets_dir(ctx.job.params)))
        return human_machine.run_human_machine(ctx.run.name, x, y, ctx.job.params["params"], ctx.job_dir,
                                               ctx.record_epoch, ctx.should_stop, ctx.threads,
                                               checkpoint=resume.checkpoint, earlier=resume.earlier)

    def deviations(self, params: dict) -> list[str]:
        merged = self.experiment_params(params)
        out = []
        default = self.defaults["epochs"]
        if merged["epochs"] < default:  # the homework sets no number: a short run must not pass for the real one
            out.append(f"only {merged['epochs']} epoch{'' if merged['epochs'] == 1 else 's'} per run (the homework "
                       f"sets no number; the default is {default})")
        if merged["batch_size"] != HOMEWORK_BATCH_SIZE:
            out.append(f"batch size {merged['batch_size']} instead of {HOMEWORK_BATCH_SIZE}")
        if merged["val_fraction"] != HOMEWORK_VAL_FRACTION:
            out.append(f"train/validation split {_split(merged['val_fraction'])} instead of "
                       f"{_split(HOMEWORK_VAL_FRACTION)}")
        source = params.get("data")  # the plan's data source: None is the folder's course file
        if source == "synthetic":
            out.append("trained on generated (--synthetic) data instead of the course file")
        elif source and not fnmatch(Path(source).name, datasets.HUMAN_MACHINE_PATTERN):
            out.append(f"trained on {Path(source).name} instead of the course file")
        return out

    show_loss = False

    def curve(self, job, run) -> tuple[str, str, int | None]:
        """The run's curve, titled with its kept and final validation accuracy and marking the kept epoch once
        the run has ended (its name alone before)."""
        if not run.result or "best_epoch" not in run.result:
            return human_machine.curve_file(run.name), run.name, None
        return (human_machine.curve_file(run.name), human_machine.curve_title(run.name, run.result),
                run.result["best_epoch"])

    def summarize(self, ctx, results: dict, histories: dict) -> dict:
        return human_machine.summarize_human_machine(ctx.job_dir, results, histories,
                                                     self.merged_params(ctx.job)).result

    def section(self, result: dict) -> str:
        return reports.human_machine_section(result)

    def summary(self, job) -> list[str]:
        result = job.result or {}
        if "best_run" not in result:
            return []
        return [f"best run: {result['best_run']}, validation accuracy {result['val_accuracy']:.2%} at kept "
                f"epoch {result['best_epoch']}",
                f"its model: {result['model_path']} (in the artifacts folder)"]


def _split(val_fraction: float) -> str:
    """A train/validation split in percent: 0.2 -> "80/20"."""
    return f"{100 * (1 - val_fraction):.3g}/{100 * val_fraction:.3g}"


KIND = HumanMachine()
