"""The store on both backends, a real SQLite file and a real PostgreSQL database: schema by migration,
replace-on-rerecord, exactly-once finalize, cancel, concurrent writers."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import time

import pytest
from alembic.script import ScriptDirectory

from conftest import hw3
from shared.store import MIGRATIONS_DIR, InvalidJobId, JobNotFound, Store

pytestmark = pytest.mark.integration  # a real PostgreSQL server (and spawned writer processes)

RUNS = [{"name": f"relu-lr{lr}", "config": {"lr": lr}, "epochs_total": 3} for lr in (0.1, 0.2)]


def row(epoch: int, acc: float = 0.5) -> dict:
    return {"epoch": epoch, "lr": 0.1, "train_loss": 1.0, "train_accuracy": acc, "val_loss": 1.1,
            "val_accuracy": acc, "seconds": 0.5}


@pytest.fixture
def store(db_url) -> Store:
    store = Store(db_url)
    yield store
    store.dispose()


def test_migrations_create_the_schema_at_head(store):
    assert store.schema_revision() == "0004"
    Store(store.url)  # applying again is a no-op


def _migrate(url: str, barrier) -> None:
    barrier.wait(120)
    Store(url).dispose()


def test_first_starts_at_once_migrate_exactly_once(db_url):
    """Worker pool processes open the store together on a fresh database: one migrates, the others wait."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_migrate, args=(db_url, barrier)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 4
    store = Store(db_url, migrate=False)
    assert store.schema_revision() == ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    store.dispose()


def test_db_upgrade_command_migrates_the_configured_database(db_url, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env.update(HW3_DATA=str(tmp_path / "data"), DATABASE_URL=db_url)
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    for _ in range(2):  # the second run finds the schema at head and changes nothing
        assert f"database at revision {head}" in hw3("db", "upgrade", env=env, check=True).stdout
    assert json.loads(hw3("list", "--json", env=env, check=True).stdout) == []


def test_sqlite_runs_in_wal_mode(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'hw3.sqlite'}")
    with store._reader.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_recording_an_epoch_again_replaces_it(store):
    job = store.create_job("sweep", {}, RUNS)
    run_id = store.runs(job)[0].run_id
    store.record_epoch(run_id, row(1, 0.5))
    store.record_epoch(run_id, row(1, 0.7))
    store.record_epoch(run_id, row(2, 0.8))
    rows = store.epochs(job)
    assert [(r.epoch, r.val_accuracy) for r in rows] == [(1, 0.7), (2, 0.8)]
    assert store.job_status(job).runs[0].epochs_done == 2


def test_truncate_drops_rows_after_a_checkpoint(store):
    job = store.create_job("sweep", {}, RUNS)
    run_id = store.runs(job)[0].run_id
    for e in (1, 2, 3):
        store.record_epoch(run_id, row(e))
    store.truncate_epochs(run_id, 1)
    assert [r.epoch for r in store.epochs(job)] == [1]


def test_finalize_is_claimed_once_and_only_after_every_run_ended(store):
    job = store.create_job("sweep", {}, RUNS)
    a, b = (r.run_id for r in store.runs(job))
    store.start_run(a, "w")
    store.finish_run(a, "succeeded")
    assert not store.claim_finalize(job)
    store.finish_run(b, "failed", error="boom")
    assert store.claim_finalize(job)
    assert not store.claim_finalize(job)


def test_cancel_ends_queued_runs_and_flags_running_ones(store):
    job = store.create_job("sweep", {}, RUNS)
    a, b = (r.run_id for r in store.runs(job))
    store.start_run(a, "w")
    assert store.request_cancel(job) == "running"
    assert store.cancel_requested(job)
    states = {r.run_id: r.state for r in store.runs(job)}
    assert states == {a: "running", b: "cancelled"}
    assert store.start_run(b, "w") is None  # a queued task for a cancelled run does nothing


def test_job_ids_are_validated_before_any_query(store):
    for bad in ("../../etc", "ABCDEF123456", "1234", "", "3f9c0a1b2d4e; drop"):
        with pytest.raises(InvalidJobId, match="expected 12 lowercase hex digits"):
            store.job_status(bad)
    with pytest.raises(JobNotFound, match="no job 0123456789ab"):
        store.job_status("0123456789ab")


def test_status_reports_progress_best_accuracy_and_eta(store):
    job = store.create_job("sweep", {"x": 1}, RUNS)
    a = store.runs(job)[0].run_id
    store.start_run(a, "w")
    store.record_epoch(a, row(1, 0.6))
    store.record_epoch(a, row(2, 0.9))
    st = store.job_status(job)
    assert st.state == "running" and st.best_val_accuracy == 0.9
    run = st.runs[0]
    assert (run.epochs_done, run.epochs_total, run.last_val_accuracy) == (2, 3, 0.9)
    assert st.eta_seconds == pytest.approx((1 + 3) * 0.5)


def _writer(url: str, run_id: int, n: int, barrier, times) -> None:
    store = Store(url, migrate=False)
    barrier.wait(120)  # every process has started and connected: the writes below really overlap
    start = time.perf_counter()
    for e in range(1, n + 1):
        store.record_epoch(run_id, row(e))
    times.put((start, time.perf_counter()))


def test_concurrent_writers_lose_nothing(db_url):
    """8 processes × 1,000 epoch rows into one database: all 8,000 rows, no 'database is locked'.
    Prints the rows per second of the 8 writers together (visible with -s)."""
    store = Store(db_url)
    job = store.create_job("sweep", {}, [{"name": f"r{i}", "config": {}, "epochs_total": 1000} for i in range(8)])
    ctx = mp.get_context("spawn")
    barrier, times = ctx.Barrier(8), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(db_url, r.run_id, 1000, barrier, times))
             for r in store.runs(job)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0] * 8
    spans = [times.get(timeout=10) for _ in procs]
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    print(f"\n{store._writer.dialect.name}: 8 writers x 1000 rows in {wall:.2f} s = {8000 / wall:.0f} rows/s")
    rows = store.epochs(job)
    assert len(rows) == 8000
    assert all(r.epochs_done == 1000 for r in store.job_status(job).runs)
