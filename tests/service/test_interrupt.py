"""Interrupting and resuming: Ctrl-C on an embedded-mode --wait stops the local workers (the whole process group),
marks the job interrupted and leaves nothing of it in the embedded queue; `resume` continues it from its
checkpoints to the same numbers as an uninterrupted job; with an external broker Ctrl-C only detaches, and
`wait` follows the job again. The store's side (interrupt_job, reopen_job) is checked on both backends."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from api.client import _task_and_first_arg, group_members
from conftest import REPO, hw3
from shared.store import JobNotResumable, LeaseLost, Store

pytestmark = [pytest.mark.integration, pytest.mark.e2e]  # real worker processes, a real SIGINT, both backends

SMALL = ["--train-size", "1000", "--epochs", "4", "--hidden", "64", "--activations", "relu", "--lrs", "0.04,0.08"]
METRICS = ("lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy")  # all but the wall time
RUNS = [{"name": n, "config": {}, "epochs_total": 3} for n in ("a", "b", "c")]


def row(epoch: int) -> dict:
    return {"epoch": epoch, "lr": 0.1, "train_loss": 1.0, "train_accuracy": 0.5, "val_loss": 1.1,
            "val_accuracy": 0.5, "seconds": 0.5}


# -- the store ----------------------------------------------------------------------------------------------------
@pytest.fixture
def store(db_url) -> Store:
    store = Store(db_url)
    yield store
    store.dispose()


def test_interrupt_keeps_rows_and_ends_only_unfinished_runs(store):
    job = store.create_job("sweep", {}, RUNS)
    a, b, c = (r.run_id for r in store.runs(job))
    for run_id in (a, b):
        store.start_run(run_id, "w@h", pid=1)
    store.record_epoch(a, row(1), holder=("w@h", 1))
    store.finish_run(b, "succeeded", result={"val_accuracy": 0.9}, holder=("w@h", 1))

    assert store.interrupt_job(job) is True
    st = store.job_status(job)
    assert st.state == "interrupted" and st.finished and st.finished_at is not None
    assert [(r.name, r.state, r.epochs_done) for r in st.runs] == [("a", "interrupted", 1), ("b", "succeeded", 0),
                                                                  ("c", "interrupted", 0)]
    with pytest.raises(LeaseLost):  # an attempt still training somewhere writes nothing more
        store.record_epoch(a, row(2), holder=("w@h", 1))
    assert store.finish_run(a, "succeeded", result={}) is False  # final states stay final
    assert store.finish_job(job, "succeeded") is False
    assert store.interrupt_job(job) is False
    assert store.requeue_stale() == []


def test_reopen_queues_what_did_not_succeed_and_clears_the_end(store):
    job = store.create_job("sweep", {}, RUNS)
    a, b, c = (r.run_id for r in store.runs(job))
    store.start_run(a, "w@h", pid=1)
    store.record_epoch(a, row(1), holder=("w@h", 1))
    store.start_run(b, "w@h", pid=1)
    store.finish_run(b, "succeeded", result={"val_accuracy": 0.9}, holder=("w@h", 1))
    store.start_run(c, "w@h", pid=1)
    store.finish_run(c, "failed", error="NaN", holder=("w@h", 1))
    store.request_cancel(job)
    store.finish_run(a, "cancelled", holder=("w@h", 1))
    store.claim_finalize(job)
    store.finish_job(job, "cancelled", error="cancelled by the user")

    assert sorted(store.reopen_job(job)) == sorted([a, c])
    st = store.job_status(job)
    assert (st.state, st.error, st.result, st.cancel_requested, st.finished_at) == ("running", None, None, False, None)
    assert [(r.name, r.state, r.error, r.attempts, r.epochs_done) for r in st.runs] == [
        ("a", "queued", None, 0, 1), ("b", "succeeded", None, 1, 0), ("c", "queued", None, 0, 0)]
    assert not store.claim_finalize(job)  # runs are pending again
    assert store.start_run(a, "w2@h", pid=2).attempts == 1
    store.finish_run(a, "succeeded", result={}, holder=("w2@h", 2))
    store.start_run(c, "w2@h", pid=2)
    store.finish_run(c, "succeeded", result={}, holder=("w2@h", 2))
    assert store.claim_finalize(job)  # the finalize claim was cleared: the job can end again


def test_reopen_after_the_final_run_started_reopens_only_it(store):
    """The retrain's choice was made from the parallel runs as they ended: they stay; the finalize step resumes
    the final run (nothing to dispatch, and the finalize can be claimed again)."""
    job = store.create_job("sweep", {}, RUNS[:2])
    a, b = (r.run_id for r in store.runs(job))
    for run_id, state in ((a, "succeeded"), (b, "failed")):
        store.start_run(run_id, "w@h", pid=1)
        store.finish_run(run_id, state, result={}, holder=("w@h", 1))
    assert store.claim_finalize(job)
    final = store.add_run(job, "final", {}, 3, role="final")
    store.start_run(final, "w@h", pid=1)
    store.interrupt_job(job)

    assert store.reopen_job(job) == []
    assert [(r.name, r.state) for r in store.runs(job)] == [("a", "succeeded"), ("b", "failed"), ("final", "queued")]
    assert store.claim_finalize(job)


def test_only_an_ended_job_that_did_not_succeed_can_be_reopened(store):
    job = store.create_job("sweep", {}, RUNS[:1])
    with pytest.raises(JobNotResumable, match=r"is queued: .*hw3-submit wait"):
        store.reopen_job(job)
    store.finish_job(job, "succeeded")
    with pytest.raises(JobNotResumable, match="has already succeeded"):
        store.reopen_job(job)


# -- real processes, a real SIGINT ------------------------------------------------------------------------------
def _start(args: list[str], env: dict) -> subprocess.Popen:
    """`hw3-submit ARGS` in its own session, as a terminal would run it (its Ctrl-C reaches it alone here)."""
    return subprocess.Popen([sys.executable, "-m", "api.cli", *args], env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _store(env: dict) -> Store | None:
    """The command's store, once it has created it (opening it earlier would create the file first)."""
    path = Path(env["HW3_DATA"]) / "hw3.sqlite"
    return Store(f"sqlite:///{path}", migrate=False) if path.exists() else None


