"""Epoch loop, per-epoch reports and resumable checkpoints."""

from __future__ import annotations

import contextlib
import json
import time
import zlib
from dataclasses import asdict, dataclass, replace

import numpy as np
from threadpoolctl import threadpool_limits

from .backprop import SGD, Backprop, one_hot_columns, train_step
from .config import TrainConfig
from .model import MLP, atomic_savez, evaluate, xent_metrics

CHECKPOINT_FORMAT = 1
_FROM_CHECKPOINT = object()  # Trainer.resume's default threads: keep the checkpoint's config.threads


@dataclass(frozen=True)
class EpochReport:
    """Metrics of one finished epoch.

    train_loss / train_accuracy: mean over the epoch's minibatches, taken from each minibatch's
    forward pass just before its update (dropout on), as Keras reports them; cross-entropy
    only, without the L2 term. val_*: full evaluation after the epoch (None without a
    validation set). seconds: wall time of the training pass alone (not validation).
    """

    epoch: int
    lr: float
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def blas_threads(threads: int | None):
    """Context limiting BLAS to `threads` threads; a no-op for None."""
    return contextlib.nullcontext() if threads is None else threadpool_limits(limits=threads, user_api="blas")


def _as_data(x, y, name: str, n_classes: int):
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"x_{name} must be a non-empty (rows, features) array, got shape {x.shape}")
    if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"y_{name} must be integer class labels of shape ({len(x)},), got {y.dtype} {y.shape}"
            " (for one-hot rows use y.argmax(axis=1))"
        )
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"y_{name} labels must be in 0..{n_classes - 1}, got {y.min()}..{y.max()}")
    return x, y.astype(np.intp)


def _with_ones_column(x):
    # float32 copy of x plus a constant-1 column: minibatches are then plain row gathers
    # into Backprop.x, whose last column feeds the first layer's bias row.
    out = np.empty((len(x), x.shape[1] + 1), np.float32)
    out[:, :-1] = x
    out[:, -1] = 1
    return out


def _fingerprint(x, y) -> int:
    # Cheap check that a resume sees the same training set: labels plus first and last rows.
    return zlib.crc32(y.tobytes() + x[0].tobytes() + x[-1].tobytes())


