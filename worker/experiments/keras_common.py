"""Shared plumbing for the Keras experiments (Problems 2-4).

TensorFlow is imported lazily inside functions only: this module (and the experiment modules
that use it) are imported by the CLI and by the Celery parent process before it forks, and a
TensorFlow runtime must not be initialised there.

Conventions of every experiment function:
    * inputs are numpy arrays plus a ``params`` dict (missing keys take documented defaults),
    * artifacts are written below ``out_dir``; one run of a multi-run job writes below
      ``out_dir / "runs" / <run_name>``,
    * ``on_epoch(dict)`` is called after every epoch with keys epoch (1-based), lr, train_loss,
      train_accuracy, val_loss, val_accuracy, seconds,
    * ``should_stop()`` is polled after every epoch; when it returns True training stops and
      the result carries ``"stopped_early": True``,
    * the return value is an :class:`ExperimentResult` (JSON-serialisable ``result`` dict plus
      the paths written).
"""
from __future__ import annotations

import json
import logging
import os
import random
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

OnEpoch = Callable[[dict[str, Any]], None]
ShouldStop = Callable[[], bool]

_configured_threads: int | None = None


@dataclass
class ExperimentResult:
    """What an experiment function returns: a JSON-serialisable result and the files it wrote."""

    result: dict[str, Any]
    artifacts: list[Path] = field(default_factory=list)


# Training settings shared by the two Fashion-MNIST problems (2 and 3); each adds its network's own.
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


