"""The student's first hour through the real `hw3-submit`: input files that are missing or malformed are one
`error:` line naming the folder and the files expected (exit 2), before any job exists; `datasets check` lists
the folder; a relative --datasets is resolved here and recorded with the job."""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import REPO, hw3
from shared.datasets import FASHION_DIR, FASHION_FILES, FASHION_INPUTS, MNIST_TEST_FILE, MNIST_TRAIN_FILE

pytestmark = pytest.mark.integration  # the real CLI in subprocesses (no worker runs)

MNIST = (MNIST_TRAIN_FILE, MNIST_TEST_FILE)
FASHION = tuple(FASHION_FILES.values())


@pytest.fixture
def env(tmp_path, real_datasets) -> dict[str, str]:
    """Embedded mode on an isolated volume; HW3_DATASETS is the real folder unless a case says otherwise."""
    environ = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "DATABASE_URL", "HW3_KINDS")}
    environ.update(HW3_DATA=str(tmp_path / "data"), HW3_DATASETS=str(real_datasets))
    return environ


def linked(folder: Path, real: Path, skip: tuple[str, ...] = ()) -> Path:
    (folder / FASHION_DIR).mkdir(parents=True)
    for name in (*MNIST, *FASHION_INPUTS, "binary_random_20fa.hdf5"):
        if name not in skip:
            (folder / name).symlink_to(real / name)
    return folder


def jobs(env) -> list:
    out = hw3("list", "--json", env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def assert_refused(proc, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and proc.stderr.count("error:") == 1, proc.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    assert proc.stdout == ""


def _write_783_columns(folder: Path) -> None:
    (folder / MNIST_TRAIN_FILE).unlink()
    with h5py.File(folder / MNIST_TRAIN_FILE, "w") as f:
        f["xdata"] = np.zeros((100, 783), np.uint8)
        f["ydata"] = np.zeros(100, np.uint8)


def _write_bad_magic(folder: Path) -> None:
    path = folder / FASHION_DIR / FASHION_FILES["train_images"]
    path.unlink()
    path.write_bytes(gzip.compress((0x0801).to_bytes(4, "big") + (3).to_bytes(4, "big") + bytes(3)))


CASES = {
    # id: (command, how the folder is made, fragments of the one error line besides the folder)
    "sweep-missing-folder": (["sweep"], None, ("does not exist", *MNIST)),
    "sweep-missing-test-file": (["sweep"], lambda f, real: linked(f, real, skip=(MNIST_TEST_FILE,)),
                                (f"{MNIST_TEST_FILE} is missing from", *MNIST)),
    "sweep-bad-header": (["sweep"], lambda f, real: _write_783_columns(linked(f, real)),
                         ("key 'xdata': has 783 columns", "expected 784 columns", *MNIST)),
    "confusion-missing-folder": (["confusion"], None, ("does not exist", *FASHION)),
    "regularization-no-fashion-folder": (["regularization"], lambda f, real: f.mkdir(),
                                         (f"{FASHION_DIR}/ is missing from", *FASHION)),
    "regularization-bad-magic": (["regularization"], lambda f, real: _write_bad_magic(linked(f, real)),
                                 ("bad magic number 0x00000801", *FASHION)),
    "human-machine-no-file": (["human-machine"], lambda f, real: linked(f, real, skip=("binary_random_20fa.hdf5",)),
                              ("no human/machine file matching binary_random*.hdf5", "--synthetic")),
    "all-missing-folder": (["all", "--synthetic"], None, ("does not exist", *MNIST)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_inputs_are_one_error_and_no_job(case, env, tmp_path, real_datasets):
    command, make, fragments = CASES[case]
    folder = tmp_path / "datasets"
    if make is not None:
        make(folder, real_datasets)
    proc = hw3(*command, "--epochs", "1", "--datasets", str(folder), env=env)
    assert_refused(proc, str(folder), *fragments)
    assert jobs(env) == []


def test_the_default_folder_is_checked_too(env, tmp_path):
    env = {**env, "HW3_DATASETS": str(tmp_path / "not-yet")}
    proc = hw3("sweep", "--wait", env=env)
    assert_refused(proc, f"the datasets folder {tmp_path / 'not-yet'} does not exist", "--download",
                   "hw3-submit datasets fetch mnist")
    assert jobs(env) == []
    assert not (tmp_path / "data" / "logs").exists()  # no local worker was started


def test_a_relative_folder_is_resolved_here_and_recorded(env, tmp_path, real_datasets):
    folder = linked(tmp_path / "inputs", real_datasets)
    relative = os.path.relpath(folder, REPO)  # hw3() runs the CLI in the repository
    job = hw3("sweep", "--epochs", "1", "--datasets", relative, env=env, check=True).stdout.strip()
    shown = hw3("status", job, env=env)
    assert f"  inputs: {folder}" in shown.stdout.splitlines(), shown.stdout
    status = json.loads(hw3("status", job, "--json", env=env, check=True).stdout)
    assert status["params"]["datasets"] == str(folder)
    missing = hw3("confusion", "--datasets", os.path.relpath(tmp_path / "missing", REPO), env=env)
    assert_refused(missing, f"the datasets folder {tmp_path / 'missing'} does not exist")
    hw3("cancel", job, env=env)


def test_every_job_records_its_folder(env, real_datasets):
    job = hw3("human-machine", "--epochs", "1", env=env, check=True).stdout.strip()
    status = json.loads(hw3("status", job, "--json", env=env, check=True).stdout)
    assert status["params"]["datasets"] == str(real_datasets)
    hw3("cancel", job, env=env)


def test_with_an_external_broker_a_folder_not_seen_here_is_left_to_the_workers(env, tmp_path, redis_server):
    env = {**env, "CELERY_BROKER_URL": redis_server.rsplit("/", 1)[0] + "/12"}  # a database of its own
    elsewhere = "/only/on/the/workers"
    job = hw3("sweep", "--epochs", "1", "--datasets", elsewhere, env=env, check=True).stdout.strip()
    assert json.loads(hw3("status", job, "--json", env=env).stdout)["params"]["datasets"] == elsewhere
    hw3("cancel", job, env=env)
    (tmp_path / "here").mkdir()
    assert_refused(hw3("sweep", "--datasets", str(tmp_path / "here"), env=env), "are missing from")
    assert [j["job_id"] for j in jobs(env)] == [job]


def test_datasets_check_lists_the_real_folder_and_an_empty_one(env, tmp_path, real_datasets):
    ok = hw3("datasets", "check", env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    lines = ok.stdout.splitlines()
    assert lines[0] == f"datasets folder: {real_datasets}" and sum("  ok  " in line for line in lines) == 7
    (tmp_path / "empty").mkdir()
    empty = hw3("datasets", "check", "--datasets", str(tmp_path / "empty"), "--json", env=env)
    assert empty.returncode == 1
    report = json.loads(empty.stdout)
    assert report["ok"] is False and {i["status"] for i in report["inputs"]} == {"missing"}
    assert len(report["inputs"]) == 7
