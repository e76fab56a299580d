"""Same parameters and seed give bit-identical epoch metrics, whatever else the worker runs at the same time:
the BLAS thread count that shapes the float sums is fixed when the job is submitted, not by the worker's load
(the final retrain used to take every core when its worker was idle and one thread when it was not)."""
from __future__ import annotations

import json
import time

import pytest

from conftest import hw3

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

# default widths (784-512-256-10), where OpenBLAS does split the products over threads when allowed to
JOB = ("sweep", "--activations", "relu", "--lrs", "0.04", "--epochs", "1", "--train-size", "1000")
BUSY = ("sweep", "--activations", "tanh", "--lrs", "0.02,0.04", "--epochs", "2", "--train-size", "2000")


def _wait(env, job_ids, timeout=600) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        states = [json.loads(hw3("status", j, "--json", env=env).stdout)["state"] for j in job_ids]
        if all(s not in ("queued", "running") for s in states):
            assert states == ["succeeded"] * len(job_ids), states
            return
        time.sleep(1)
    raise AssertionError(f"jobs did not end: {states}")


def _metrics(env, job_id) -> list[tuple]:
    rows = json.loads(hw3("metrics", job_id, "--json", env=env, check=True).stdout)
    return [(r["run"], r["epoch"], r["lr"], r["train_loss"], r["train_accuracy"], r["val_loss"], r["val_accuracy"])
            for r in rows]


def test_a_sweep_gives_the_same_numbers_alone_and_beside_another_job(hw3_env, redis_server, start_worker):
    env = {**hw3_env, "CELERY_BROKER_URL": redis_server}
    start_worker(env, concurrency=2)
    alone = hw3(*JOB, env=env, check=True).stdout.strip()
    _wait(env, [alone])
    beside = hw3(*JOB, env=env, check=True).stdout.strip()
    other = hw3(*BUSY, env=env, check=True).stdout.strip()
    _wait(env, [beside, other])
    first, second = _metrics(env, alone), _metrics(env, beside)
    assert [r[:2] for r in first] == [("relu-lr0.04", 1), ("final", 1)]
    assert first == second  # exact: every float equal
    results = [json.loads(hw3("status", j, "--json", env=env).stdout)["result"] for j in (alone, beside)]
    assert results[0]["test_accuracy"] == results[1]["test_accuracy"]