def _wait_until(predicate, proc: subprocess.Popen, timeout: float = 240, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:  # the store is not created yet
            value = None
        if value:
            return value
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the command ended ({proc.returncode}) before {what}\n{out}\n{err}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"timed out waiting for {what}")


def _local_worker_group(cli_pid: int) -> int | None:
    """The process group of the local workers a command started (their node name carries the command's pid)."""
    for entry in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            if f"local-{cli_pid}@".encode() in b" ".join(cmdline):
                return os.getpgid(int(entry))
        except (OSError, ValueError):
            continue
    return None


def _rows(env: dict, job_id: str) -> list[dict]:
    return json.loads(hw3("metrics", job_id, "--format", "json", env=env, check=True).stdout)


def _numbers(rows: list[dict]) -> dict:
    return {(r["run"], r["epoch"]): tuple(r[k] for k in METRICS) for r in rows}


def _messages_of(env: dict, job_ids: list[str], st: Store) -> list:
    """The embedded broker's messages (queued or delivered) that name one of these jobs or their runs."""
    ours = {("hw3.train_run", r.run_id) for j in job_ids for r in st.runs(j)} | {("hw3.finalize", j) for j in job_ids}
    with sqlite3.connect(Path(env["HW3_DATA"]) / "broker.sqlite") as conn:
        payloads = [p for (p,) in conn.execute("SELECT payload FROM kombu_message")]
    assert all(_task_and_first_arg(p) is not None for p in payloads)  # every message could be read
    return [p for p in payloads if _task_and_first_arg(p) in ours]


def test_ctrl_c_interrupts_an_embedded_sweep_and_resume_ends_with_the_same_numbers(hw3_env):
    proc = _start(["sweep", "--wait", *SMALL], hw3_env)
    group = _wait_until(lambda: _local_worker_group(proc.pid), proc, what="the local workers started")
    st = _wait_until(lambda: _store(hw3_env), proc, what="the store was created")
    job = _wait_until(lambda: st.list_jobs(1)[0].job_id, proc, what="the job was submitted")
    _wait_until(lambda: st.epochs(job), proc, what="the first epoch row")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)

    assert proc.returncode == 130, err
    assert group_members(group) == []  # every process of the local workers is gone
    status = st.job_status(job)
    assert status.state == "interrupted", err
    assert not [r for r in status.runs if r.state in ("queued", "running")]
    assert "interrupted" in err and f"continue with: hw3-submit resume {job} --wait" in err
    assert "Aborted!" not in err and "Traceback" not in err
    assert _messages_of(hw3_env, [job], st) == []  # nothing of it is left for another command's workers
    assert not list((Path(hw3_env["HW3_DATA"]) / "artifacts" / job).glob("runs/*/*.tmp-*"))
    before = _numbers(_rows(hw3_env, job))
    assert before  # rows recorded before the interrupt stay

    waited = hw3("wait", job, env=hw3_env)  # an interrupted job has ended: `wait` says how to continue it
    assert waited.returncode == 1 and f"hw3-submit resume {job} --wait" in waited.stdout

    resumed = hw3("resume", job[:6], "--wait", "--json", env=hw3_env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["state"] == "succeeded"
    assert hw3("resume", job, env=hw3_env).returncode == 1  # nothing left to resume

    fresh = hw3("sweep", "--wait", "--json", *SMALL, env=hw3_env, timeout=600)
    assert fresh.returncode == 0, fresh.stderr
    reference = json.loads(fresh.stdout)

    rows = _rows(hw3_env, job)
    assert len(rows) == len(_numbers(rows)) == 3 * 4  # exactly one row per (run, epoch), the retrain included
    assert _numbers(rows) == _numbers(_rows(hw3_env, reference["job_id"]))  # bit for bit
    assert all(_numbers(rows)[key] == value for key, value in before.items())
    assert json.loads(resumed.stdout)["result"] == reference["result"]


def test_ctrl_c_on_all_interrupts_every_job_and_a_later_wait_leaves_them_alone(hw3_env):
    proc = _start(["all", "--wait", "--epochs", "1", "--train-size", "1000", "--synthetic"], hw3_env)
    st = _wait_until(lambda: _store(hw3_env), proc, what="the store was created")
    jobs = _wait_until(lambda: len(st.list_jobs()) == 4 and [j.job_id for j in st.list_jobs()], proc,
                       what="the four jobs were submitted")
    group = _wait_until(lambda: _local_worker_group(proc.pid), proc, what="the local workers started")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)

    assert proc.returncode == 130, err
    assert group_members(group) == []
    assert {st.job_state(j) for j in jobs} == {"interrupted"}, err
    assert "continue with: hw3-submit resume " in err and all(j in err.rsplit("resume", 1)[1] for j in jobs)
    assert _messages_of(hw3_env, jobs, st) == []
    seen = {j: [(r.state, r.attempts, r.epochs_done) for r in st.runs(j)] for j in jobs}

    # a later, unrelated --wait trains its own job only
    later = hw3("sweep", "--wait", "--json", *SMALL, env=hw3_env, timeout=600)
    assert later.returncode == 0, later.stderr
    assert {j: [(r.state, r.attempts, r.epochs_done) for r in st.runs(j)] for j in jobs} == seen


