"""Grading end to end: the real `hw3-submit grade ...` CLI, a real Celery worker on a real Redis, the real course
files. A TA's folder with valid and hostile files is graded in parallel; every file gets a row in the order given,
the hostile ones fail alone with their reasons (the worker keeps serving), and the report, the metrics and
grades.csv come back through `report`, `metrics` and `fetch`."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import hw3

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture
def env(hw3_env, redis_server):
    return {**hw3_env, "CELERY_BROKER_URL": redis_server}


def keras_class(folder: Path, marker: Path) -> None:
    """a/b/c: valid Problem 4 models (the job's own builder and saver, with dropout, a functional one);
    d: a Lambda layer whose code would create `marker`; e: a symbolic link to a."""
    import keras

    from worker.experiments.human_machine import save_hdf5
    from worker.experiments.keras_common import build_mlp

    keras.utils.set_random_seed(3)
    save_hdf5(build_mlp(20, 20, 1, output_activation="sigmoid"), folder / "a-problem4.h5")
    save_hdf5(build_mlp(20, 20, 1, dropout=0.2, output_activation="sigmoid"), folder / "b-dropout.hdf5")
    inputs = keras.Input(shape=(20,))
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dense(6, activation="tanh")(inputs))
    save_hdf5(keras.Model(inputs, outputs), folder / "c-functional.h5")
    hostile = eval(f"lambda t: (open({str(marker)!r}, 'w').close(), t)[1]")
    save_hdf5(keras.Sequential([keras.Input(shape=(20,)), keras.layers.Dense(20, activation="relu"),
                                keras.layers.Lambda(hostile, name="lambda"),
                                keras.layers.Dense(1, activation="sigmoid")]), folder / "d-lambda.h5")
    marker.unlink()  # building the model ran the lambda once, in this process
    os.symlink(folder / "a-problem4.h5", folder / "e-link.h5")


def test_a_class_folder_of_keras_models_is_graded_in_order_and_hostile_files_fail_alone(env, start_worker, tmp_path,
                                                                                         real_datasets):
    import keras

    from shared import datasets
    from worker.experiments.human_machine import split_data

    folder, marker = tmp_path / "class", tmp_path / "lambda-ran"
    folder.mkdir()
    keras_class(folder, marker)
    worker = start_worker(env, concurrency=2)
    proc = hw3("grade", "human-machine", str(folder), "--wait", "--json", env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:] + worker.log()[-3000:]
    status = json.loads(proc.stdout)
    assert status["kind"] == "grade-human-machine" and status["state"] == "succeeded"
    grades = status["result"]["grades"]
    names = ["a-problem4.h5", "b-dropout.hdf5", "c-functional.h5", "d-lambda.h5", "e-link.h5"]
    assert [g["file"] for g in grades] == [str(folder / n) for n in names]
    assert [g["error"] is None for g in grades] == [True, True, True, False, False]
    assert grades[3]["error"] == ("SubmissionRejected: layer 'lambda' of class \"Lambda\" is not allowed; allowed: "
                                  "InputLayer, Dense, Dropout, Activation")
    assert grades[4]["error"] == (f"SubmissionRefused: a symbolic link (to {folder / 'a-problem4.h5'}); only regular "
                                  "files are graded, give the file itself")
    runs = {r["name"]: r for r in status["runs"]}
    reason = grades[3]["error"].removeprefix("SubmissionRejected: ")
    assert runs["004-d-lambda"]["error"] == f"SubmissionRejected: {folder / 'd-lambda.h5'}: {reason}"  # names the file
    assert not marker.exists()  # the Lambda's code never ran, on the worker or anywhere
    assert worker.proc.poll() is None  # and the worker keeps serving

    # the numbers are the ones tf.keras computes on Problem 4's validation part of the course file
    x, y = datasets.load_human_machine(datasets.find_human_machine(real_datasets))
    _, (x_val, y_val) = split_data(x, y)
    assert status["result"]["data"].startswith(f"the validation part of {real_datasets}/binary_random")
    assert status["result"]["data"].endswith(f"(split seed 0), {len(y_val):,} sequences")
    for g, name in zip(grades[:3], names):
        model = keras.models.load_model(folder / name, compile=False)
        model.compile(loss="binary_crossentropy", metrics=["accuracy"])
        loss, accuracy = model.evaluate(x_val, y_val.reshape(-1, 1), verbose=0)
        assert g["accuracy"] == pytest.approx(accuracy, abs=1e-7) and g["loss"] == pytest.approx(loss, rel=1e-5)
        assert g["sha256"] and g["size"] == (folder / name).stat().st_size and g["n_params"] > 0

    job_id = status["job_id"]
    ranked = sorted(grades[:3], key=lambda g: (-g["accuracy"], g["loss"]))
    report = hw3("report", job_id, env=env, check=True).stdout
    assert "| rank | file | accuracy | binary cross-entropy | parameters | sha256 |" in report
    for rank, g in enumerate(ranked, 1):
        assert f"| {rank} | {g['file']} | {g['accuracy']:.4f} |" in report
    assert "## Not graded" in report and f"- `{grades[4]['file']}`: {grades[4]['error']}" in report
    rows = json.loads(hw3("metrics", job_id, "--json", env=env, check=True).stdout)
    assert sorted(r["val_accuracy"] for r in rows) == sorted(g["accuracy"] for g in grades[:3])

    dest = tmp_path / "fetched"
    fetched = json.loads(hw3("fetch", job_id, "--dest", str(dest), "--json", env=env, check=True).stdout)
    assert str(dest / "grades.csv") in fetched and str(dest / "report.md") in fetched
    with open(dest / "grades.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [r["file"] for r in table] == [g["file"] for g in ranked] + [grades[3]["file"], grades[4]["file"]]
    assert [r["rank"] for r in table] == ["1", "2", "3", "", ""]
    assert table[3]["error"] == grades[3]["error"]


def test_grade_mnist_grades_sweep_layout_weights_with_the_numpy_engine(env, start_worker, tmp_path, real_datasets):
    from shared import datasets
    from worker.engine import MLP, evaluate

    folder, marker = tmp_path / "class", tmp_path / "unpickled"
    folder.mkdir()
    models = {"alice.npz": MLP.initialize((784, 64, 10), "relu", rng=1),
              "bob.npz": MLP.initialize((784, 32, 16, 10), "tanh", rng=2)}
    for name, model in models.items():
        model.save_npz(folder / name)

    class Touch:
        def __reduce__(self):
            return open, (str(marker), "w")

    np.savez(folder / "carol.npz", W0=np.array([Touch()], dtype=object), b0=np.zeros(10), activation=np.array("relu"))
    start_worker(env, concurrency=2)
    proc = hw3("grade", "mnist", str(folder / "bob.npz"), str(folder), "--wait", "--json", env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    status = json.loads(proc.stdout)
    grades = status["result"]["grades"]
    assert [Path(g["file"]).name for g in grades] == ["bob.npz", "alice.npz", "carol.npz"]  # as given, once each
    x, y = datasets.mnist_test(real_datasets)
    for g in grades[:2]:
        expected = evaluate(models[Path(g["file"]).name], x, y)
        assert g["error"] is None
        assert g["accuracy"] == pytest.approx(expected.accuracy, abs=1e-4)
        assert g["loss"] == pytest.approx(expected.loss, rel=1e-4)
    assert grades[2]["error"] == ("SubmissionRejected: array 'W0' has dtype object (pickled Python objects, never "
                                  "loaded); expected float32 or float64")
    assert not marker.exists()
    assert status["result"]["data"] == f"{real_datasets / 'mnist_testdata.hdf5'} (10,000 test images)"
    assert "| rank | file | accuracy | cross-entropy |" in hw3("report", status["job_id"], env=env, check=True).stdout


def test_a_file_past_the_time_limit_fails_alone_inside_a_real_pool_process(env, start_worker, tmp_path):
    from worker.engine import MLP

    env = {**env, "HW3_KINDS": "tests.slowgradekind"}
    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("fast.npz", "slow.npz"):
        MLP.initialize((784, 8, 10), "relu", rng=0).save_npz(folder / name)
    worker = start_worker(env, concurrency=1)  # one pool process: the fast file comes after the slow one there
    proc = hw3("grade", "slow", str(folder / "slow.npz"), str(folder / "fast.npz"), "--time-limit", "2", "--wait",
               "--json", env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:] + worker.log()[-3000:]
    grades = json.loads(proc.stdout)["result"]["grades"]
    assert grades[0]["error"] == "GradingTimeout: loading and evaluating took longer than the time limit of 2 s"
    assert grades[1]["error"] is None and 0 <= grades[1]["accuracy"] <= 1
    assert worker.proc.poll() is None
