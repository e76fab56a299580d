"""Faults with real processes: a worker killed by SIGKILL (whole worker, or one pool process), Redis restarted
mid-run, a task past its time limit. Each job ends with exactly one row per epoch, nothing stored is lost, and
a run resumes from its last epoch checkpoint rather than from scratch.

`scripts/kill-stress` repeats the SIGKILL test with varied kill points and reports how many trials passed
(HW3_KILL_AFTER_EPOCHS and HW3_KILL_PHASE choose the kill point of one trial)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import _free_port, hw3
from shared.store import Store

pytestmark = [pytest.mark.integration, pytest.mark.e2e]  # real workers killed, Redis restarted, jobs via the CLI

EPOCHS = 6
# batch 50 on 10,000 images: ~0.5 s per epoch for a run, a few seconds per epoch of the 60,000-image retrain
SWEEP = ["sweep", "--epochs", str(EPOCHS), "--train-size", "10000", "--batch-size", "50", "--activations", "relu"]


def _store(env) -> Store:
    return Store(f"sqlite:///{env['HW3_DATA']}/hw3.sqlite", lease_seconds=float(env.get("HW3_LEASE_SECONDS", 120)))


def _poll(fn, timeout=300, interval=0.05, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def _rows(env, job_id) -> dict[tuple[str, int], tuple[int, str]]:
    """(run, epoch) -> (row id, recorded_at), straight from the SQLite file."""
    with sqlite3.connect(f"{env['HW3_DATA']}/hw3.sqlite") as db:
        return {(name, epoch): (rid, at) for name, epoch, rid, at in db.execute(
            "SELECT runs.name, epochs.epoch, epochs.id, epochs.recorded_at FROM epochs JOIN runs "
            "ON runs.id = epochs.run_id WHERE runs.job_id = ?", (job_id,))}


def _exactly_one_row_per_epoch(env, status) -> None:
    rows = json.loads(hw3("metrics", status.job_id, "--format", "json", env=env, check=True).stdout)
    keys = [(r["run"], r["epoch"]) for r in rows]
    assert len(keys) == len(set(keys)), "duplicated rows"
    assert sorted(keys) == sorted((r.name, e) for r in status.runs for e in range(1, EPOCHS + 1))


def _kept_rows(before: dict, after: dict) -> int:
    """How many rows written before the fault are untouched after it (same id and time). Each epoch's row is
    written before its checkpoint, so at most the last row before a kill may be written again."""
    kept = [k for k in before if after.get(k) == before[k]]
    assert len(kept) >= len(before) - 1, (before, after)
    return len(kept)


def _checkpoint(env, job_id, name) -> Path:
    return Path(env["HW3_DATA"]) / "artifacts" / job_id / "runs" / name / "checkpoint.npz"


def _checkpoint_epoch(path: Path) -> int:
    with np.load(path, allow_pickle=False) as f:
        return json.loads(str(f["meta"]))["epoch"]


@pytest.mark.parametrize("phase", [os.environ.get("HW3_KILL_PHASE", "run")])
def test_a_worker_killed_mid_run_is_replaced_and_the_run_resumes(hw3_env, redis_server, start_worker, phase):
    """SIGKILL to the whole worker (main process and pool). With no worker left the run shows as lost; a new
    worker notices the silent lease, queues the run again and it resumes from its checkpoint."""
    kill_after = int(os.environ.get("HW3_KILL_AFTER_EPOCHS", "2"))
    env = {**hw3_env, "CELERY_BROKER_URL": redis_server, "HW3_LEASE_SECONDS": "3"}
    store = _store(env)
    first = start_worker(env, concurrency=1, name="first")
    job_id = hw3(*SWEEP, "--lrs", "0.04", env=env, check=True).stdout.strip()
    name = "relu-lr0.04" if phase == "run" else "final"

    def progressed():  # K epochs recorded and at least one checkpoint written (atomically) to resume from
        runs = {r.name: r for r in store.job_status(job_id).runs}
        return name in runs and runs[name].epochs_done >= kill_after and _checkpoint(env, job_id, name).exists()

    _poll(progressed, timeout=600, what=f"{kill_after} epochs of {name}")
    first.stop(signal.SIGKILL)
    before = _rows(env, job_id)
    killed = {r.name: r for r in store.job_status(job_id).runs}[name]
    assert killed.state == "running" and killed.epochs_done < EPOCHS, "the kill came too late"
    resume_from = _checkpoint_epoch(_checkpoint(env, job_id, name))

    # no worker left: the status says so once the lease has run out
    lost = _poll(lambda: (s := json.loads(hw3("status", job_id, "--json", env=env).stdout))["lost_runs"] and s,
                 timeout=30, interval=0.5, what="the run to show as lost")
    assert lost["lost_runs"] == [name] and lost["state"] == "running"
    assert "worker presumed lost" in hw3("status", job_id, env=env).stdout

    second = start_worker(env, concurrency=1, name="second")
    status = _poll(lambda: (s := store.job_status(job_id)).state not in ("queued", "running") and s,
                   timeout=900, interval=0.5, what="the job to end")
    assert status.state == "succeeded", (status, second.log()[-3000:])
    run = {r.name: r for r in status.runs}[name]
    assert run.attempts == 2 and run.worker.startswith("second@")
    _exactly_one_row_per_epoch(env, status)
    after = _rows(env, job_id)
    _kept_rows(before, after)
    # resumed, not restarted: the rows of the epochs in the checkpoint were not recorded again
    assert resume_from >= 1 and all(after[k] == v for k, v in before.items() if k[0] == name and k[1] <= resume_from)
    assert "queued again" in second.log()


def test_a_killed_pool_process_is_redelivered_at_once(hw3_env, redis_server, start_worker):
    """SIGKILL to the pool process running the task: Celery requeues it (acks late, reject on worker lost), a
    fresh pool process of the same worker takes the dead process's lease without waiting for it to expire."""
    env = {**hw3_env, "CELERY_BROKER_URL": redis_server, "HW3_LEASE_SECONDS": "600"}
    store = _store(env)
    worker = start_worker(env, concurrency=1, name="pool")
    job_id = hw3(*SWEEP, "--lrs", "0.04", env=env, check=True).stdout.strip()
    run = _poll(lambda: (r := store.job_status(job_id).runs[0]).epochs_done >= 2 and r,
                what="2 epochs")
    pid = store.run_info(run.run_id).pid
    os.kill(pid, signal.SIGKILL)
    before = _rows(env, job_id)
    status = _poll(lambda: (s := store.job_status(job_id)).state not in ("queued", "running") and s,
                   timeout=900, interval=0.5, what="the job to end")
    assert status.state == "succeeded", (status, worker.log()[-3000:])
    assert status.runs[0].attempts == 2 and store.run_info(run.run_id).pid != pid
    _exactly_one_row_per_epoch(env, status)
    assert _kept_rows(before, _rows(env, job_id)) >= 1
    assert worker.proc.poll() is None