class Trainer:
    """Trains an MLP with minibatch SGD as `config` says; `run()` yields one EpochReport per epoch.

    Each epoch: lr = config.lr_at(epoch); shuffle the rows with the trainer's generator; for
    every minibatch, one forward pass, one backward pass and one update of every weight and
    bias (batch 100 on 50,000 rows: 500 updates). Stop early by not resuming the generator.

    x: (rows, features) floats, copied once to float32; y: integer labels (rows,) in
    0..n_classes-1. `model` is updated in place and its arrays are bound to the training
    buffers: read or copy them, never replace them.
    """

    def __init__(self, config: TrainConfig, x_train, y_train, x_val=None, y_val=None, *, n_classes: int = 10):
        self.config = config.validate(len(x_train))
        self.n_classes = n_classes
        x_train, self.y_train = _as_data(x_train, y_train, "train", n_classes)
        self._x1 = _with_ones_column(x_train)  # the only copy of the training inputs kept
        self.x_train = self._x1[:, :-1]
        if x_val is None:
            self.val = None
        else:
            x_val, y_val = _as_data(x_val, y_val, "val", n_classes)
            self.val = np.ascontiguousarray(x_val, dtype=np.float32), y_val
        self._rng = np.random.default_rng(config.seed)
        sizes = (self.x_train.shape[1], *config.hidden, n_classes)
        self.model = MLP.initialize(sizes, config.activation, config.init, self._rng)
        self._bp = Backprop(self.model, config.batch_size, config.dropout)
        self._opt = SGD(self._bp, config.momentum, config.l2)
        # Every step's shifted logits and softmax normalisers, kept for the epoch's metrics
        # (classes along axis 0, as Backprop lays them out).
        self._epoch_logits = np.empty((n_classes, len(self.x_train)), np.float32)
        self._epoch_sums = np.empty((1, len(self.x_train)), np.float32)
        self._epoch_onehot = np.zeros((n_classes, len(self.x_train)), np.float32)
        self.epoch = 0  # epochs done
        self.steps = 0  # minibatch updates done
        self.history: list[EpochReport] = []

    def run(self):
        """Generator: trains the remaining epochs, yielding each EpochReport as its epoch ends."""
        while self.epoch < self.config.epochs:
            yield self.run_epoch()

    def run_epoch(self) -> EpochReport:
        """Train one more epoch (what each step of run() does) and return its report."""
        epoch, cfg = self.epoch + 1, self.config
        lr = cfg.lr_at(epoch)
        with blas_threads(cfg.threads):
            start = time.perf_counter()
            train_loss, train_accuracy = self._train_epoch(lr)
            seconds = time.perf_counter() - start
            val = evaluate(self.model, *self.val) if self.val else None
        report = EpochReport(
            epoch=epoch,
            lr=lr,
            train_loss=train_loss,
            train_accuracy=train_accuracy,
            val_loss=None if val is None else val.loss,
            val_accuracy=None if val is None else val.accuracy,
            seconds=seconds,
        )
        self.epoch = epoch
        self.history.append(report)
        return report

    def _train_epoch(self, lr: float):
        x, bp, n, B = self._x1, self._bp, len(self._x1), self.config.batch_size
        order = self._rng.permutation(n)
        y = self.y_train[order]
        onehot = one_hot_columns(y, self._epoch_onehot)  # the shuffled labels
        rng = self._rng if self.config.dropout else None
        logits, sums = self._epoch_logits, self._epoch_sums
        on_layer = self._opt.step_function(lr)
        for s in range(0, n, B):
            x.take(order[s : s + B], axis=0, out=bp.x, mode="clip")  # mode="raise" would buffer the copy
            bp.onehot, bp.logits, bp.sums = onehot[:, s : s + B], logits[:, s : s + B], sums[:, s : s + B]
            train_step(bp, self._opt, lr, rng, on_layer)
        self.steps += n // B
        loss_sum, predictions = xent_metrics(logits, sums, y, axis=0)
        return loss_sum / n, float(np.count_nonzero(predictions == y)) / n

    # -- checkpoints -------------------------------------------------------------------------

    def save_checkpoint(self, path) -> None:
        """Whole training state in one .npz, written atomically (tmp file + rename)."""
        arrays = dict(self.model.arrays())
        if self._opt.velocity is not None:
            for i, v in enumerate(self._opt.velocity):
                arrays[f"vW{i}"], arrays[f"vb{i}"] = v[:-1], v[-1]
        meta = {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "epoch": self.epoch,
            "steps": self.steps,
            "rng": self._rng.bit_generator.state,
            "history": [r.to_dict() for r in self.history],
            "n_classes": self.n_classes,
            "n_train": len(self.x_train),
            "data_fingerprint": _fingerprint(self.x_train, self.y_train),
        }
        arrays["meta"] = np.array(json.dumps(meta))
        atomic_savez(path, arrays)

    @classmethod
    def resume(cls, path, x_train, y_train, x_val=None, y_val=None, *, threads=_FROM_CHECKPOINT) -> Trainer:
        """A Trainer that continues exactly where save_checkpoint left off (same data required).

        threads: BLAS threads for the rest of the run (an int, or None to leave them as they are),
        replacing the checkpoint's config.threads: the thread count belongs to the machine that
        resumes, not the one that saved. Omitted: the checkpoint's value.
        """
        with np.load(path, allow_pickle=False) as f:
            # Readers take the keys they need, so older checkpoints with extra keys (e.g. "lr") still load.
            meta = json.loads(str(f["meta"]))
            if meta.get("format") != CHECKPOINT_FORMAT:
                raise ValueError(f"unsupported checkpoint format {meta.get('format')!r}")
            arrays = {k: f[k] for k in f.files if k != "meta"}
        config = TrainConfig.from_dict(meta["config"])
        if threads is not _FROM_CHECKPOINT:
            config = replace(config, threads=threads)  # validated like any config
        t = cls(config, x_train, y_train, x_val, y_val, n_classes=meta["n_classes"])
        if len(t.x_train) != meta["n_train"] or _fingerprint(t.x_train, t.y_train) != meta["data_fingerprint"]:
            raise ValueError("checkpoint was written for a different training set")
        for i, p in enumerate(t.model.params):  # in place: the trainer's buffers point at these
            p[:-1], p[-1] = arrays[f"W{i}"], arrays[f"b{i}"]
            if t._opt.velocity is not None:
                t._opt.velocity[i][:-1], t._opt.velocity[i][-1] = arrays[f"vW{i}"], arrays[f"vb{i}"]
        t._rng.bit_generator.state = meta["rng"]
        t.epoch, t.steps = meta["epoch"], meta["steps"]
        t.history = [EpochReport(**r) for r in meta["history"]]
        return t
