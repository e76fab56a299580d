"""DATABASE_URL=postgresql://… end to end: the real CLI, a real Redis, a real Celery worker and a real PostgreSQL
server; every row is written to and read back from PostgreSQL (the store tests run on it too, in test_store.py)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import psycopg
import pytest

from conftest import hw3
from shared.store import Store

pytestmark = pytest.mark.integration  # a real PostgreSQL server, Redis and a Celery worker

SWEEP = ["--epochs", "2", "--train-size", "5000", "--activations", "relu", "--lrs", "0.02,0.04"]


def _plain(url: str, scheme: str = "postgresql") -> str:
    """The form users type: `postgresql://user@host:port/db` (or `postgres://`), without a driver."""
    return url.replace("postgresql+psycopg://", f"{scheme}://", 1)


def _count(url: str, table: str) -> int:
    with psycopg.connect(_plain(url)) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_both_url_forms_mean_psycopg_in_the_cli_and_the_store(pg_url, tmp_path, scheme):
    url = _plain(pg_url, scheme)
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env.update(HW3_DATA=str(tmp_path / "data"), DATABASE_URL=url)
    assert "database at revision" in hw3("db", "upgrade", env=env, check=True).stdout
    store = Store(url)
    assert store.url == pg_url
    job = store.create_job("sweep", {}, [{"name": "r", "config": {}, "epochs_total": 1}])
    listed = json.loads(hw3("list", "--json", env=env, check=True).stdout)
    assert [j["job_id"] for j in listed] == [job]
    assert _count(pg_url, "jobs") == 1 and not (tmp_path / "data" / "hw3.sqlite").exists()
    store.dispose()


def test_a_sql_ascii_database_reads_back_text(postgres_server, tmp_path):
    """Debian's default cluster in a container (C locale) creates SQL_ASCII databases, where psycopg would hand
    back bytes instead of str unless the client encoding is set."""
    with psycopg.connect(_plain(postgres_server), autocommit=True) as conn:
        conn.execute("CREATE DATABASE hw3_ascii ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
    url = postgres_server.rsplit("/", 1)[0] + "/hw3_ascii"
    store = Store(url)
    job = store.create_job("sweep", {"note": "naïve → ü"}, [{"name": "r", "config": {}, "epochs_total": 1}])
    status = store.job_status(job)
    assert (status.kind, status.params, status.runs[0].name) == ("sweep", {"note": "naïve → ü"}, "r")
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env.update(HW3_DATA=str(tmp_path / "data"), DATABASE_URL=_plain(url))
    assert [j["job_id"] for j in json.loads(hw3("list", "--json", env=env, check=True).stdout)] == [job]
    store.dispose()


def test_a_sweep_and_a_keras_job_on_postgres(hw3_env, redis_server, start_worker, pg_url):
    env = {**hw3_env, "CELERY_BROKER_URL": redis_server, "DATABASE_URL": _plain(pg_url)}
    worker = start_worker(env, concurrency=2)

    proc = hw3("sweep", *SWEEP, "--wait", "--json", env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr + worker.log()[-3000:]
    sweep = json.loads(proc.stdout[proc.stdout.index("{"):])
    job = sweep["job_id"]
    assert sweep["state"] == "succeeded" and sweep["result"]["test_accuracy"] > 0.9
    runs = sweep["runs"]
    assert [r["name"] for r in runs][-1] == "final" and len(runs) == 3
    assert all(r["state"] == "succeeded" and r["epochs_done"] == r["epochs_total"] == 2 for r in runs)

    # read back through the CLI, from PostgreSQL
    status = json.loads(hw3("status", job, "--json", env=env, check=True).stdout)
    assert (status["state"], status["result"]) == ("succeeded", sweep["result"])
    assert [(r["name"], r["epochs_done"], r["best_val_accuracy"]) for r in status["runs"]] == [
        (r["name"], 2, r["best_val_accuracy"]) for r in runs]
    shown = hw3("status", job, env=env, check=True).stdout  # the ended job's headline, no "best so far"
    assert "its test accuracy: " in shown and "best so far" not in shown
    rows = json.loads(hw3("metrics", job, "--format", "json", env=env, check=True).stdout)
    assert sorted((r["run"], r["epoch"]) for r in rows) == sorted((r["name"], e) for r in runs for e in (1, 2))
    assert all(0 < r["val_accuracy"] <= 1 for r in rows if r["run"] != "final")  # the final run has no validation
    assert all(r["seconds"] > 0 and r["train_loss"] > 0 for r in rows)
    report = hw3("report", job, env=env, check=True).stdout
    assert f"{100 * sweep['result']['test_accuracy']:.2f}%" in report
    listed = json.loads(hw3("list", "--json", env=env, check=True).stdout)
    assert [(j["job_id"], j["state"], j["epochs_done"]) for j in listed] == [(job, "succeeded", 6)]
    assert _count(pg_url, "epochs") == 6 and _count(pg_url, "artifacts") >= 4
    assert not (Path(env["HW3_DATA"]) / "hw3.sqlite").exists()

    # a Keras job (12 parallel runs) on the same worker and database
    proc = hw3("human-machine", "--synthetic", "--epochs", "1", "--wait", "--json", env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr + worker.log()[-3000:]
    hm = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert hm["state"] == "succeeded" and len(hm["runs"]) == 12
    assert hm["result"]["model_path"] == "model.hdf5" and hm["result"]["best_run"] in {r["name"] for r in hm["runs"]}
    rows = json.loads(hw3("metrics", hm["job_id"], "--format", "json", env=env, check=True).stdout)
    assert len(rows) == 12 and _count(pg_url, "epochs") == 6 + 12
    assert hw3("report", hm["job_id"], env=env, check=True).stdout.startswith("# Problem")
    listed = json.loads(hw3("list", "--json", env=env, check=True).stdout)
    assert [j["job_id"] for j in listed] == [hm["job_id"], job]