def merge_params(defaults: Mapping[str, Any], params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults overridden by ``params``; unknown keys are an error (they are usually typos).

    A dict-valued default is updated key by key rather than replaced.
    """
    params = dict(params or {})
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}; allowed: {sorted(defaults)}")
    merged = dict(defaults)
    for key, value in params.items():
        if isinstance(defaults[key], Mapping) and isinstance(value, Mapping):
            merged[key] = {**defaults[key], **value}
        else:
            merged[key] = value
    return merged


def configure_tensorflow(threads: int = 1) -> None:
    """Quiet TensorFlow's logs and pin its CPU thread pools, before any op runs.

    Intra-op parallelism is set to ``threads`` and inter-op to 1. TensorFlow only accepts this
    before its runtime is initialised; a later call in the same process keeps the first setting
    (logged when it differs).
    """
    global _configured_threads
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    threads = max(1, int(threads))
    import tensorflow as tf

    if _configured_threads is not None:
        if threads != _configured_threads:
            log.info("TensorFlow already uses %d thread(s); keeping that instead of %d",
                     _configured_threads, threads)
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        _configured_threads = threads
    except RuntimeError:  # runtime already initialised by someone else
        _configured_threads = tf.config.threading.get_intra_op_parallelism_threads() or threads
        log.info("TensorFlow runtime already initialised; thread settings left as they are")
    try:
        tf.get_logger().setLevel(logging.ERROR)
    except Exception:  # pragma: no cover - cosmetic only
        pass


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and TensorFlow/Keras' random generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    import keras

    keras.utils.set_random_seed(int(seed))


def current_lr(model: Any) -> float:
    """The optimizer's current learning rate as a float (schedules evaluated at the current step)."""
    import keras

    try:
        return float(keras.ops.convert_to_tensor(model.optimizer.learning_rate))
    except (TypeError, ValueError, AttributeError):
        return float("nan")


def epoch_callback(on_epoch: OnEpoch | None = None, should_stop: ShouldStop | None = None) -> Any:
    """A Keras callback reporting each epoch and honouring cancellation.

    At each epoch end it records ``dict(epoch, lr, train_loss, train_accuracy, val_loss,
    val_accuracy, seconds)`` in ``.history``, passes it to ``on_epoch`` and, when ``should_stop()``
    is True, sets ``model.stop_training = True`` and ``.stopped = True``.
    """
    import keras

    class EpochReporter(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.history: list[dict[str, Any]] = []
            self.stopped = False
            self._t0 = time.perf_counter()

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}

            def get(key: str) -> float | None:
                v = logs.get(key)
                return None if v is None else float(v)

            row = {
                "epoch": int(epoch) + 1,
                "lr": current_lr(self.model),
                "train_loss": get("loss"),
                "train_accuracy": get("accuracy"),
                "val_loss": get("val_loss"),
                "val_accuracy": get("val_accuracy"),
                "seconds": time.perf_counter() - self._t0,
            }
            self.history.append(row)
            if on_epoch is not None:
                on_epoch(dict(row))
            if should_stop is not None and should_stop():
                self.stopped = True
                self.model.stop_training = True

    return EpochReporter()


def best_weights_callback(monitor: str = "val_accuracy", tie_break: str = "val_loss") -> Any:
    """A callback that remembers the weights of the best epoch by ``monitor`` (higher is better;
    equal values are broken by lower ``tie_break``). Call ``.restore()`` after ``fit``."""
    import keras

    class BestWeights(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.best: float = -np.inf
            self.best_tie: float = np.inf
            self.best_epoch: int | None = None
            self.best_logs: dict[str, float] = {}
            self._weights: list[np.ndarray] | None = None

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            value = logs.get(monitor)
            if value is None:
                return
            value = float(value)
            tie = float(logs.get(tie_break, np.inf))
            if value > self.best or (value == self.best and tie < self.best_tie):
                self.best, self.best_tie = value, tie
                self.best_epoch = int(epoch) + 1
                self.best_logs = {k: float(v) for k, v in logs.items()}
                self._weights = [np.array(w) for w in self.model.get_weights()]

        def restore(self) -> bool:
            if self._weights is None:
                return False
            self.model.set_weights(self._weights)
            return True

    return BestWeights()


def validation_tail(x: np.ndarray, y: np.ndarray, val_fraction: float
                    ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Split off the last ``val_fraction`` of the samples as validation data (Keras-style)."""
    n = len(x)
    n_val = int(round(n * val_fraction))
    if not 0 < n_val < n:
        raise ValueError(f"val_fraction={val_fraction} leaves no training or validation data")
    return (x[: n - n_val], y[: n - n_val]), (x[n - n_val:], y[n - n_val:])


def to_jsonable(obj: Any) -> Any:
    """Recursively convert numpy scalars/arrays, tuples and Paths into JSON-friendly values."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def write_json(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_jsonable(obj), indent=2) + "\n")
    return path


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def rel(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` as a POSIX string (for links in reports and results)."""
    return Path(path).relative_to(root).as_posix()


def dense_kernels(model: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """(kernel, bias) of every Dense layer of a model, in order, as numpy arrays."""
    import keras

    out = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            kernel, bias = layer.get_weights()
            out.append((np.asarray(kernel), np.asarray(bias)))
    return out


OPTIMIZERS = ("sgd", "momentum", "adam", "rmsprop")


def make_optimizer(name: str, learning_rate: Any, momentum: float = 0.9) -> Any:
    """A Keras optimizer by short name: sgd, momentum (SGD with ``momentum``), adam, rmsprop.

    ``learning_rate`` may be a float or a Keras learning-rate schedule.
    """
    import keras

    name = name.lower()
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate)
    if name == "momentum":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=learning_rate)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {OPTIMIZERS}")


def build_mlp(n_inputs: int, hidden_units: int, n_outputs: int, *, l2: float = 0.0,
              dropout: float = 0.0, output_activation: str = "softmax") -> Any:
    """Sequential Input → Dense(hidden, ReLU[, kernel L2]) → [Dropout] → Dense(n_outputs).

    Only built-in layers and regularizers, so a saved model loads without custom objects.
    """
    import keras

    reg = keras.regularizers.L2(l2) if l2 and l2 > 0 else None
    layers: list[Any] = [keras.Input(shape=(n_inputs,)),
                         keras.layers.Dense(hidden_units, activation="relu", kernel_regularizer=reg,
                                            name="hidden")]
    if dropout and dropout > 0:
        layers.append(keras.layers.Dropout(dropout, name="dropout"))
    layers.append(keras.layers.Dense(n_outputs, activation=output_activation, name="output"))
    return keras.Sequential(layers)


def cosine_schedule(learning_rate: float, total_steps: int, final_fraction: float) -> Any:
    """Cosine decay from ``learning_rate`` to ``learning_rate * final_fraction`` over the run."""
    import keras

    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate, decay_steps=max(1, int(total_steps)),
        alpha=final_fraction)


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


def train_fashion_mlp(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                      y_test: np.ndarray, *, hidden_units: int, l2: float, dropout: float,
                      p: Mapping[str, Any], on_epoch: OnEpoch | None, should_stop: ShouldStop | None,
                      threads: int) -> TrainedClassifier:
    """Train Dense(hidden, ReLU) [→ Dropout] → Dense(n_classes, softmax) on image vectors.

    ``p`` supplies epochs, batch_size, optimizer, learning_rate, lr_schedule ("cosine" or
    "constant"), final_lr_fraction, val_fraction (the last part of the training set validates)
    and seed. The model after the last epoch is evaluated on the test set.
    """
    configure_tensorflow(threads)
    seed_everything(int(p["seed"]))
    n_classes = int(max(np.max(y_train), np.max(y_test))) + 1
    (x_tr, y_tr), (x_val, y_val) = validation_tail(x_train, y_train, float(p["val_fraction"]))
    model = build_mlp(x_train.shape[1], int(hidden_units), n_classes, l2=float(l2),
                      dropout=float(dropout))
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
    t0 = time.perf_counter()
    if epochs > 0:
        model.fit(x_tr, y_tr, batch_size=batch, epochs=epochs, validation_data=(x_val, y_val),
                  callbacks=[reporter], verbose=0, shuffle=True)
    seconds = time.perf_counter() - t0
    test_loss, _ = model.evaluate(x_test, y_test, batch_size=1024, verbose=0)
    predictions = np.argmax(model.predict(x_test, batch_size=1024, verbose=0), axis=1)
    return TrainedClassifier(model=model, history=reporter.history, stopped_early=reporter.stopped,
                             test_loss=float(test_loss),
                             test_accuracy=float(np.mean(predictions == np.asarray(y_test))),
                             test_predictions=predictions, seconds=seconds)


def last_metrics(history: list[dict[str, Any]]) -> dict[str, Any]:
    """The final epoch's train/val numbers (empty when no epoch ran)."""
    if not history:
        return {}
    last = history[-1]
    return {k: last[k] for k in ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy")}


def save_hdf5(model: Any, path: Path) -> Path:
    """Save ``model`` in the legacy Keras HDF5 format (chosen by Keras 3 from the .h5/.hdf5 suffix),
    loadable by a plain ``tf.keras.models.load_model(path)``. The format's deprecation notice
    (and numpy's about Keras' HDF5 writer) is kept out of the logs."""
    path = Path(path)
    if path.suffix not in (".h5", ".hdf5"):
        raise ValueError(f"{path}: the HDF5 format needs a .h5 or .hdf5 suffix")
    path.parent.mkdir(parents=True, exist_ok=True)
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # Keras' HDF5 writer converts variables with np.array(), which numpy 2 flags.
            warnings.filterwarnings("ignore", message=r"__array__ implementation doesn't accept a copy",
                                    category=DeprecationWarning)
            model.save(str(path))
    finally:
        absl_logger.setLevel(level)
    return path
