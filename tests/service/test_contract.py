"""The job-kind contract end to end: a kind defined only in the tests (tests/toykind.py) is registered by name,
submitted through the real CLI, trained by a real Celery worker, finalized, plotted and reported, with no edit
to any other module."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import hw3

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture
def toy_env(hw3_env, redis_server):
    return {**hw3_env, "CELERY_BROKER_URL": redis_server, "HW3_KINDS": "tests.toykind"}


def _wait(env, job_id, timeout=180) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = json.loads(hw3("status", job_id, "--json", env=env).stdout)
        if status["state"] not in ("queued", "running"):
            return status
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not end: {status}")


def test_a_kind_defined_in_the_tests_runs_end_to_end(toy_env, start_worker):
    help_text = hw3("--help", env=toy_env, check=True).stdout
    assert "toy" in help_text and "Two runs of made-up epochs" in help_text
    toy_help = " ".join(hw3("toy", "--help", env=toy_env, check=True).stdout.split())  # unwrapped
    assert "one made-up learning rate per run [default: 0.1,0.2]" in toy_help
    assert hw3("toy", "--epochs", "99", env=toy_env).returncode == 2  # the kind's own validation, exit 2

    worker = start_worker(toy_env, concurrency=2)
    job_id = hw3("toy", "--epochs", "4", env=toy_env, check=True).stdout.strip()
    status = _wait(toy_env, job_id)
    assert status["state"] == "succeeded", worker.log()[-3000:]
    assert status["kind"] == "toy"
    assert [(r["name"], r["epochs_done"], r["state"]) for r in status["runs"]] == [
        ("toy-0.1", 4, "succeeded"), ("toy-0.2", 4, "succeeded")]
    # status --json shows the kind's result keys; the whole result (with "all" and "rows") stays in the store
    assert set(status["result"]) == {"best_run", "best_val_accuracy"}
    assert status["result"]["best_run"] == "toy-0.2"

    rows = json.loads(hw3("metrics", job_id, "--json", env=toy_env, check=True).stdout)
    assert [(r["run"], r["epoch"]) for r in rows] == [(n, e) for n in ("toy-0.1", "toy-0.2") for e in range(1, 5)]

    job_dir = Path(toy_env["HW3_DATA"]) / "artifacts" / job_id
    report = hw3("report", job_id, env=toy_env, check=True).stdout
    assert f"job `{job_id}`" in report and "Best run: toy-0.2" in report and "from 8 epoch rows" in report
    # the figures were drawn by the service from the rows, through the contract's default learning curves
    for name in ("toy-0.1", "toy-0.2"):
        assert (job_dir / "runs" / name / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = Path(toy_env["HW3_DATA"]) / "plots"
    printed = hw3("plot", job_id, "--out", str(out), env=toy_env, check=True).stdout.split()
    assert sorted(Path(p).relative_to(out).as_posix() for p in printed) == [
        "runs/toy-0.1/curve.png", "runs/toy-0.2/curve.png"]
    fetched = json.loads(hw3("fetch", job_id, "--dest", str(out / "fetched"), "--json", env=toy_env,
                             check=True).stdout)
    assert {Path(p).relative_to(out / "fetched").as_posix() for p in fetched} >= {
        "report.md", "runs/toy-0.1/toy.txt", "runs/toy-0.2/curve.png"}


def test_a_failed_run_of_a_new_kind_is_reported_and_the_job_still_ends(toy_env, start_worker):
    start_worker(toy_env, concurrency=2)
    job_id = hw3("toy", "--fail", "toy-0.2", "--epochs", "2", env=toy_env, check=True).stdout.strip()
    status = _wait(toy_env, job_id)
    assert status["state"] == "succeeded"
    runs = {r["name"]: r for r in status["runs"]}
    assert runs["toy-0.2"]["state"] == "failed"
    assert runs["toy-0.2"]["error"] == "RuntimeError: toy-0.2 was asked to fail"
    assert status["result"]["best_run"] == "toy-0.1"
