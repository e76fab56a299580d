"""The cost of a Keras run's per-epoch checkpoint (what lets an interrupted Keras run resume): the time of one
`save_checkpoint` (weights, optimizer state, written to a temporary file and renamed) and the file's size, for
Problem 2's network (784-100-10, Adam; Problem 3's models are of its size) and Problem 4's (20-20-1, RMSprop,
the largest optimizer state of its four), next to one epoch of the same model's training on random data of the
homework's size in the same process.

Prints one JSON object, per model: save_ms (median of 21 saves), bytes, epoch_s (one epoch of fit, the
homework's batch size, after a warm-up epoch) and overhead (save_ms / 1000 / epoch_s).

Usage: python benchmarks/checkpoint.py
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from worker.experiments import keras_common as kc  # noqa: E402

MODELS = {  # inputs, hidden units, outputs, optimizer, loss, training rows, batch
    "problem2": (784, 100, 10, "adam", "sparse_categorical_crossentropy", 54_000, 128),
    "problem4": (20, 20, 1, "rmsprop", "binary_crossentropy", 8_160, 16),
}


def measure(n_in, hidden, n_out, optimizer, loss, rows, batch) -> dict:
    model = kc.build_mlp(n_in, hidden, n_out, output_activation="softmax" if n_out > 1 else "sigmoid")
    model.compile(optimizer=kc.make_optimizer(optimizer, 1e-3), loss=loss)
    rng = np.random.default_rng(0)
    x = rng.random((rows, n_in), dtype=np.float32)
    y = rng.integers(0, max(n_out, 2), rows)
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)  # warm-up: graph building
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    epoch_s = time.perf_counter() - t0
    path = Path(tempfile.mkdtemp()) / kc.CHECKPOINT_FILE
    saves = []
    for _ in range(21):
        t0 = time.perf_counter()
        kc.save_checkpoint(path, model, 1)
        saves.append(time.perf_counter() - t0)
    save_ms = 1000 * statistics.median(saves)
    return {"save_ms": round(save_ms, 2), "bytes": path.stat().st_size, "epoch_s": round(epoch_s, 3),
            "overhead": round(save_ms / 1000 / epoch_s, 5)}


def main() -> None:
    kc.configure_tensorflow(1)
    print(json.dumps({name: measure(*spec) for name, spec in MODELS.items()}))


if __name__ == "__main__":
    main()
