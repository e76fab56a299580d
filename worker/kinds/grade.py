"""Grading: the course's side. A TA's folder of submissions graded in parallel, one run per file, each file
treated as hostile. This module holds the two job kinds; the checks on files are in worker/grading.

    hw3-submit grade human-machine PATH... [--data FILE]   Problem 4's Keras models (*.h5, *.hdf5)
    hw3-submit grade mnist PATH...                         Problem 1's numpy weights (*.npz, the sweep's layout)

The path of one submission:
  1. the client (`plan`) lists the files (a folder gives its *.h5/*.hdf5 or *.npz, by name), refuses
     symbolic links, anything that is not a regular file and files over SIZE_LIMITS, and hashes the rest;
     `stage` copies them into the job folder (submissions/<run>.<suffix>) so workers on any host read them
     from the shared volume (worker/grading/submissions.py). A refused file keeps its run, which fails with the
     reason: every file given gets a row.
  2. a worker (`train`) reads the copy under a time limit (TIME_LIMIT_S, SIGALRM in the pool process;
     worker/grading/limits.py):
     - a Keras file (worker/grading/keras_files.py) is read with h5py only: the root attribute `model_config`
       (JSON) must be a Sequential or a plain functional chain of InputLayer, Dense, Dropout and Activation
       layers with KERAS_ACTIVATIONS, 20 inputs, one sigmoid output, at most KERAS_MAX_PARAMS parameters; then
       each Dense layer's kernel and bias, shapes checked before a byte is read. Keras never sees the file: the
       worker builds the checked architecture itself (cached per architecture and process: one TensorFlow per
       pool process, a model built once), sets the weights and evaluates. No layer of the file is deserialised,
       so a Lambda's bytecode is never unmarshalled, let alone run (stricter than load_model's safe_mode=True).
     - an .npz (worker/grading/npz_files.py) is read with allow_pickle=False after every array's name, dtype
       and shape were read from the .npy headers in the zip (nothing decompressed yet) and checked against the
       engine's layout (W0, b0, ..., activation; 784 in, 10 out, hidden widths up to NPZ_MAX_WIDTH); the numpy
       engine (worker/engine) evaluates it on mnist_testdata.hdf5.
  3. the job's result (`finalize`): `grades`, one row per file in the order given (file, sha256, size,
     accuracy, loss, n_params, error), grades.csv ranked, and report.md with the ranking and the failures.

Memory is bounded by construction: nothing is allocated from a file before its shapes passed the allow-list and
the parameter limits (4 MB of float32 weights for Keras, 40 MB for .npz; evaluation batches of EVAL_ROWS rows).
"""
from __future__ import annotations

import csv
import io
import os
import time
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from shared import datasets
from shared.artifacts import confined
from shared.entities import EpochRow, JobStatus
from worker.grading.keras_files import (KERAS_LAYERS, KERAS_MAX_LAYERS, KERAS_MAX_PARAMS, KERAS_MAX_UNITS,
                                        grade_keras_file)
from worker.grading.limits import TIME_LIMIT_S, GradingTimeout, time_limit
from worker.grading.npz_files import NPZ_MAX_HIDDEN, NPZ_MAX_PARAMS, NPZ_MAX_WIDTH, grade_npz_file
from worker.grading.submissions import (MB, SIZE_LIMITS, Rejected, SubmissionRefused, SubmissionRejected, collect,
                                        read_checked, refusal, refusal_note, run_names, staged_copy)
from worker.kinds.base import JobContext, JobKind, Option, Plan, RunContext, RunSpec


