"""Grading speed: N valid Problem 4 model files graded through the service (a real Redis, a real worker with
concurrency 2) against a plain sequential loop in one process that loads each file with tf.keras and evaluates it
on the same data (the validation part of the course file, as `grade human-machine` uses by default).

Prints one JSON object:
  files, cores, concurrency
  service_s          submit (listing, hashing and copying the files included) → job succeeded; each pool process
                     imports TensorFlow on its first file, inside this time
  loop_s             a fresh process: import TensorFlow and read the data, then per file load_model + compile +
                     evaluate (TensorFlow's default threads: every core)
  loop_import_s      the part of loop_s before the first file
  speedup            loop_s / service_s
  per_file_ms        service_s / files, in milliseconds;  loop_per_file_ms: the same for the loop
  max_accuracy_diff  the largest |service accuracy - tf.keras accuracy| over the files (0: the same numbers)

The model files are written first by another process (Problem 4's architecture and saver, the three
regularisation variants, random weights); neither timing includes that.

Usage: HW3_DATASETS=../shared/data python benchmarks/grade.py [--files 100] [--concurrency 2]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service import redis_and_worker  # noqa: E402  (benchmarks/service.py)

WRITE_MODELS = """
import sys, numpy as np, keras
from pathlib import Path
from worker.experiments.human_machine import save_hdf5
from worker.experiments.keras_common import build_mlp
folder, n = Path(sys.argv[1]), int(sys.argv[2])
variants = [build_mlp(20, 20, 1, output_activation="sigmoid"),
            build_mlp(20, 20, 1, l2=1e-3, output_activation="sigmoid"),
            build_mlp(20, 20, 1, dropout=0.2, output_activation="sigmoid")]
rng = np.random.default_rng(0)
for i in range(n):
    model = variants[i % 3]
    model.set_weights([rng.normal(scale=0.3, size=w.shape).astype("float32") for w in model.get_weights()])
    save_hdf5(model, folder / f"student-{i:03d}.hdf5")
"""

TF_KERAS_LOOP = """
import json, sys, time
start = time.perf_counter()
import numpy as np, tensorflow as tf
from pathlib import Path
from shared import datasets
from worker.experiments.human_machine import split_data
x, y = datasets.load_human_machine(datasets.find_human_machine(Path(sys.argv[2])))
_, (x_val, y_val) = split_data(x, y)
ready = time.perf_counter()
accuracy = {}
for path in sorted(Path(sys.argv[1]).glob("*.hdf5")):
    model = tf.keras.models.load_model(path, compile=False)
    model.compile(loss="binary_crossentropy", metrics=["accuracy"])
    accuracy[str(path)] = model.evaluate(x_val, y_val.reshape(-1, 1), verbose=0)[1]
print(json.dumps({"loop_s": time.perf_counter() - start, "import_s": ready - start, "accuracy": accuracy}))
"""


def quiet_env() -> dict:
    from shared.settings import process_environment

    return {**process_environment(), "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=2)
    args = ap.parse_args()
    from shared.settings import get_settings

    datasets = get_settings().datasets_dir.resolve()
    data = Path(tempfile.mkdtemp(prefix="hw3-bench-grade-"))
    models = data / "class"
    models.mkdir()
    subprocess.run([sys.executable, "-c", WRITE_MODELS, str(models), str(args.files)], env=quiet_env(), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with redis_and_worker(data, datasets, args.concurrency, {"TF_CPP_MIN_LOG_LEVEL": "3"}) as (store, worker):
        from api import client

        start = time.perf_counter()
        job_id = client.submit("grade-human-machine", {"path": [str(models)]}, store)
        while not (status := store.job_status(job_id)).finished:
            time.sleep(0.1)
        service_s = time.perf_counter() - start
    try:
        loop = json.loads(subprocess.run([sys.executable, "-c", TF_KERAS_LOOP, str(models), str(datasets)],
                                         env=quiet_env(), check=True, capture_output=True, text=True).stdout)
        grades = (status.result or {}).get("grades", [])
        diffs = [abs(g["accuracy"] - loop["accuracy"][g["file"]]) for g in grades if g["error"] is None]
        print(json.dumps({
            "files": args.files, "cores": len(os.sched_getaffinity(0)), "concurrency": args.concurrency,
            "state": status.state, "graded": sum(g["error"] is None for g in grades),
            "service_s": round(service_s, 2), "loop_s": round(loop["loop_s"], 2),
            "loop_import_s": round(loop["import_s"], 2), "speedup": round(loop["loop_s"] / service_s, 2),
            "per_file_ms": round(1000 * service_s / args.files, 1),
            "loop_per_file_ms": round(1000 * loop["loop_s"] / args.files, 1),
            "max_accuracy_diff": max(diffs) if diffs else None,
        }, indent=2))
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
