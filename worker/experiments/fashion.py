"""Training shared by the two Fashion-MNIST problems (2: confusion, 3: regularization).

A one-hidden-layer softmax classifier on 784-pixel vectors: the last part of the training set
validates, the learning rate follows a cosine from ``learning_rate`` down to
``final_lr_fraction`` of it, and the model after the last epoch is evaluated on the test set.
TensorFlow is imported lazily inside the functions (see keras_common).
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from worker.experiments.keras_common import (OnEpoch, ShouldStop, build_mlp, checkpoint_callback,
                                             configure_tensorflow, dense_kernels, epoch_callback, make_optimizer,
                                             resume_point, seed_everything)

# Training settings of both problems; each adds its network's own (hidden_units, l2, dropout).
FASHION_TRAINING: dict[str, Any] = {
    "epochs": 40,
    "batch_size": 128,
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "lr_schedule": "cosine",
    "final_lr_fraction": 0.02,
    "val_fraction": 0.1,
    "seed": 0,
}


@dataclass
class TrainedClassifier:
    """What :func:`train_fashion_mlp` hands back."""

    model: Any
    history: list[dict[str, Any]]
    stopped_early: bool
    test_loss: float
    test_accuracy: float
    test_predictions: np.ndarray
    seconds: float
    initial_weights: list[tuple[np.ndarray, np.ndarray]]  # (kernel, bias) per Dense layer, before the first update
    n_train: int
    n_val: int


def validation_tail(x: np.ndarray, y: np.ndarray, val_fraction: float
                    ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Split off the last ``val_fraction`` of the samples as validation data (Keras-style)."""
    n = len(x)
    n_val = int(round(n * val_fraction))
    if not 0 < n_val < n:
        raise ValueError(f"val_fraction={val_fraction} leaves no training or validation data")
    return (x[: n - n_val], y[: n - n_val]), (x[n - n_val:], y[n - n_val:])


def cosine_schedule(learning_rate: float, total_steps: int, final_fraction: float) -> Any:
    """Cosine decay from ``learning_rate`` to ``learning_rate * final_fraction`` over the run."""
    import keras

    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate, decay_steps=max(1, int(total_steps)),
        alpha=final_fraction)


def train_fashion_mlp(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                      y_test: np.ndarray, *, hidden_units: int, l2: float, dropout: float,
                      p: Mapping[str, Any], on_epoch: OnEpoch | None, should_stop: ShouldStop | None,
                      threads: int, checkpoint: Path | None = None,
                      earlier: Sequence[Mapping[str, Any]] = ()) -> TrainedClassifier:
    """Train Dense(hidden, ReLU) [→ Dropout] → Dense(n_classes, softmax) on image vectors.

    ``p`` supplies epochs, batch_size, optimizer, learning_rate, lr_schedule ("cosine" or
    "constant"), final_lr_fraction, val_fraction (the last part of the training set validates)
    and seed. The model after the last epoch is evaluated on the test set. The Dense layers' weights
    before the first update (Keras' default Glorot-uniform kernels, zero biases, drawn from ``seed``) are
    handed back as ``initial_weights``. With ``checkpoint``, the state after every epoch is saved there, and
    training resumes from it when it exists (``earlier``: the rows of the epochs it holds, which start the
    history); the initial weights are those the seed draws, as in the first attempt.
    """
    configure_tensorflow(threads)
    seed_everything(int(p["seed"]))
    n_classes = int(max(np.max(y_train), np.max(y_test))) + 1
    (x_tr, y_tr), (x_val, y_val) = validation_tail(x_train, y_train, float(p["val_fraction"]))
    model = build_mlp(x_train.shape[1], int(hidden_units), n_classes, l2=float(l2),
                      dropout=float(dropout))
    initial_weights = dense_kernels(model)
    batch = int(p["batch_size"])
    epochs = int(p["epochs"])
    lr: Any = float(p["learning_rate"])
    if p["lr_schedule"] == "cosine":
        lr = cosine_schedule(lr, epochs * int(np.ceil(len(x_tr) / batch)), float(p["final_lr_fraction"]))
    elif p["lr_schedule"] != "constant":
        raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {p['lr_schedule']!r}")
    model.compile(optimizer=make_optimizer(str(p["optimizer"]), lr),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    reporter = epoch_callback(on_epoch, should_stop)
    start, _ = resume_point(model, checkpoint, earlier)
    callbacks = [reporter] + ([checkpoint_callback(checkpoint)] if checkpoint is not None else [])
    t0 = time.perf_counter()
    if epochs > start:
        model.fit(x_tr, y_tr, batch_size=batch, epochs=epochs, initial_epoch=start, validation_data=(x_val, y_val),
                  callbacks=callbacks, verbose=0, shuffle=True)
    seconds = time.perf_counter() - t0 + sum(float(r.get("seconds") or 0.0) for r in earlier)
    test_loss, _ = model.evaluate(x_test, y_test, batch_size=1024, verbose=0)
    predictions = np.argmax(model.predict(x_test, batch_size=1024, verbose=0), axis=1)
    return TrainedClassifier(model=model, history=[dict(r) for r in earlier] + reporter.history,
                             stopped_early=reporter.stopped,
                             test_loss=float(test_loss),
                             test_accuracy=float(np.mean(predictions == np.asarray(y_test))),
                             test_predictions=predictions, seconds=seconds, initial_weights=initial_weights,
                             n_train=len(x_tr), n_val=len(x_val))


def last_metrics(history: list[dict[str, Any]]) -> dict[str, Any]:
    """The final epoch's train/val numbers (empty when no epoch ran)."""
    if not history:
        return {}
    last = history[-1]
    return {k: last[k] for k in ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy")}
