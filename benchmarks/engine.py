"""Epoch time of the numpy engine vs tf.keras vs numpy's own sgemm roofline; prints one JSON object.

Workload: 50,000 x 784 float32 rows, 784-512-256-10 ReLU, batch 100, plain SGD (no momentum, L2
or dropout): 500 updates per epoch. The rows are MNIST's 50,000 training images when
mnist_traindata.hdf5 is in the datasets directory (the service's setting HW3_DATASETS, see
shared/settings.py; nothing is downloaded), else random ("data" in the output says which).

  engine_epoch_s   median of the engine's timed epochs (Trainer's own per-epoch seconds)
  keras_epoch_s    median of tf.keras fit epochs, same network/batch/optimizer, float32
  sgemm_epoch_s    500 x one training step's matmuls alone (forward, weight gradients, delta
                   propagation for all but the first layer), with out= buffers: the roofline
  *_gflops         2*m*k*n per matmul of that sequence, divided by the time
  roofline_fraction = engine_gflops / sgemm_gflops (ratio of the two medians)
  roofline_fraction_paired
                   median over epochs of sgemm_i / engine_i, each engine epoch paired with the
                   roofline run right after it: less sensitive to the machine's speed drifting

--regularized times the sweep's own settings instead of plain SGD: momentum, L2 on the weights
and dropout on the hidden layers (TrainConfig's defaults), for the engine and for Keras (SGD with
momentum, an L2 kernel regularizer of l2/2, since Keras adds l2*sum(W**2) to the loss, and Dropout
layers). The roofline stays the plain step's matmuls.

The first epoch of each contender is warm-up and is not timed. Engine epochs and roofline runs
alternate, so both see the same background load on a shared machine.

usage: python benchmarks/engine.py [--epochs 5] [--threads N] [--skip-keras] [--regularized]
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from shared.datasets import MNIST_TRAIN_FILE, N_TRAIN, mnist_train_val  # noqa: E402
from shared.settings import get_settings  # noqa: E402
from worker.engine import TrainConfig, Trainer, blas_threads  # noqa: E402

N, BATCH, SIZES, LR = N_TRAIN, 100, (784, 512, 256, 10), 0.05


def load_data():
    datasets_dir = get_settings().datasets_dir
    if (datasets_dir / MNIST_TRAIN_FILE).is_file():
        x, y, _, _ = mnist_train_val(datasets_dir)
        return x, y, "mnist"
    rng = np.random.default_rng(0)
    return rng.random((N, SIZES[0]), dtype=np.float32), rng.integers(0, SIZES[-1], N), "random"


def step_matmuls(rng):
    """Closure running one training step's matmuls at the engine's shapes and layouts.

    Hidden layers are (batch, width); the output layer runs transposed as in the engine
    (logits and their delta (10, batch)), so its three products take the same operand layouts.
    """
    f32 = np.float32
    ws = [rng.standard_normal((a, b), dtype=f32) * f32(0.05) for a, b in zip(SIZES[:-1], SIZES[1:])]
    hs = [rng.random((BATCH, n), dtype=f32) for n in SIZES[:-1]]  # layer inputs
    outs = [np.empty((BATCH, n), f32) for n in SIZES[1:-1]] + [np.empty((SIZES[-1], BATCH), f32)]
    deltas = [rng.standard_normal((BATCH, n), dtype=f32) for n in SIZES[1:-1]]
    deltas.append(rng.standard_normal((SIZES[-1], BATCH), dtype=f32).T)  # (batch, 10) view of (10, batch)
    grads = [np.empty_like(w) for w in ws]
    props = [np.empty((BATCH, n), f32) for n in SIZES[:-1]]
    last = len(ws) - 1

    def step():
        for i, (h, w, o) in enumerate(zip(hs, ws, outs)):
            if i == last:
                np.matmul(w.T, h.T, out=o)
            else:
                np.matmul(h, w, out=o)
        for i in range(last, -1, -1):
            np.matmul(hs[i].T, deltas[i], out=grads[i])
            if i:
                np.matmul(deltas[i], ws[i].T, out=props[i])

    return step


def flops_per_step() -> int:
    layers = list(zip(SIZES[:-1], SIZES[1:]))
    fwd = sum(2 * BATCH * a * b for a, b in layers)
    return 2 * fwd + sum(2 * BATCH * a * b for a, b in layers[1:])  # + weight grads + propagation


PLAIN = dict(momentum=0.0, l2=0.0, dropout=0.0)
REGULARIZED = {k: getattr(TrainConfig(), k) for k in PLAIN}  # the sweep's defaults


def bench_engine_and_roofline(x, y, epochs, threads, optim):
    cfg = TrainConfig(
        hidden=SIZES[1:-1], activation="relu", lr=LR, batch_size=BATCH, epochs=epochs + 1,
        decay_epochs=(), init="he", seed=0, threads=threads, **optim,
    )
    trainer = Trainer(cfg, x, y)
    step, steps = step_matmuls(np.random.default_rng(1)), N // BATCH
    engine, roofline = [], []
    trainer.run_epoch()  # warm-up
    with blas_threads(threads):
        for _ in range(steps):
            step()
    for _ in range(epochs):
        engine.append(trainer.run_epoch().seconds)
        with blas_threads(threads):
            start = time.perf_counter()
            for _ in range(steps):
                step()
            roofline.append(time.perf_counter() - start)
    return engine, roofline, trainer.history[-1].train_accuracy


def bench_keras(x, y, epochs, threads, optim):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if threads is not None:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    keras = tf.keras
    keras.utils.set_random_seed(0)
    reg = keras.regularizers.L2(optim["l2"] / 2) if optim["l2"] else None
    layers = [keras.Input((SIZES[0],), dtype="float32")]
    for n in SIZES[1:-1]:
        layers.append(keras.layers.Dense(n, activation="relu", kernel_regularizer=reg))
        if optim["dropout"]:
            layers.append(keras.layers.Dropout(optim["dropout"]))
    layers.append(keras.layers.Dense(SIZES[-1], activation="softmax", kernel_regularizer=reg))
    model = keras.Sequential(layers)
    opt = keras.optimizers.SGD(LR, momentum=optim["momentum"])
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    times = []
    hist = model.fit(x, y, batch_size=BATCH, epochs=epochs + 1, shuffle=True, verbose=0, callbacks=[Timer()])
    return times[1:], hist.history["accuracy"][-1], tf.__version__


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5, help="timed epochs per contender (>= 3)")
    p.add_argument("--threads", type=int, default=None, help="BLAS / TF threads (default: leave as is)")
    p.add_argument("--skip-keras", action="store_true")
    p.add_argument("--regularized", action="store_true", help="momentum, L2 and dropout as in the sweep")
    args = p.parse_args(argv)
    optim = REGULARIZED if args.regularized else PLAIN
    if args.epochs < 3:
        p.error("--epochs must be >= 3")

    x, y, source = load_data()
    load_before = os.getloadavg()[0]
    engine, roofline, engine_acc = bench_engine_and_roofline(x, y, args.epochs, args.threads, optim)
    with blas_threads(args.threads):
        blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    flops_epoch = flops_per_step() * (N // BATCH)
    engine_s, sgemm_s = statistics.median(engine), statistics.median(roofline)
    result = {
        "engine_epoch_s": round(engine_s, 4),
        "keras_epoch_s": None,
        "speedup_vs_keras": None,
        "sgemm_epoch_s": round(sgemm_s, 4),
        "engine_gflops": round(flops_epoch / engine_s / 1e9, 2),
        "sgemm_gflops": round(flops_epoch / sgemm_s / 1e9, 2),
        "roofline_fraction": round(sgemm_s / engine_s, 3),
        "roofline_fraction_paired": round(statistics.median(r / e for e, r in zip(engine, roofline)), 3),
        "threads": blas[0]["num_threads"] if blas else None,
        "blas": {k: blas[0].get(k) for k in ("internal_api", "version", "architecture")} if blas else None,
        "engine_epochs_s": [round(t, 4) for t in engine],
        "sgemm_epochs_s": [round(t, 4) for t in roofline],
        "engine_train_accuracy_last": round(engine_acc, 4),
    }
    if not args.skip_keras:
        keras_times, keras_acc, tf_version = bench_keras(x, y, args.epochs, args.threads, optim)
        keras_s = statistics.median(keras_times)
        result.update(
            keras_epoch_s=round(keras_s, 4),
            speedup_vs_keras=round(keras_s / engine_s, 3),
            keras_epochs_s=[round(t, 4) for t in keras_times],
            keras_train_accuracy_last=round(keras_acc, 4),
            tensorflow=tf_version,
        )
    result.update(
        optimizer={"lr": LR, **optim},
        data=source,
        flops_per_epoch=flops_epoch,
        numpy=np.__version__,
        cpu=platform.processor() or platform.machine(),
        cpus=os.cpu_count(),
        loadavg_1min=[round(load_before, 2), round(os.getloadavg()[0], 2)],
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