# -- held-out data, read once per pool process ------------------------------------------------------------------
@lru_cache(maxsize=4)
def human_machine_held_out(data: str, datasets_dir: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(x, y, label): all of `data` when given, else the validation part of the course file as Problem 4
    splits it (worker/experiments/human_machine.py split_data with its default fraction and split seed)."""
    from worker.experiments import human_machine

    path = Path(data) if data else datasets.find_human_machine(Path(datasets_dir))
    x, y = datasets.load_human_machine(path)
    if data:
        return x, y, f"all of {path} ({len(y):,} sequences, --data)"
    _, (x_val, y_val) = human_machine.split_data(x, y)
    p = human_machine.DEFAULT_PARAMS
    return x_val, y_val, (f"the validation part of {path}: the stratified {p['val_fraction']:.0%} that Problem 4 "
                          f"holds out (split seed {p['split_seed']}), {len(y_val):,} sequences")


@lru_cache(maxsize=2)
def mnist_test_set(datasets_dir: str) -> tuple[np.ndarray, np.ndarray, str]:
    x, y = datasets.mnist_test(Path(datasets_dir))
    return x, y, f"{Path(datasets_dir) / datasets.MNIST_TEST_FILE} ({len(y):,} test images)"


# -- the table ---------------------------------------------------------------------------------------------------
CSV_COLUMNS = ("rank", "file", "accuracy", "loss", "n_params", "size", "sha256", "error")


def ranked(grades: Sequence[dict]) -> list[dict]:
    """The graded rows, best first: higher accuracy, then lower loss, then the order given."""
    done = [g for g in grades if g.get("error") is None]
    return sorted(done, key=lambda g: (-g["accuracy"], g["loss"], g["index"]))


def grades_csv(grades: Sequence[dict]) -> str:
    """grades.csv: the ranked table, then the files that could not be graded with their reasons."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for rank, g in enumerate(ranked(grades), 1):
        writer.writerow({**g, "rank": rank})
    writer.writerows(g for g in grades if g.get("error") is not None)
    return buf.getvalue()


# -- the kinds ---------------------------------------------------------------------------------------------------
class GradeKind(JobKind):
    """What both grading kinds share; each says which files, how one is graded and on which data."""
    group_help = ("Grade a class's submissions in parallel: one run per file, each file checked before anything "
                  "loads it.")
    suffixes: tuple[str, ...] = ()
    accuracy_column = "accuracy"  # on the grading data, not a validation split
    metric: str = ""     # the loss's name in the report
    result_keys = ("grades", "graded", "failed", "data", "csv", "limits")

    @property
    def options(self) -> tuple[Option, ...]:
        return (Option("path", f"submissions: {' / '.join(self.suffixes)} files or folders of them", argument=True,
                       many=True, path=True),
                *self.extra_options,
                Option("time_limit", "seconds one file may take to load and evaluate; past it that file fails "
                       "alone", int, default=TIME_LIMIT_S))

    extra_options: tuple[Option, ...] = ()

    def plan(self, params: dict) -> Plan:
        limit = TIME_LIMIT_S if params.get("time_limit") is None else params["time_limit"]
        if not isinstance(limit, int) or not 1 <= limit <= 3600:
            raise ValueError(f"--time-limit {limit!r}: expected whole seconds in 1..3600")
        files = collect(params.get("path") or (), self.suffixes)
        if not files:
            raise ValueError("no submission given: PATH is a model file or a folder of them")
        runs, names = [], run_names([shown for shown, _ in files])
        for i, (shown, path) in enumerate(files):
            suffix = os.path.splitext(path)[1].lower()
            refused, sha256, size = refusal(path, suffix, self.suffixes), None, None
            if refused is None:
                try:
                    sha256, size = read_checked(path, SIZE_LIMITS[suffix])
                except SubmissionRefused as exc:
                    refused = str(exc)
            config = {"index": i, "file": shown, "source": path, "suffix": suffix, "size": size, "sha256": sha256,
                      "refused": refused}
            runs.append(RunSpec(names[i], config, 1))
        stored = {"submissions": len(runs), "time_limit": limit, **self.data_params(params)}
        folder = datasets.check_datasets_option(params.get("datasets"))
        if folder is not None:
            stored["datasets"] = folder
        return Plan(stored, runs)

    def data_params(self, params: dict) -> dict:
        return {}

    def stage(self, job_id: str, job_plan: Plan, job_dir: Path) -> None:
        """Copy each accepted file to submissions/<run><suffix>; a file that changed since `plan` read it (a
        link now, bigger, other bytes) is not copied: submissions/<run>.refused says why, and its run fails."""
        (Path(job_dir) / "submissions").mkdir(parents=True, exist_ok=True)
        for run in job_plan.runs:
            cfg = run.config
            if cfg["refused"]:
                continue
            target = confined(job_dir, staged_copy(job_dir, run.name, cfg["suffix"]))
            try:
                sha256, _ = read_checked(cfg["source"], SIZE_LIMITS[cfg["suffix"]], target)
                if sha256 != cfg["sha256"]:
                    target.unlink()
                    raise SubmissionRefused("changed between being checked and being copied")
            except SubmissionRefused as exc:
                refusal_note(job_dir, run.name).write_text(f"{exc}\n")

    def held_out(self, params: dict, settings) -> tuple[np.ndarray, np.ndarray, str]:
        """(x, y, label): the data the files are graded on, read once per process, and what it is in words."""
        raise NotImplementedError

    def ready(self, threads: int) -> None:
        """What grading needs before the first file's time limit starts (TensorFlow's import)."""

    def grade(self, path: Path, x: np.ndarray, y: np.ndarray, threads: int) -> dict:
        raise NotImplementedError

    def train(self, ctx: RunContext) -> dict:
        cfg = ctx.run.config
        if cfg["refused"]:
            raise SubmissionRefused(f"{cfg['file']}: {cfg['refused']}")
        copy, note = staged_copy(ctx.job_dir, ctx.run.name, cfg["suffix"]), refusal_note(ctx.job_dir, ctx.run.name)
        if note.is_file():
            raise SubmissionRefused(f"{cfg['file']}: {note.read_text().strip()}")
        self.ready(ctx.threads)  # outside the time limit, as is reading the data
        x, y, label = self.held_out(ctx.job.params, ctx.settings)
        start = time.perf_counter()
        try:
            with time_limit(ctx.job.params["time_limit"]):
                sha256, _ = read_checked(str(copy), SIZE_LIMITS[cfg["suffix"]])
                if sha256 != cfg["sha256"]:
                    raise Rejected(f"its copy in the job folder (sha256 {sha256[:12]}…) is not the file submitted "
                                   f"(sha256 {cfg['sha256'][:12]}…)")
                graded = self.grade(copy, x, y, ctx.threads)
        except Rejected as exc:
            raise SubmissionRejected(f"{cfg['file']}: {exc}") from None
        except (SubmissionRefused, GradingTimeout) as exc:
            raise type(exc)(f"{cfg['file']}: {exc}") from None
        seconds = time.perf_counter() - start
        ctx.record_epoch({"epoch": 1, "val_loss": graded["loss"], "val_accuracy": graded["accuracy"],
                          "seconds": seconds})
        return {"file": cfg["file"], "sha256": sha256, "size": cfg["size"], **graded, "data": label,
                "seconds": seconds}

    def finalize(self, ctx: JobContext) -> dict:
        """Every file's row in the order given (a refused, rejected or timed-out one with its error), and
        grades.csv. The job succeeds even when no file could be graded: the table is its result."""
        grades, label = [], None
        for run in sorted(ctx.job.runs, key=lambda r: r.config["index"]):
            cfg, result = run.config, run.result or {}
            label = label or result.get("data")
            error = None if run.state == "succeeded" else run.error or f"the run ended {run.state}"
            if error:  # the row names the file already: "SubmissionRejected: <file>: why" -> "SubmissionRejected: why"
                error = error.replace(f": {cfg['file']}: ", ": ", 1)
            grades.append({"index": cfg["index"], "file": cfg["file"], "run": run.name,
                           "sha256": result.get("sha256", cfg["sha256"]), "size": cfg["size"],
                           **{k: result.get(k) for k in ("accuracy", "loss", "n_params", "architecture")},
                           "error": error})
        if label is None:
            try:
                label = self.held_out(ctx.job.params, ctx.settings)[2]
            except Exception as exc:  # noqa: BLE001 - only the label of a job with no graded file
                label = f"(not read: {type(exc).__name__}: {exc})"
        (ctx.job_dir / "grades.csv").write_text(grades_csv(grades))
        graded = sum(g["error"] is None for g in grades)
        return {"grades": grades, "graded": graded, "failed": len(grades) - graded, "data": label,
                "csv": "grades.csv", "limits": self.limits()}

    def limits(self) -> str:
        return ""

    def figures(self, job: JobStatus, rows: Sequence[EpochRow], out_dir: Path) -> list[Path]:
        return []  # one number per file: the report's table says it better than a figure per file

    def report(self, job: JobStatus, rows: Sequence[EpochRow]) -> str:
        from shared.reports import markdown_table

        lines = [f"# {self.title} (job `{job.job_id}`)", ""]
        result = job.result or {}
        if job.state != "succeeded" or "grades" not in result:
            return "\n".join(lines + [f"State: **{job.state}**" + (f" — {job.error}" if job.error else "")]) + "\n"
        grades = result["grades"]
        lines += [f"Graded on {result['data']}.", "", f"{result['graded']} of {len(grades)} file(s) graded, "
                  f"{result['failed']} could not be. Limits: {result['limits']}", "", "## Ranking", ""]
        table = [[rank, g["file"], f"{g['accuracy']:.4f}", f"{g['loss']:.4f}", f"{g['n_params']:,}",
                  g["sha256"][:12]] for rank, g in enumerate(ranked(grades), 1)]
        lines += [markdown_table(["rank", "file", "accuracy", self.metric, "parameters", "sha256"], table,
                                 ["r", "l", "r", "r", "r", "l"]) if table else "No file could be graded.", ""]
        failed = [g for g in grades if g["error"] is not None]
        if failed:
            lines += ["## Not graded", ""] + [f"- `{g['file']}`: {g['error']}" for g in failed] + [""]
        lines.append("The same table, for a gradebook: [grades.csv](grades.csv) (failures last, with their reasons).")
        return "\n".join(lines) + "\n"

    def summary(self, job: JobStatus) -> list[str]:
        result = job.result or {}
        if "grades" not in result:
            return []
        lines = [f"graded {result['graded']} of {len(result['grades'])} file(s) on {result['data']}"]
        best = ranked(result["grades"])
        if best:
            lines.append(f"best: {best[0]['file']}, accuracy {best[0]['accuracy']:.2%}, {self.metric} "
                         f"{best[0]['loss']:.4f}")
        if result["failed"]:
            lines.append(f"{result['failed']} file(s) could not be graded; the report and grades.csv say why")
        return lines


class GradeHumanMachine(GradeKind):
    name = "grade-human-machine"
    command = ("grade", "human-machine")
    title = "Grades — Problem 4 models (human or machine)"
    help = ("Grade Problem 4 submissions: each PATH a Keras model file (.h5, .hdf5) or a folder of them. One run "
            "per file, in parallel: its sha256, size, accuracy and binary cross-entropy on held-out sequences, "
            "number of parameters, or why it was not graded. Files are never run: the model configuration is "
            "checked against an allow-list (InputLayer, Dense, Dropout, Activation in a chain; 20 inputs; one "
            "sigmoid output) before the weights are read, and Keras never loads the file itself.")
    suffixes = (".h5", ".hdf5")
    metric = "binary cross-entropy"
    extra_options = (Option("data", "held-out human/machine file (keys human and machine) to grade on, all of it",
                            path=True, default="the validation part of the course file binary_random*.hdf5 in "
                            "the datasets folder: the stratified 20 % Problem 4 holds out, split seed 0"),)

    def data_params(self, params: dict) -> dict:
        return {"data": str(Path(params["data"]).resolve()) if params.get("data") else None}

    def check_inputs(self, params: dict, settings) -> None:
        datasets.require_human_machine(settings.job_datasets_dir(params), params.get("data"))

    def ready(self, threads: int) -> None:
        from worker.experiments.keras_common import configure_tensorflow

        configure_tensorflow(threads)

    def held_out(self, params: dict, settings):
        return human_machine_held_out(params.get("data") or "", str(settings.job_datasets_dir(params)))

    def grade(self, path: Path, x, y, threads: int) -> dict:
        return grade_keras_file(path, x, y)

    def limits(self) -> str:
        return (f"{SIZE_LIMITS['.h5'] // MB} MB per file, {KERAS_MAX_PARAMS:,} parameters, {KERAS_MAX_LAYERS} "
                f"layers of {', '.join(KERAS_LAYERS)}, {KERAS_MAX_UNITS} units per layer.")


class GradeMnist(GradeKind):
    name = "grade-mnist"
    command = ("grade", "mnist")
    title = "Grades — Problem 1 weights (MNIST)"
    help = ("Grade Problem 1 submissions: each PATH a numpy weight file (.npz, the layout the sweep writes: W0, "
            "b0, ..., activation; see docs/grading.md) or a folder of them. One run per file, in parallel: its "
            "sha256, size, accuracy and cross-entropy on mnist_testdata.hdf5 with the numpy engine, or why it was "
            "not graded. Arrays are checked by name, dtype and shape before any is read; pickles are never loaded.")
    suffixes = (".npz",)
    metric = "cross-entropy"
    downloads = ("mnist",)

    def check_inputs(self, params: dict, settings) -> None:
        datasets.check_course_mnist(settings.job_datasets_dir(params) / datasets.MNIST_TEST_FILE)

    def held_out(self, params: dict, settings):
        return mnist_test_set(str(settings.job_datasets_dir(params)))

    def grade(self, path: Path, x, y, threads: int) -> dict:
        from worker.engine import blas_threads

        with blas_threads(threads):
            return grade_npz_file(path, x, y)

    def limits(self) -> str:
        return (f"{SIZE_LIMITS['.npz'] // MB} MB per file, {NPZ_MAX_PARAMS:,} parameters, {NPZ_MAX_HIDDEN} hidden "
                f"layers of 1..{NPZ_MAX_WIDTH} units.")


KINDS = (GradeHumanMachine(), GradeMnist())
