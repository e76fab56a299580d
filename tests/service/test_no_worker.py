"""A job that no worker takes says so: `status` shows "waiting for a worker" (none has ever reported) or "no
worker alive since <time>" instead of an ETA. Workers report themselves alive from their main process (the
workers table) every heartbeat interval; a clean stop says so at once."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, hw3
from shared.store import Store

pytestmark = [pytest.mark.integration, pytest.mark.e2e]  # both backends; a real worker on Redis

LEASE = 0.5
RUNS = [{"name": "a", "config": {}, "epochs_total": 2}]
SMALL = ["--train-size", "1000", "--epochs", "2", "--hidden", "64", "--activations", "relu", "--lrs", "0.04"]


@pytest.fixture
def store(db_url) -> Store:
    store = Store(db_url, lease_seconds=LEASE)
    yield store
    store.dispose()


def test_a_job_without_a_worker_says_so_instead_of_an_eta(store):
    job = store.create_job("sweep", {}, RUNS)
    st = store.job_status(job)
    assert (st.waiting_for, st.workers_alive, st.eta_seconds) == ("waiting for a worker", 0, None)

    store.worker_seen("w1@h")
    st = store.job_status(job)
    assert (st.waiting_for, st.workers_alive) == (None, 1)
    assert store.workers_alive() == ["w1@h"]

    store.worker_stopped("w1@h")  # a clean stop counts at once
    st = store.job_status(job)
    assert st.workers_alive == 0 and st.waiting_for.startswith("no worker alive since 20")

    store.worker_seen("w1@h")  # the same node started again
    store.worker_seen("w2@h")
    assert store.workers_alive() == ["w1@h", "w2@h"]
    time.sleep(LEASE + 0.2)  # both went silent past the lease (e.g. killed)
    st = store.job_status(job)
    assert st.workers_alive == 0 and st.waiting_for.startswith("no worker alive since")

    [run] = store.runs(job)
    store.start_run(run.run_id, "w3@h", pid=3)  # a fresh lease is a worker at work, reported or not
    assert store.job_status(job).waiting_for is None
    time.sleep(LEASE + 0.2)
    assert store.job_status(job).waiting_for.startswith("no worker alive since")

    store.finish_job(job, "cancelled")
    assert store.job_status(job).waiting_for is None  # an ended job waits for nothing


def test_status_without_a_worker_then_with_one(hw3_env, redis_server, start_worker):
    import redis

    url = redis_server.rsplit("/", 1)[0] + "/9"  # a database of its own: the job left queued stays here
    env = {**hw3_env, "CELERY_BROKER_URL": url, "HW3_LEASE_SECONDS": "4"}
    try:
        job = hw3("sweep", *SMALL, env=env, check=True).stdout.split()[0]
        shown = json.loads(hw3("status", job, "--json", env=env, check=True).stdout)
        assert (shown["waiting_for"], shown["workers_alive"], shown["eta_seconds"]) == ("waiting for a worker", 0, None)
        human = hw3("status", job, env=env, check=True).stdout
        assert "waiting for a worker; start one with `hw3-submit worker`" in human and "ETA" not in human

        worker = start_worker(env, concurrency=1)
        followed = hw3("wait", job, "--json", env=env, timeout=600)
        assert followed.returncode == 0, followed.stderr + worker.log()
        assert json.loads(followed.stdout)["waiting_for"] is None
        worker.stop()  # a warm shutdown: the worker says it stopped

        second = hw3("sweep", *SMALL, env=env, check=True).stdout.split()[0]
        shown = json.loads(hw3("status", second, "--json", env=env, check=True).stdout)
        assert shown["workers_alive"] == 0 and shown["waiting_for"].startswith("no worker alive since 20"), shown
        # `wait` starts no worker: it says why nothing moves; Ctrl-C detaches
        err_path = Path(env["HW3_DATA"]) / "wait.err"
        with open(err_path, "w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "api.cli", "wait", second], env=env, cwd=REPO,
                                    stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        deadline = time.monotonic() + 120
        while "no worker alive since" not in err_path.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, err_path.read_text()
            time.sleep(0.1)
        time.sleep(0.5)  # into the wait loop
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130, err_path.read_text()
        assert f"follow again with: hw3-submit wait {second}" in err_path.read_text()
    finally:
        redis.Redis.from_url(url).flushdb()


def test_in_the_embedded_mode_wait_runs_a_job_submitted_without_wait(hw3_env):
    """No dead end: the job sits queued with nobody to take it; `wait` runs local workers as --wait does."""
    submitted = hw3("sweep", *SMALL, env=hw3_env, check=True)
    job = submitted.stdout.split()[0]
    assert f"`hw3-submit wait {job}` runs it here" in submitted.stderr
    assert json.loads(hw3("status", job, "--json", env=hw3_env).stdout)["waiting_for"] == "waiting for a worker"
    followed = hw3("wait", job[:5], "--workers", "1", env=hw3_env, timeout=600)
    assert followed.returncode == 0, followed.stderr
    assert "start one with" not in followed.stderr and f"job {job} (sweep): succeeded" in followed.stderr
    assert json.loads(hw3("status", job, "--json", env=hw3_env).stdout)["state"] == "succeeded"
