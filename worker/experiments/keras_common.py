"""Shared plumbing for the Keras experiments (Problems 2-4).

TensorFlow is imported lazily inside functions only: this module (and the experiment modules
that use it) are imported by the CLI and by the Celery parent process before it forks, and a
TensorFlow runtime must not be initialised there.

Conventions of every experiment function:
    * inputs are numpy arrays plus a ``params`` dict (missing keys take documented defaults),
    * artifacts are written below ``out_dir``; one run of a multi-run job writes below
      ``shared.artifacts.run_dir(out_dir, run_name)``,
    * ``on_epoch(dict)`` is called after every epoch with keys epoch (1-based), lr, train_loss,
      train_accuracy, val_loss, val_accuracy, seconds,
    * ``should_stop()`` is polled after every epoch; when it returns True training stops and
      the result carries ``"stopped_early": True``,
    * the return value is an :class:`ExperimentResult` (JSON-serialisable ``result`` dict plus
      the paths written). The service stores the result and the epoch rows; a job's summary
      receives them from the store and reads only weights and models back from the folder
      (the JSON files written beside them are for the user).

Modules: fashion.py trains the Fashion-MNIST classifier of Problems 2 and 3; confusion.py,
regularization.py and human_machine.py are the problems.
"""
from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shared.serialize import to_jsonable
from worker.engine.model import atomic_savez

log = logging.getLogger(__name__)

OnEpoch = Callable[[dict[str, Any]], None]
ShouldStop = Callable[[], bool]

_configured_threads: int | None = None


@dataclass
class ExperimentResult:
    """What an experiment function returns: a JSON-serialisable result and the files it wrote."""

    result: dict[str, Any]
    artifacts: list[Path] = field(default_factory=list)


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


CHECKPOINT_FILE = "checkpoint.npz"  # in the run's folder; not published (resumable state, not a result)


def save_checkpoint(path: Path, model: Any, epoch: int, extra: Mapping[str, Any] | None = None) -> None:
    """The state a run resumes from after `epoch`: the model's weights, its optimizer's variables (iteration
    count, learning-rate schedule position, moments) and `extra` arrays, as plain arrays in one .npz, written
    to a temporary file and renamed (a crash leaves the previous checkpoint whole)."""
    arrays = {"epoch": np.asarray(int(epoch))}
    arrays.update({f"weight_{i}": np.asarray(w) for i, w in enumerate(model.get_weights())})
    arrays.update({f"optimizer_{i}": np.asarray(v.numpy())
                   for i, v in enumerate(model.optimizer.variables)})
    arrays.update({f"extra_{k}": np.asarray(v) for k, v in (extra or {}).items()})
    atomic_savez(path, arrays)


def load_checkpoint(path: Path) -> dict[str, np.ndarray] | None:
    """A checkpoint's arrays (numbers only: no pickle), or None when there is none."""
    if not Path(path).is_file():
        return None
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def checkpoint_epoch(path: Path) -> int:
    """The epoch a checkpoint was saved after (0 when there is none), reading that number only."""
    if not Path(path).is_file():
        return 0
    with np.load(path, allow_pickle=False) as npz:
        return int(npz["epoch"])


def restore_checkpoint(model: Any, checkpoint: Mapping[str, np.ndarray]) -> int:
    """Put a checkpoint's weights and optimizer state into `model` (built and compiled as when it was saved);
    returns the epoch it was saved after. ValueError when the checkpoint does not fit the model."""
    def count(prefix: str) -> int:
        return sum(k.startswith(prefix) for k in checkpoint)

    weights = [checkpoint[f"weight_{i}"] for i in range(count("weight_"))]
    if [w.shape for w in weights] != [tuple(w.shape) for w in model.get_weights()]:
        raise ValueError("the run's checkpoint does not fit its model (the job's parameters changed?)")
    model.set_weights(weights)
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    if count("optimizer_") != len(optimizer.variables):
        raise ValueError(f"the run's checkpoint holds {count('optimizer_')} optimizer variables, the optimizer "
                         f"{len(optimizer.variables)}")
    for i, variable in enumerate(optimizer.variables):
        variable.assign(checkpoint[f"optimizer_{i}"])
    return int(checkpoint["epoch"])


def resume_point(model: Any, checkpoint: Path | None,
                 earlier: Sequence[Mapping[str, Any]]) -> tuple[int, dict[str, np.ndarray] | None]:
    """(the epoch training starts after, the checkpoint's arrays): (0, None) without a checkpoint, else its
    epoch, its state restored into `model`; `earlier` (the run's stored rows up to it) must hold exactly its
    epochs. The arrays hold what a callback saved beside the model's state (its `extra_` entries)."""
    saved = load_checkpoint(checkpoint) if checkpoint is not None else None
    if saved is None:
        if earlier:
            raise ValueError(f"{len(earlier)} earlier epoch row(s) given without a checkpoint to resume from")
        return 0, None
    start = restore_checkpoint(model, saved)
    if [int(r["epoch"]) for r in earlier] != list(range(1, start + 1)):
        raise ValueError(f"the checkpoint is after epoch {start}, the earlier rows are epochs "
                         f"{[int(r['epoch']) for r in earlier]}")
    return start, saved


def checkpoint_callback(path: Path, extra: Callable[[], Mapping[str, Any]] | None = None) -> Any:
    """A Keras callback that checkpoints after every epoch (list it after the one that records the row: a crash
    between the two re-runs the epoch, never skips it)."""
    import keras

    class Checkpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            save_checkpoint(path, self.model, int(epoch) + 1, extra() if extra else None)

    return Checkpoint()


def write_json(path: Path, obj: Any) -> Path:
    """``obj`` as indented JSON at ``path`` (folders created), through shared.serialize.to_jsonable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_jsonable(obj), indent=2) + "\n")
    return path


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
