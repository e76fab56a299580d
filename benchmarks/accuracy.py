"""The whole homework procedure with the engine's defaults; prints one JSON object.

Six configs (DEFAULT_ACTIVATIONS x DEFAULT_LRS, everything else TrainConfig's defaults) train
on the first 50,000 training images and validate on the last 10,000; the config with the best
final-epoch validation accuracy is retrained on all 60,000 and tested once on the test file.
No preprocessing: pixels as loaded by shared.datasets (float32 in [0, 1]).

Input: mnist_traindata.hdf5 and mnist_testdata.hdf5 in the datasets directory, the service's own
setting (HW3_DATASETS, see shared/settings.py; nothing is downloaded).

usage: python benchmarks/accuracy.py [--jobs 6 | --jobs 1] [--sweep-only] [--set dropout=0.3 ...]
  --jobs N   N worker processes with 1 BLAS thread each (default: one per CPU core);
             --jobs 1 runs sequentially with the BLAS threads left as they are (all cores).
  --set      override TrainConfig fields for experiments (JSON values: --set hidden=[1024,512]).
"""

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from shared.datasets import N_TRAIN, mnist_full_train, mnist_test  # noqa: E402
from shared.settings import get_settings  # noqa: E402
from worker.engine import DEFAULT_ACTIVATIONS, DEFAULT_LRS, TrainConfig, Trainer, evaluate  # noqa: E402


def train_one(config_dict, datasets_dir, with_val=True):
    cfg = TrainConfig.from_dict(config_dict)
    x, y = mnist_full_train(datasets_dir)
    if with_val:
        trainer = Trainer(cfg, x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:])
    else:
        trainer = Trainer(cfg, x, y)
    start = time.perf_counter()
    for r in trainer.run():
        val = "" if r.val_accuracy is None else f" val {r.val_accuracy:.4f}"
        print(f"[{cfg.activation} lr={cfg.lr:g}] epoch {r.epoch:2d} train {r.train_accuracy:.4f}{val} {r.seconds:.2f}s",
              file=sys.stderr, flush=True)
    return trainer, time.perf_counter() - start


def sweep_job(config_dict, datasets_dir):
    trainer, seconds = train_one(config_dict, datasets_dir)
    h = trainer.history
    return {
        "activation": trainer.config.activation,
        "lr": trainer.config.lr,
        "final_val_accuracy": h[-1].val_accuracy,
        "best_val_accuracy": max(r.val_accuracy for r in h),
        "final_train_accuracy": h[-1].train_accuracy,
        "median_epoch_s": round(float(np.median([r.seconds for r in h])), 3),
        "seconds": round(seconds, 1),
        "val_accuracy_by_epoch": [round(r.val_accuracy, 4) for r in h],
    }


def test_job(config_dict, datasets_dir):
    trainer, seconds = train_one(config_dict, datasets_dir, with_val=False)
    x_test, y_test = mnist_test(datasets_dir)
    ev = evaluate(trainer.model, x_test, y_test)
    return {"test_accuracy": ev.accuracy, "test_loss": ev.loss, "seconds": round(seconds, 1),
            "final_train_accuracy": trainer.history[-1].train_accuracy}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=min(os.cpu_count() or 1, len(DEFAULT_ACTIVATIONS) * len(DEFAULT_LRS)))
    p.add_argument("--epochs", type=int, default=None, help="override epochs (quick checks only)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=JSON", help="override a TrainConfig field")
    p.add_argument("--lrs", type=float, nargs="+", default=list(DEFAULT_LRS))
    p.add_argument("--activations", nargs="+", default=list(DEFAULT_ACTIVATIONS))
    p.add_argument("--sweep-only", action="store_true", help="stop after the sweep (no retrain, no test)")
    args = p.parse_args(argv)

    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    overrides.setdefault("threads", 1 if args.jobs > 1 else None)
    configs = [TrainConfig(**{**overrides, "activation": a, "lr": lr}) for a in args.activations for lr in args.lrs]

    datasets_dir = get_settings().datasets_dir
    start = time.perf_counter()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(sweep_job, [c.to_dict() for c in configs], [datasets_dir] * len(configs)))
    else:
        results = [sweep_job(c.to_dict(), datasets_dir) for c in configs]
    best = max(range(len(configs)), key=lambda i: results[i]["final_val_accuracy"])  # first wins ties
    chosen = configs[best]
    if args.sweep_only:
        print(json.dumps({"configs": results, "chosen": chosen.to_dict(), "total_seconds": round(time.perf_counter() - start, 1)}))
        return
    final_cfg = TrainConfig(**{**chosen.to_dict(), "threads": None})  # retrain alone: all cores
    test = test_job(final_cfg.to_dict(), datasets_dir)
    print(json.dumps({
        "configs": results,
        "chosen": chosen.to_dict(),
        "chosen_val_accuracy": results[best]["final_val_accuracy"],
        "test_accuracy": test["test_accuracy"],
        "test_loss": round(test["test_loss"], 5),
        "retrain_seconds": test["seconds"],
        "total_seconds": round(time.perf_counter() - start, 1),
        "jobs": args.jobs,
        "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
