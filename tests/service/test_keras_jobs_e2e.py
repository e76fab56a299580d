"""Problems 2–4 as jobs through the real CLI and a real Celery worker on Redis (short runs)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, hw3

pytestmark = [pytest.mark.integration, pytest.mark.e2e]  # whole Keras jobs through the CLI and a worker


def _wait(env, job_ids, timeout=600) -> list[dict]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        statuses = [json.loads(hw3("status", j, "--json", env=env).stdout) for j in job_ids]
        if all(s["state"] not in ("queued", "running") for s in statuses):
            return statuses
        time.sleep(1)
    raise AssertionError(f"jobs did not end: {statuses}")


def test_the_cli_and_the_worker_parent_never_import_tensorflow():
    code = ("import sys, api.cli, worker.tasks, worker.kinds.confusion, worker.kinds.regularization, "
            "worker.kinds.human_machine; "
            "sys.exit(1 if any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


def test_keras_jobs_run_side_by_side_on_a_worker(hw3_env, redis_server, start_worker):
    env = {**hw3_env, "CELERY_BROKER_URL": redis_server}
    worker = start_worker(env, concurrency=2)
    jobs = {
        "confusion": hw3("confusion", "--epochs", "1", env=env, check=True).stdout.strip(),
        "regularization": hw3("regularization", "--epochs", "1", env=env, check=True).stdout.strip(),
        "human-machine": hw3("human-machine", "--synthetic", "--epochs", "2", env=env, check=True).stdout.strip(),
    }
    statuses = dict(zip(jobs, _wait(env, list(jobs.values()))))
    for kind, st in statuses.items():
        assert st["state"] == "succeeded", (kind, st, worker.log()[-3000:])
        assert all(r["epochs_done"] == r["epochs_total"] for r in st["runs"])
        base = Path(env["HW3_DATA"]) / "artifacts" / st["job_id"]
        report = (base / "report.md").read_text()
        assert report.startswith("# Problem")
        linked = re.findall(r"\]\(([^)]+\.png)\)", report)
        assert linked and [p for p in linked if not (base / p).is_file()] == [], kind  # each drawn once, linked
        assert not list(base.rglob("curve.png")), kind  # each run's curve is drawn once, where it is linked
    conf = statuses["confusion"]["result"]
    assert 0.7 < conf["test_accuracy"] <= 1 and len(conf["most_confused_pair"]["classes"]) == 2
    reg = statuses["regularization"]["result"]
    assert set(reg["test_accuracy"]) == {"plain", "l2_dropout"}
    hm = statuses["human-machine"]
    assert len(hm["runs"]) == 12 and hm["result"]["model_path"] == "model.hdf5"
    assert hm["result"]["best_run"] in {r["name"] for r in hm["runs"]}
    assert (Path(env["HW3_DATA"]) / "artifacts" / hm["job_id"] / "model.hdf5").is_file()
    rows = json.loads(hw3("metrics", hm["job_id"], "--format", "json", env=env, check=True).stdout)
    assert len(rows) == 24
    listing = hw3("status", env=env, check=True).stdout  # all jobs side by side
    assert all(j in listing for j in jobs.values())


def test_bad_keras_options_are_refused(hw3_env, tmp_path):
    proc = hw3("confusion", "--epochs", "0", env=hw3_env)
    assert proc.returncode == 2 and "epochs must be an integer in 1..10000, got 0" in proc.stderr
    proc = hw3("human-machine", "--synthetic", "--data", str(tmp_path / "x.hdf5"), env=hw3_env)
    assert proc.returncode == 2 and "exclude each other" in proc.stderr
