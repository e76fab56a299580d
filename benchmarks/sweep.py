"""Service overhead of a whole sweep, measured on real data with a real Redis and a real Celery worker.

Prints one JSON object:
  wall_s                   submit → job succeeded
  train_seconds_sum        the seven runs' training seconds (sum of their epochs' seconds)
  train_core_seconds_sum   the same weighted by the BLAS threads each run used (the job's --threads, recorded
                           with every run, the final retrain included)
  overhead_ratio           wall_s ÷ (train_core_seconds_sum ÷ cores)   goal ≤ 1.10
  overhead_ratio_unweighted  wall_s ÷ (train_seconds_sum ÷ cores)
  first_row_s, first_epoch_s, first_row_minus_epoch_s
                           submit → first epoch row visible in the database, that epoch's own seconds,
                           and the difference                          goal: first_row_s ≤ 2 s + one epoch
  peak_rss_mib             peak RSS (VmHWM) of each worker pool process;  goal ≤ 1.5 GiB each
  rss_by_runs_done         per pool process, RSS (MiB) after its 1st, 2nd, ... run: flat = not growing

Usage: HW3_DATASETS=../shared/data python benchmarks/sweep.py [--epochs 50] [--train-size 50000]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service import children, redis_and_worker  # noqa: E402  (benchmarks/service.py)


def rss_mib(pid: int, field: str = "VmRSS") -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--train-size", type=int, default=50_000)
    ap.add_argument("--concurrency", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--threads", type=int, default=1, help="the job's BLAS threads per run")
    args = ap.parse_args()
    from shared.settings import get_settings

    datasets = get_settings().datasets_dir.resolve()
    data = Path(tempfile.mkdtemp(prefix="hw3-bench-"))
    try:
        with redis_and_worker(data, datasets, args.concurrency) as (store, worker):
            from api import client

            measure(client, store, worker, args)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def measure(client, store, worker, args) -> None:
    """Submit the sweep, follow it to its end, print the figures."""
    extra = {"epochs": args.epochs} if args.epochs != 50 else {}
    t0 = time.perf_counter()
    job_id = client.submit("sweep", {"train_size": args.train_size, "threads": args.threads, **extra}, store)
    first_row_s = None
    rss: dict[int, list[float]] = {}
    while True:
        status = store.job_status(job_id)
        if first_row_s is None and any(r.epochs_done for r in status.runs):
            first_row_s = time.perf_counter() - t0
        for pid in children(worker.pid):
            now = rss_mib(pid)
            if now is not None:
                rss.setdefault(pid, []).append(now)
        if status.finished:
            break
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    peaks = {pid: rss_mib(pid, "VmHWM") for pid in children(worker.pid)}
    rows = [r.to_dict() for r in store.epochs(job_id)]
    threads = args.threads
    cores = len(os.sched_getaffinity(0))
    secs = sum(r["seconds"] for r in rows)
    core_secs = sum(r["seconds"] * threads for r in rows)
    first = min(rows, key=lambda r: r["run_id"] * 10_000 + r["epoch"])
    print(json.dumps({
        "state": status.state, "epochs": args.epochs, "train_size": args.train_size,
        "runs": len(status.runs), "cores": cores, "concurrency": args.concurrency,
        "blas_threads_per_run": threads, "wall_s": round(wall, 2),
        "train_seconds_sum": round(secs, 2), "train_core_seconds_sum": round(core_secs, 2),
        "overhead_ratio": round(wall / (core_secs / cores), 4),
        "overhead_ratio_unweighted": round(wall / (secs / cores), 4),
        "first_row_s": round(first_row_s, 3), "first_epoch_s": round(first["seconds"], 3),
        "first_row_minus_epoch_s": round(first_row_s - first["seconds"], 3),
        "peak_rss_mib": {str(pid): round(v, 1) for pid, v in peaks.items() if v},
        "test_accuracy": (status.result or {}).get("test_accuracy"),
        "chosen": (status.result or {}).get("chosen"),
    }, indent=2))


if __name__ == "__main__":
    main()
