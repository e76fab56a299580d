"""The race holes closed by the job-kind contract, each shown on the real store (SQLite and PostgreSQL where it
is about the store) with the real kinds' code: duplicate finalize deliveries, lost leases, final states that
stay final, the thread count of resumed and retrained runs, a dead finalize worker, and what a pool process
does as it starts."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import toykind
from conftest import REPO
from shared import datasets
from shared.settings import get_settings
from shared.store import LeaseLost, RunBusy, Store
from worker import jobs, kinds
from worker.engine import Trainer
from worker.kinds.base import JobContext, RunContext
from worker.leases import requeue_lost_runs

pytestmark = pytest.mark.integration

LEASE = 0.5
TOY = [{"name": n, "config": {"rate": r}, "epochs_total": 2} for n, r in (("toy-0.1", 0.1), ("toy-0.2", 0.2))]


@pytest.fixture(autouse=True)
def toy_kind(monkeypatch):
    kinds.all_kinds()
    monkeypatch.setitem(kinds._registry, "toy", toykind.KIND)  # for these tests only


@pytest.fixture
def store(db_url) -> Store:
    store = Store(db_url, lease_seconds=LEASE)
    yield store
    store.dispose()


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("HW3_DATA", str(tmp_path / "data"))
    return get_settings()


def _toy_job(store, **params) -> str:
    return store.create_job("toy", {"epochs": 2, "fail": None, "pause": 0.0, **params}, TOY)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- 1. a duplicate delivery of the sweep's final task while another worker holds the retrain ------------------
def _sweep_ready_to_finalize(store) -> str:
    runs = [{"name": "relu-lr0.04", "config": {"activation": "relu", "lr": 0.04, "epochs": 2, "decay_epochs": [], "threads": 1},
             "epochs_total": 2}]
    job = store.create_job("sweep", {"train_size": 1000, "decay_epochs": []}, runs)
    [run] = store.runs(job)
    store.start_run(run.run_id, "w1@h", pid=1)
    store.finish_run(run.run_id, "succeeded", result={"val_accuracy": 0.9, "val_loss": 0.3})
    assert store.claim_finalize(job)
    return job


def test_a_duplicate_finalize_while_another_worker_finalizes_does_nothing(store, settings):
    job = _sweep_ready_to_finalize(store)
    assert store.start_finalize(job, "w1@h", pid=111)
    with pytest.raises(RunBusy, match="finalizing job .* is held by w1@h"):
        jobs.finalize(store, settings, job, "w2@h", pid=222)
    assert store.job_state(job) == "running"


def test_a_duplicate_finalize_while_another_worker_holds_the_retrain_does_nothing(store, settings):
    """The finalize lease went stale but the retrain's lease is fresh: the duplicate must neither fail the final
    run nor the job (it used to: RunBusy was caught as a retrain failure, and the live retrain later flipped the
    job back to succeeded)."""
    job = _sweep_ready_to_finalize(store)
    holder = JobContext(store, settings, store.job_status(job), "w1@h", pid=111)
    assert store.start_finalize(job, "w1@h", pid=111)
    final = holder.start_run("final", {"activation": "relu", "lr": 0.04, "epochs": 2, "decay_epochs": [],
                                         "threads": 1}, 2, 1)
    time.sleep(LEASE + 0.2)
    assert store.heartbeat(final.run.run_id, "w1@h", pid=111)  # the retrain is alive; its finalize lease is not
    with pytest.raises(RunBusy, match=r"held by w1@h \(pid 111\)"):
        jobs.finalize(store, settings, job, "w2@h", pid=222)
    info = store.run_info(final.run.run_id)
    assert (info.state, info.worker, info.pid, info.error) == ("running", "w1@h", 111, None)
    status = store.job_status(job)
    assert (status.state, status.error) == ("running", None)


# -- 2. a run whose lease is lost stops at the next epoch boundary and writes nothing more ---------------------
def _take_over_after_first_epoch(ctx: RunContext, store: Store):
    """should_stop hook: after epoch 1, let the lease go stale and another worker take the run over."""
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        if len(calls) == 1:
            time.sleep(LEASE + 0.2)
            assert store.start_run(ctx.run.run_id, "w2@h", pid=222).attempts == 2
        return False

    return should_stop


def test_a_numpy_run_that_lost_its_lease_stops_and_writes_no_row_or_checkpoint(tmp_path, settings, real_datasets,
                                                                                monkeypatch):
    monkeypatch.setattr(settings.__class__, "job_datasets_dir", lambda self, params: real_datasets)
    store = Store(f"sqlite:///{tmp_path / 'hw3.sqlite'}", lease_seconds=LEASE)
    plan = kinds.get("sweep").plan({"activations": ["relu"], "lrs": [0.04], "hidden": [16], "epochs": 4,
                                    "train_size": 500, "batch_size": 50})
    job = store.create_job("sweep", plan.params, [r.as_row() for r in plan.runs])
    [run] = store.runs(job)
    run = store.start_run(run.run_id, "w1@h", pid=111)
    ctx = RunContext(store, settings, store.job_status(job), run, "w1@h", 1, pid=111)
    ctx.should_stop = _take_over_after_first_epoch(ctx, store)
    with pytest.raises(LeaseLost, match="no longer held by w1@h"):
        kinds.get("sweep").train(ctx)
    assert [r.epoch for r in store.epochs(job)] == [1]
    checkpoint = ctx.run_dir / "checkpoint.npz"
    with np.load(checkpoint) as f:
        assert json.loads(str(f["meta"]))["epoch"] == 1  # written after epoch 1 only
    assert not (ctx.run_dir / "weights.npz").exists()
    info = store.run_info(run.run_id)
    assert (info.state, info.worker, info.pid) == ("running", "w2@h", 222)  # the new holder's, untouched


def test_a_keras_run_that_lost_its_lease_stops_and_saves_nothing(tmp_path, settings):
    store = Store(f"sqlite:///{tmp_path / 'hw3.sqlite'}", lease_seconds=LEASE)
    kind = kinds.get("human-machine")
    plan = kind.plan({"synthetic": True, "epochs": 4})
    job = store.create_job("human-machine", plan.params, [r.as_row() for r in plan.runs[:1]])
    [run] = store.runs(job)
    run = store.start_run(run.run_id, "w1@h", pid=111)
    ctx = RunContext(store, settings, store.job_status(job), run, "w1@h", 1, pid=111)
    ctx.should_stop = _take_over_after_first_epoch(ctx, store)
    with pytest.raises(LeaseLost):
        kind.train(ctx)
    assert [r.epoch for r in store.epochs(job)] == [1]
    assert not (ctx.run_dir / "model.hdf5").exists() and not (ctx.run_dir / "weights.npz").exists()
    assert store.run_info(run.run_id).worker == "w2@h"


def test_a_run_that_lost_its_lease_is_left_to_its_new_holder(store, settings, monkeypatch):
    """Through the generic life of a run: no finish, no claim of the finalize step by the old attempt."""
    job = _toy_job(store)
    run_id = store.runs(job)[0].run_id

    def train(ctx):
        ctx.record_epoch({"epoch": 1})
        time.sleep(LEASE + 0.2)
        store.start_run(run_id, "w2@h", pid=222)
        ctx.record_epoch({"epoch": 2})

    monkeypatch.setattr(toykind.KIND, "train", train)
    assert jobs.train_run(store, settings, run_id, "w1@h", pid=111) is False
    info = store.run_info(run_id)
    assert (info.state, info.worker, info.epochs_done) == ("running", "w2@h", 1)


# -- 3. a run that succeeded can never become failed --------------------------------------------------------------
def test_a_final_state_is_never_overwritten(store):
    job = _toy_job(store)
    a, b = (r.run_id for r in store.runs(job))
    store.start_run(a, "w@h", pid=1)
    assert store.finish_run(a, "succeeded", result={"val_accuracy": 0.5})
    assert not store.finish_run(a, "failed", error="late")
    assert not store.finish_run(a, "cancelled")
    info = store.run_info(a)
    assert (info.state, info.error, info.result) == ("succeeded", None, {"val_accuracy": 0.5})
    assert store.finish_job(job, "succeeded", result={"x": 1})
    assert not store.finish_job(job, "failed", error="late")
    assert (store.job_state(job), store.job_status(job).error) == ("succeeded", None)
    with pytest.raises(ValueError, match="'running' is not a final state"):
        store.finish_run(b, "running")


def test_an_error_after_success_leaves_the_run_succeeded(tmp_path, monkeypatch):
    """The Celery task's fault path (an exception after the run succeeded, e.g. in claim_finalize) used to mark
    the run failed."""
    monkeypatch.setenv("HW3_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    from worker import tasks

    st = tasks.store()
    job = _toy_job(st)
    run_id = st.runs(job)[0].run_id

    def broken(job_id):
        raise RuntimeError("database went away")

    monkeypatch.setattr(st, "claim_finalize", broken)
    tasks.train_run.apply(args=[run_id])
    info = st.run_info(run_id)
    assert (info.state, info.error) == ("succeeded", None)


# -- 4 and 7. the thread count that shapes the numbers belongs to the run ----------------------------------------
def test_a_resumed_run_trains_with_its_own_thread_count_not_the_checkpoints(tmp_path, settings, monkeypatch):
    seen = {}
    real_resume = Trainer.resume

    def resume(path, *data, threads):
        seen["threads"] = threads
        return real_resume(path, *data, threads=threads)

    monkeypatch.setattr(Trainer, "resume", resume)
    store = Store(f"sqlite:///{tmp_path / 'hw3.sqlite'}")
    kind = kinds.get("sweep")
    plan = kind.plan({"activations": ["relu"], "lrs": [0.04], "hidden": [8], "epochs": 2, "train_size": 100,
                      "batch_size": 50, "threads": 1})
    job = store.create_job("sweep", plan.params, [r.as_row() for r in plan.runs])
    [run] = store.runs(job)
    rng = np.random.default_rng(0)
    x, y = rng.random((10_100, 784), dtype=np.float32), rng.integers(0, 10, 10_100)
    config = kind_config = plan.runs[0].config
    run = store.start_run(run.run_id, "w@h", pid=1)
    ctx = RunContext(store, settings, store.job_status(job), run, "w@h", 4, pid=1)
    from worker.engine import TrainConfig

    writer = Trainer(TrainConfig.from_dict({**kind_config, "threads": 2}), x[:100], y[:100], x[100:], y[100:])
    writer.run_epoch()
    writer.save_checkpoint(ctx.run_dir / "checkpoint.npz")  # written by a worker that ran it with 2 threads
    monkeypatch.setattr("worker.kinds.sweep.train_val", lambda folder, n: (x[:100], y[:100], x[100:], y[100:]))
    result = kind.train(ctx)
    assert seen["threads"] == config["threads"] == 1
    assert result["val_accuracy"] is not None


def test_the_final_retrain_uses_the_jobs_thread_count_whatever_the_workers_load(store, settings, monkeypatch):
    """It used to take every core when its worker was idle and one thread otherwise: OpenBLAS sums differently
    with 1 and 2 threads, so the same job gave different test accuracies."""
    job = _sweep_ready_to_finalize(store)
    threads = []
    monkeypatch.setattr("worker.kinds.sweep.Sweep._retrain",
                        lambda self, final, config: threads.append((final.threads, config.threads)))
    ctx = JobContext(store, settings, store.job_status(job), "w1@h", pid=111)
    with pytest.raises(Exception):  # the stub leaves the final run without a result
        kinds.get("sweep").finalize(ctx)
    assert threads == [(1, 1)]


# -- 5. a job whose worker dies while it finalizes is finalized by another -------------------------------------
def test_a_finalize_step_whose_worker_died_is_dispatched_again_and_ends_the_job(store, settings):
    job = _toy_job(store)
    for r in store.runs(job):
        store.start_run(r.run_id, "w1@h", pid=1)
        store.finish_run(r.run_id, "succeeded", result={"val_accuracy": 0.5 + r.config["rate"]})
    assert store.claim_finalize(job)
    assert store.start_finalize(job, "w1@h", pid=_dead_pid())  # its worker died right after taking it
    sent = []
    requeue_lost_runs(store, 3, lambda task, args: sent.append((task, args)))
    assert sent == []  # the lease is still fresh
    time.sleep(LEASE + 0.2)
    requeue_lost_runs(store, 3, lambda task, args: sent.append((task, args)))
    assert sent == [("hw3.finalize", [job])]
    sent.clear()
    requeue_lost_runs(store, 3, lambda task, args: sent.append((task, args)))
    assert sent == []  # handed out once per lease period
    jobs.finalize(store, settings, job, "w2@h", pid=222)
    status = store.job_status(job)
    assert status.state == "succeeded" and status.result["best_run"] == "toy-0.2"


def test_a_claimed_finalize_that_never_started_is_dispatched_again(store):
    """The message was lost (e.g. the broker restarted without persistence between claim and send)."""
    job = _toy_job(store)
    for r in store.runs(job):
        store.start_run(r.run_id, "w1@h", pid=1)
        store.finish_run(r.run_id, "failed", error="x")
    assert store.claim_finalize(job)
    time.sleep(LEASE + 0.2)
    sent = []
    requeue_lost_runs(store, 3, lambda task, args: sent.append((task, args)))
    assert sent == [("hw3.finalize", [job])]


# -- 6. a pool process starting up never downloads anything or imports TensorFlow -------------------------------
def test_warming_up_a_pool_process_neither_downloads_nor_imports_tensorflow(tmp_path, real_datasets):
    folder = tmp_path / "datasets"
    folder.mkdir()
    (folder / datasets.MNIST_TRAIN_FILE).symlink_to(real_datasets / datasets.MNIST_TRAIN_FILE)  # no test file
    code = (
        "import sys, shared.datasets.download as d\n"
        "def boom(*a, **k): raise SystemExit('a download was attempted')\n"
        "d._download_mnist = d.ensure_mnist = boom\n"
        "from worker import tasks\n"
        "from worker.kinds.sweep import mnist_train_file\n"
        "tasks._warm_up()\n"
        "assert mnist_train_file.cache_info().currsize == 1, 'the training file was not read'\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
        "sys.exit(f'imported {bad[:3]}' if bad else 0)\n")
    env = {"PATH": "/usr/bin:/bin", "HW3_DATA": str(tmp_path / "data"), "HW3_DATASETS": str(folder)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


# -- a run its kind cannot resume is trained again from its first epoch ----------------------------------------------
def test_a_run_trained_again_keeps_no_rows_of_its_earlier_attempt(store, settings, monkeypatch):
    """A Keras-like kind (no checkpoint): the interrupted attempt's rows go when the run starts again, so a
    second attempt that stops earlier (early stopping) leaves no stale epochs behind it."""
    assert not toykind.KIND.resumes_runs
    job = _toy_job(store)
    run_id = store.runs(job)[0].run_id
    store.start_run(run_id, "w1@h", pid=111)
    for epoch in (1, 2):
        store.record_epoch(run_id, {"epoch": epoch, "val_accuracy": 0.5})
    assert store.interrupt_job(job)
    store.reopen_job(job)

    def train(ctx):
        assert ctx.store.epochs(ctx.job.job_id, run_id) == []  # nothing of the first attempt
        ctx.record_epoch({"epoch": 1, "val_accuracy": 0.7})
        return {"val_accuracy": 0.7}

    monkeypatch.setattr(toykind.KIND, "train", train)
    jobs.train_run(store, settings, run_id, "w1@h", pid=112)
    assert [(r.epoch, r.val_accuracy) for r in store.epochs(job, run_id)] == [(1, 0.7)]
    assert store.run_info(run_id).epochs_done == 1