def test_ctrl_c_with_redis_only_detaches_and_wait_follows_the_job(hw3_env, redis_server, start_worker):
    env = {**hw3_env, "CELERY_BROKER_URL": redis_server}
    worker = start_worker(env, concurrency=2)
    proc = _start(["sweep", "--wait", *SMALL], env)
    st = _wait_until(lambda: _store(env), proc, what="the store was created")
    job = _wait_until(lambda: st.list_jobs(1)[0].job_id, proc, what="the job was submitted")
    _wait_until(lambda: st.epochs(job), proc, what="the first epoch row")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 130, err
    assert "keeps running on the workers" in err and f"hw3-submit wait {job}" in err, err
    assert worker.proc.poll() is None  # the worker is not the command's: it goes on
    followed = hw3("wait", job, "--json", env=env, timeout=600)
    assert followed.returncode == 0, followed.stderr + worker.log()
    status = json.loads(followed.stdout)  # exactly one JSON document
    assert status["state"] == "succeeded" and status["job_id"] == job
    assert {r["state"] for r in status["runs"]} == {"succeeded"}  # never interrupted
    assert hw3("wait", job, env=env).returncode == 0  # an ended job: at once, with its exit code


def test_an_interrupted_keras_job_resumes_its_runs_from_their_checkpoints(hw3_env):
    """Ctrl-C mid-way through human-machine runs, then `resume`: a run keeps the rows it had (re-trained rows
    would carry new timings), continues after its checkpoint, and ends with one row per epoch."""
    proc = _start(["human-machine", "--synthetic", "--epochs", "5", "--wait", "--workers", "2"], hw3_env)
    st = _wait_until(lambda: _store(hw3_env), proc, what="the store was created")
    job = _wait_until(lambda: st.list_jobs(1) and st.list_jobs(1)[0].job_id, proc, what="the job was submitted")
    _wait_until(lambda: any(r.state == "running" and r.epochs_done >= 2 for r in st.runs(job)), proc,
                what="a run two epochs in")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "resume continues them from their last epoch" in err
    cut = {r.name: r.epochs_done for r in st.runs(job) if r.state == "interrupted" and r.epochs_done >= 2}
    assert cut, [(r.name, r.state, r.epochs_done) for r in st.runs(job)]
    before = {(r["run"], r["epoch"]): r for r in _rows(hw3_env, job)}

    resumed = hw3("resume", job, "--wait", "--json", env=hw3_env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    rows = _rows(hw3_env, job)
    assert sorted((r["run"], r["epoch"]) for r in rows) == sorted((r.name, e) for r in st.runs(job)
                                                                  for e in range(1, 6))
    for name, done in cut.items():  # all but the last row before the cut: the checkpoint holds them
        kept = [e for e in range(1, done)]
        assert all({**before[(name, e)]} == next(r for r in rows if (r["run"], r["epoch"]) == (name, e))
                   for e in kept), name
    assert not list((Path(hw3_env["HW3_DATA"]) / "artifacts" / job).glob("runs/*/checkpoint.npz"))