def _start_redis(port: int, directory: Path) -> subprocess.Popen:
    proc = subprocess.Popen([shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
                             "--dir", str(directory), "--appendonly", "yes", "--save", ""],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    _poll(up, timeout=10, what="redis-server")
    return proc


def test_redis_restarted_mid_run(hw3_env, start_worker, tmp_path):
    """The broker goes away while a run trains and another waits in its queue; after the restart the worker
    reconnects, the queued run is delivered, the job finishes, and nothing recorded is lost."""
    port, directory = _free_port(), tmp_path / "redis"
    directory.mkdir()
    redis = _start_redis(port, directory)
    env = {**hw3_env, "CELERY_BROKER_URL": f"redis://127.0.0.1:{port}/0"}
    store = _store(env)
    worker = start_worker(env, concurrency=1, name="reconnect")
    try:
        job_id = hw3(*SWEEP, "--lrs", "0.02,0.04", env=env, check=True).stdout.strip()
        _poll(lambda: any(r.epochs_done >= 2 for r in store.job_status(job_id).runs), what="2 epochs")
        redis.terminate()  # a clean shutdown: Redis writes its append-only file and exits
        redis.wait(10)
        before = _rows(env, job_id)
        assert json.loads(hw3("status", job_id, "--json", env=env).stdout)["state"] == "running"
        time.sleep(3)
        redis = _start_redis(port, directory)
        status = _poll(lambda: (s := store.job_status(job_id)).state not in ("queued", "running") and s,
                       timeout=900, interval=0.5, what="the job to end")
        assert status.state == "succeeded", (status, worker.log()[-3000:])
        _exactly_one_row_per_epoch(env, status)
        assert _kept_rows(before, _rows(env, job_id)) == len(before)  # nothing re-done, nothing lost
        assert worker.proc.poll() is None
    finally:
        worker.stop()
        redis.terminate()
        redis.wait(10)


def test_a_task_past_its_time_limit_fails_with_the_reason(hw3_env, redis_server, start_worker):
    env = {**hw3_env, "CELERY_BROKER_URL": redis_server, "HW3_TASK_TIME_LIMIT": "12"}
    worker = start_worker(env, concurrency=1, name="limit")
    proc = hw3("sweep", "--epochs", "500", "--train-size", "10000", "--activations", "relu", "--lrs", "0.04",
               "--wait", "--json", env=env, timeout=300)
    status = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert proc.returncode == 1 and status["state"] == "failed"
    run = status["runs"][0]
    assert run["state"] == "failed" and "TimeLimitExceeded: the task ran past its soft time limit of 11 s" in run["error"]
    assert 1 <= run["epochs_done"] < 500  # the epochs before the limit stay
    assert "relu-lr0.04: TimeLimitExceeded" in status["error"]
    # the worker keeps serving
    quick = hw3("sweep", "--epochs", "1", "--train-size", "1000", "--activations", "relu", "--lrs", "0.04",
                "--wait", "--json", env=env, timeout=300)
    assert quick.returncode == 0, quick.stdout + worker.log()[-3000:]
