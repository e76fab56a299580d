"""The sweep end to end through the real CLI, real Celery workers, real Redis and the embedded SQLite broker."""
from __future__ import annotations

import json
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import hw3
from shared.artifacts import sha256_of
from shared.store import Store

pytestmark = [pytest.mark.integration, pytest.mark.e2e]  # whole jobs through the CLI and real workers

QUICK = ["--epochs", "2", "--train-size", "5000"]
PNG = b"\x89PNG\r\n\x1a\n"


def _job_dir(env, job_id) -> Path:
    return Path(env["HW3_DATA"]) / "artifacts" / job_id


def _check_finished_sweep(env: dict, status: dict, n_runs: int) -> None:
    assert status["state"] == "succeeded", status
    runs = status["runs"]
    assert len(runs) == n_runs + 1 and runs[-1]["name"] == "final"
    assert all(r["state"] == "succeeded" and r["epochs_done"] == r["epochs_total"] == 2 for r in runs)
    assert status["result"]["test_accuracy"] > 0.9
    assert status["result"]["chosen"]["run"] in {r["name"] for r in runs}
    rows = json.loads(hw3("metrics", status["job_id"], "--format", "json", env=env, check=True).stdout)
    assert len(rows) == 2 * (n_runs + 1)
    assert sorted({(r["run"], r["epoch"]) for r in rows}) == sorted((r["name"], e) for r in runs for e in (1, 2))
    base = _job_dir(env, status["job_id"])
    for r in runs:
        assert (base / "runs" / r["name"] / "curve.png").read_bytes().startswith(PNG)
    assert (base / "overview.png").read_bytes().startswith(PNG)
    report = hw3("report", status["job_id"], env=env, check=True).stdout
    assert "Final test accuracy" in report and "784 → 512 → 256 → 10" in report
    assert f"{100 * status['result']['test_accuracy']:.2f}%" in report


def test_sweep_on_the_embedded_broker_needs_no_server(hw3_env, tmp_path):
    proc = hw3("sweep", *QUICK, "--wait", "--json", env=hw3_env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout[proc.stdout.index("{"):])
    _check_finished_sweep(hw3_env, status, 6)

    # artifacts are recorded with size and sha256, and fetch copies exactly those
    store = Store(f"sqlite:///{hw3_env['HW3_DATA']}/hw3.sqlite")
    arts = store.artifacts(status["job_id"])
    assert {"report.md", "overview.png", "runs/final/weights.npz"} <= {a.path for a in arts}
    dest = tmp_path / "fetched"
    hw3("fetch", status["job_id"], "--dest", str(dest), env=hw3_env, check=True)
    for a in arts:
        assert sha256_of(dest / a.path) == a.sha256

    # plot re-renders every figure from the database rows into any folder
    out = tmp_path / "plots"
    listed = json.loads(hw3("plot", status["job_id"], "--out", str(out), "--json", env=hw3_env, check=True).stdout)
    assert len(listed) == 8 and all(Path(p).read_bytes().startswith(PNG) for p in listed)
    assert "revision 0004" in hw3("db", "upgrade", env=hw3_env, check=True).stdout


def test_sweep_through_redis_and_a_separate_worker(hw3_env, redis_server, start_worker):
    env = {**hw3_env, "CELERY_BROKER_URL": redis_server}
    worker = start_worker(env, concurrency=2)
    proc = hw3("sweep", *QUICK, "--activations", "relu", "--lrs", "0.02,0.04", "--wait", "--json", env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr + worker.log()
    status = json.loads(proc.stdout[proc.stdout.index("{"):])
    _check_finished_sweep(env, status, 2)
    assert {r["worker"] for r in status["runs"]} == {"test@" + status["runs"][0]["worker"].split("@")[1]}


def _wait_state(env, job_id, predicate, timeout=240) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = json.loads(hw3("status", job_id, "--json", env=env).stdout)
        if predicate(status):
            return status
        time.sleep(0.3)
    raise AssertionError(f"timed out; last status {status}")


def test_rows_appear_live_and_cancel_stops_at_an_epoch_boundary(hw3_env, redis_server, start_worker):
    env = {**hw3_env, "CELERY_BROKER_URL": redis_server}
    start_worker(env, concurrency=2)
    job_id = hw3("sweep", "--epochs", "40", "--train-size", "5000", env=env, check=True).stdout.strip()
    live = _wait_state(env, job_id, lambda s: any(r["epochs_done"] >= 1 for r in s["runs"]))
    assert live["state"] == "running" and live["eta_seconds"] is not None
    assert "cancel requested" in hw3("cancel", job_id, env=env, check=True).stdout
    status = _wait_state(env, job_id, lambda s: s["state"] not in ("queued", "running"))
    assert status["state"] == "cancelled"
    assert all(r["state"] == "cancelled" for r in status["runs"])
    assert all(r["epochs_done"] < 40 for r in status["runs"]) and "final" not in {r["name"] for r in status["runs"]}
    rows = json.loads(hw3("metrics", job_id, "--format", "json", env=env, check=True).stdout)
    assert len(rows) == sum(r["epochs_done"] for r in status["runs"]) >= 1  # rows stay
    assert hw3("status", job_id, env=env).returncode == 1


def test_two_jobs_at_once_share_the_workers(hw3_env, redis_server, start_worker):
    env = {**hw3_env, "CELERY_BROKER_URL": redis_server}
    start_worker(env, concurrency=2)
    jobs = [hw3("sweep", *QUICK, "--activations", act, "--lrs", "0.04", env=env, check=True).stdout.strip()
            for act in ("relu", "tanh")]
    finals = [_wait_state(env, j, lambda s: s["state"] not in ("queued", "running")) for j in jobs]
    assert [s["state"] for s in finals] == ["succeeded", "succeeded"]
    listed = json.loads(hw3("list", "--json", env=env, check=True).stdout)
    assert set(jobs) <= {j["job_id"] for j in listed}


def test_a_bad_training_file_fails_the_job_with_the_loader_message(hw3_env, redis_server, start_worker, tmp_path):
    bad = tmp_path / "bad-datasets"
    bad.mkdir()
    (bad / "mnist_testdata.hdf5").symlink_to(Path(hw3_env["HW3_DATASETS"]) / "mnist_testdata.hdf5")
    pixels = np.full((60000, 784), 0.5, np.float32)
    pixels[7, 1] = 300  # the shapes are right, so the client's header check passes: only the loader sees this
    with h5py.File(bad / "mnist_traindata.hdf5", "w") as f:
        f["xdata"] = pixels
        f["ydata"] = np.zeros(60000, np.uint8)
    env = {**hw3_env, "CELERY_BROKER_URL": redis_server, "HW3_DATASETS": str(bad)}
    worker = start_worker(env, concurrency=1)
    for _ in range(2):  # the worker keeps serving after a failed job
        proc = hw3("sweep", *QUICK, "--activations", "relu", "--lrs", "0.04", "--wait", "--json", env=env)
        assert proc.returncode == 1
        status = json.loads(proc.stdout[proc.stdout.index("{"):])
        assert status["state"] == "failed"
        error = status["error"]
        assert "mnist_traindata.hdf5" in error and "xdata" in error and "above 255" in error
    assert worker.proc.poll() is None
