"""Run leases on both backends: one live attempt per run, takeover from dead or silent workers, a cap on
attempts, lost runs visible in the status, and migrating a 0001 database to the head keeping existing data."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
from alembic import command
from alembic.config import Config

from shared.store import MIGRATIONS_DIR, RunBusy, Store
from worker.leases import requeue_lost_runs

pytestmark = pytest.mark.integration  # a real PostgreSQL server

RUNS = [{"name": n, "config": {}, "epochs_total": 5} for n in ("a", "b")]
LEASE = 0.4


@pytest.fixture
def store(db_url) -> Store:
    store = Store(db_url, lease_seconds=LEASE)
    yield store
    store.dispose()


def _ids(store, job_id):
    return [r.run_id for r in store.runs(job_id)]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_second_delivery_of_a_held_run_is_refused(store):
    job = store.create_job("sweep", {}, RUNS)
    a, _ = _ids(store, job)
    assert store.start_run(a, "w1@h", pid=111).attempts == 1
    with pytest.raises(RunBusy, match=r"held by w1@h \(pid 111\)"):
        store.start_run(a, "w2@h", pid=222)
    assert store.start_run(a, "w1@h", pid=111).attempts == 2  # the holder itself may restart it
    assert store.heartbeat(a, "w1@h", pid=111) and not store.heartbeat(a, "w2@h", pid=222)


def test_a_dead_process_of_the_same_worker_is_taken_over_at_once(store):
    """A killed pool process: Celery redelivers to a sibling process of the same node, which must not wait."""
    job = store.create_job("sweep", {}, RUNS)
    a, _ = _ids(store, job)
    store.start_run(a, "w1@h", pid=_dead_pid())
    run = store.start_run(a, "w1@h", pid=333)
    assert (run.state, run.pid, run.attempts) == ("running", 333, 2)


def test_silent_runs_are_queued_again_then_failed_after_max_attempts(store):
    job = store.create_job("sweep", {}, RUNS)
    a, b = _ids(store, job)
    store.start_run(a, "w1@h", pid=1)
    store.start_run(b, "w1@h", pid=1)
    assert store.requeue_stale(max_attempts=2) == []  # leases still fresh
    time.sleep(LEASE + 0.2)
    store.heartbeat(b, "w1@h", pid=1)  # b's worker is alive
    status = store.job_status(job)
    assert status.lost_runs == ["a"] and status.runs[0].lost and not status.runs[1].lost
    assert status.runs[0].heartbeat_age_s >= LEASE

    changed = store.requeue_stale(max_attempts=2)
    assert [c.to_dict() for c in changed] == [{"run_id": a, "job_id": job, "kind": "sweep", "role": "run",
                                               "state": "queued", "worker": "w1@h", "job_ended": False}]
    assert store.requeue_stale(max_attempts=2) == []  # taken once
    assert store.start_run(a, "w2@h", pid=2).attempts == 2
    time.sleep(LEASE + 0.2)
    store.heartbeat(b, "w1@h", pid=1)
    [failed] = store.requeue_stale(max_attempts=2)
    assert failed.state == "failed"
    info = store.run_info(a)
    assert info.state == "failed" and info.error.startswith("WorkerLost: its worker w2@h (pid 2) went silent")
    assert "attempt 2 of 2" in info.error


def test_requeue_lost_runs_dispatches_the_right_task(store):
    sweep = store.create_job("sweep", {}, RUNS)
    keras = store.create_job("human-machine", {}, RUNS[:1])
    a, b = _ids(store, sweep)
    [k] = _ids(store, keras)
    store.start_run(a, "w@h", pid=1)
    store.finish_run(b, "succeeded", result={"val_accuracy": 0.9})
    store.start_run(k, "w@h", pid=1)
    final = store.add_run(sweep, "final", {}, 5, role="final")
    time.sleep(LEASE + 0.2)
    sent = []
    requeue_lost_runs(store, 3, lambda task, args: sent.append((task, args)))
    assert sorted(sent) == sorted([("hw3.train_run", [a]), ("hw3.train_run", [k])])

    # the final retrain is resumed by re-running the finalize task of its job
    store.start_run(a, "w@h", pid=1)
    store.finish_run(a, "succeeded", result={"val_accuracy": 0.8})
    store.start_run(final, "w@h", pid=1)
    time.sleep(LEASE + 0.2)
    sent.clear()
    requeue_lost_runs(store, 3, lambda task, args: sent.append((task, args)))
    assert sent == [("hw3.finalize", [sweep])]


def test_a_stale_run_of_an_ended_job_is_closed_and_nothing_is_sent(store):
    job = store.create_job("sweep", {}, RUNS)
    a, b = _ids(store, job)
    for r in (a, b):
        store.start_run(r, "w@h", pid=1)
        store.finish_run(r, "succeeded", result={"val_accuracy": 0.9})
    final = store.add_run(job, "final", {}, 5, role="final")
    store.start_run(final, "w@h", pid=1)
    store.finish_job(job, "failed", error="stopped by hand")
    time.sleep(LEASE + 0.2)
    sent = []
    [c] = requeue_lost_runs(store, 3, lambda task, args: sent.append((task, args)))
    assert c.job_ended and sent == []
    info = store.run_info(final)
    assert info.state == "failed" and info.error == "WorkerLost: its job had ended (failed)"


def test_a_run_failed_for_good_lets_its_job_finish(store):
    job = store.create_job("human-machine", {}, RUNS[:1])
    [a] = _ids(store, job)
    store.start_run(a, "w@h", pid=1)
    time.sleep(LEASE + 0.2)
    sent = []
    requeue_lost_runs(store, 1, lambda task, args: sent.append((task, args)))
    assert sent == [("hw3.finalize", [job])]
    assert store.run_info(a).state == "failed"


def test_cancelled_jobs_are_not_requeued(store):
    job = store.create_job("sweep", {}, RUNS[:1])
    [a] = _ids(store, job)
    store.start_run(a, "w@h", pid=1)
    store.request_cancel(job)
    time.sleep(LEASE + 0.2)
    [c] = store.requeue_stale()
    assert c.state == "cancelled" and store.run_info(a).state == "cancelled"


def test_migrating_a_0001_database_keeps_its_jobs(db_url):
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    old = Store(db_url, migrate=False)
    with old._writer.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    conn_url = db_url
    with old._writer.begin() as conn:
        conn.exec_driver_sql("INSERT INTO jobs (id, kind, params, state, cancel_requested, finalize_claimed, "
                             "created_at) VALUES ('0123456789ab', 'sweep', '{}', 'queued', false, false, "
                             "'2026-01-01 00:00:00')")
    old.dispose()
    store = Store(conn_url)
    assert store.schema_revision() == "0004"
    assert store.job_status("0123456789ab").state == "queued"
    store.dispose()


def test_non_finite_results_are_stored_as_null_on_every_backend(store):
    job = store.create_job("sweep", {}, RUNS[:1])
    [a] = _ids(store, job)
    store.start_run(a, "w@h", pid=1)
    store.finish_run(a, "failed", result={"val_loss": float("nan"), "curve": [1.0, float("inf")]}, error="x")
    store.finish_job(job, "failed", result={"test_loss": float("-inf")})
    assert store.run_info(a).result == {"val_loss": None, "curve": [1.0, None]}
    assert store.job_status(job).result == {"test_loss": None}


def test_a_finalize_step_claimed_in_a_pass_is_not_sent_again_by_the_same_pass(store, monkeypatch):
    """On a slow host the claim can look stale already to the same pass's check (the lease is short here):
    the job's finalize task is still sent once."""
    job = store.create_job("human-machine", {}, RUNS[:1])
    [a] = _ids(store, job)
    store.start_run(a, "w@h", pid=1)
    time.sleep(LEASE + 0.2)
    monkeypatch.setattr(store, "stale_finalizations", lambda: [(job, "human-machine")])
    sent = []
    requeue_lost_runs(store, 1, lambda task, args: sent.append((task, args)))
    assert sent == [("hw3.finalize", [job])]
