"""The network: a fully connected MLP with a softmax output, plus evaluation."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .activations import ACTIVATIONS
from .config import ACTIVATION_NAMES, INIT_NAMES


class MLP:
    """input -> [dense -> activation] * len(hidden) -> dense -> softmax.

    Layer i maps h (batch, fan_in) to h @ W_i + b_i. Its parameters live in one array
    params[i] of shape (fan_in + 1, fan_out) whose last row is the bias, so that
    [h, 1] @ params[i] = h @ W_i + b_i: training does one matmul and one gradient product per
    layer for weights and bias together. weights[i] (fan_in, fan_out) and biases[i] (fan_out,)
    are views into params[i]; change them in place, never rebind them.
    All arrays share one float dtype: float32 for training, float64 is allowed for gradient
    checks. `forward` returns logits; softmax is applied where probabilities are needed.
    """

    def __init__(self, weights, biases, activation: str = "relu"):
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; expected one of: {', '.join(ACTIVATION_NAMES)}")
        if len(weights) != len(biases) or not weights:
            raise ValueError("need one bias vector per weight matrix and at least one layer")
        dtype = np.asarray(weights[0]).dtype
        self.params = []
        for i, (w, b) in enumerate(zip(weights, biases)):
            w, b = np.asarray(w), np.asarray(b)
            fan_in = self.params[-1].shape[1] if i else w.shape[0]
            if w.ndim != 2 or w.shape[0] != fan_in or b.shape != (w.shape[1],):
                raise ValueError(f"layer {i}: weight {w.shape} / bias {b.shape} do not chain")
            self.params.append(np.vstack([w, b[None, :]]).astype(dtype, copy=False))
        self.weights = [p[:-1] for p in self.params]
        self.biases = [p[-1] for p in self.params]
        self.activation = activation
        self.act = ACTIVATIONS[activation]

    @classmethod
    def initialize(cls, sizes, activation="relu", init="he", rng=None, dtype=np.float32) -> MLP:
        """Random weights for layer widths `sizes` = (n_in, *hidden, n_out); biases zero.

        he: N(0, 2/fan_in); glorot: N(0, 2/(fan_in+fan_out)). Exact zeros are redrawn so that
        no weight starts at zero.
        """
        if init not in INIT_NAMES:
            raise ValueError(f"unknown init {init!r}; expected one of: {', '.join(INIT_NAMES)}")
        rng = np.random.default_rng(rng)
        weights = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            std = np.sqrt(2.0 / (fan_in if init == "he" else fan_in + fan_out))
            w = (rng.standard_normal((fan_in, fan_out)) * std).astype(dtype)
            while not w.all():
                zeros = w == 0
                w[zeros] = (rng.standard_normal(int(zeros.sum())) * std).astype(dtype)
            weights.append(w)
        biases = [np.zeros(n, dtype) for n in sizes[1:]]
        return cls(weights, biases, activation)

    @property
    def dtype(self):
        return self.weights[0].dtype

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.weights[0].shape[0], *(w.shape[1] for w in self.weights))

    @property
    def n_params(self) -> int:
        return sum(p.size for p in self.params)

    def forward(self, x, out=None):
        """Logits (batch, n_out) for x (batch, n_in); `out` = optional per-layer output buffers."""
        h, last = x, len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = np.matmul(h, w, out=None if out is None else out[i])
            z += b
            h = z if i == last else self.act.fn(z, out=z)
        return h

    def predict_proba(self, x, batch_size: int = 1000):
        """Softmax probabilities (batch, n_out)."""
        x = np.asarray(x, dtype=self.dtype)
        probs = np.empty((len(x), self.sizes[-1]), self.dtype)
        for s in range(0, len(x), batch_size):
            z = self.forward(x[s : s + batch_size])
            softmax_(z, probs[s : s + batch_size], np.empty((len(z), 1), self.dtype))
        return probs

    def predict(self, x, batch_size: int = 1000):
        """Predicted class per row (batch,)."""
        return np.concatenate(
            [self.forward(np.asarray(x[s : s + batch_size], self.dtype)).argmax(axis=1) for s in range(0, len(x), batch_size)]
        )

    def copy(self) -> MLP:
        return MLP([w.copy() for w in self.weights], [b.copy() for b in self.biases], self.activation)

    def arrays(self) -> dict:
        """{'W0': ..., 'b0': ..., 'W1': ...}: the parameters by name, as stored in .npz files."""
        out = {}
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            out[f"W{i}"], out[f"b{i}"] = w, b
        return out

    @classmethod
    def from_arrays(cls, arrays, activation: str) -> MLP:
        n = sum(1 for k in arrays if k.startswith("W") and k[1:].isdigit())
        return cls([arrays[f"W{i}"] for i in range(n)], [arrays[f"b{i}"] for i in range(n)], activation)

    def save_npz(self, path) -> None:
        """Weights as .npz (W0, b0, W1, b1, ..., activation), written atomically."""
        atomic_savez(path, {**self.arrays(), "activation": np.array(self.activation)})

    @classmethod
    def load_npz(cls, path) -> MLP:
        with np.load(path, allow_pickle=False) as f:
            return cls.from_arrays({k: f[k] for k in f.files}, str(f["activation"]))


def atomic_savez(path, arrays: dict) -> None:
    """`arrays` as an .npz at `path`, written next to it and renamed: a crash never leaves a half-written file
    (the Keras runs' checkpoints are written this way too)."""
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def softmax_(z, probs, sums, axis=1, shifted=None):
    """Softmax of logits z over its class axis `axis`, numerically stable, on preallocated buffers.

    Writes z - max (so exp cannot overflow) into `shifted` (default: z itself, in place), the
    probabilities into probs and the normalisers sum(exp(z - max)) into sums (size 1 along
    `axis`): exactly what `xent_metrics` needs later, so training can defer its bookkeeping to
    the end of an epoch. Evaluation uses (batch, classes), axis=1; training keeps its logits
    as (classes, batch), axis=0, where the reductions run along contiguous rows.
    """
    shifted = z if shifted is None else shifted
    np.maximum.reduce(z, axis=axis, keepdims=True, out=sums)
    np.subtract(z, sums, out=shifted)
    np.exp(shifted, out=probs)
    np.add.reduce(probs, axis=axis, keepdims=True, out=sums)
    np.divide(probs, sums, out=probs)


def xent_metrics(z_shifted, sums, y, axis=1):
    """(summed cross-entropy, predicted classes) from softmax_'s outputs; log-sum-exp, never log(p)."""
    rows = np.arange(len(y))
    picked = z_shifted[rows, y] if axis == 1 else z_shifted[y, rows]
    loss_sum = float(np.log(sums).sum()) - float(picked.sum())
    return loss_sum, z_shifted.argmax(axis=axis)


@dataclass(frozen=True, eq=False)
class Evaluation:
    accuracy: float
    loss: float  # mean cross-entropy (no L2 term)
    predictions: np.ndarray  # predicted class per row, int


def evaluate(model: MLP, x, y, batch_size: int = 1000) -> Evaluation:
    """Accuracy, mean cross-entropy and predictions of `model` on (x, y); no dropout, no state change."""
    x = np.asarray(x, dtype=model.dtype)
    y = np.asarray(y, dtype=np.intp)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"need matching non-empty x and y, got {len(x)} and {len(y)} rows")
    b = min(batch_size, len(x))
    bufs = [np.empty((b, n), model.dtype) for n in model.sizes[1:]]
    probs, sums = np.empty((b, model.sizes[-1]), model.dtype), np.empty((b, 1), model.dtype)
    predictions, loss_sum = np.empty(len(x), np.intp), 0.0
    for s in range(0, len(x), b):
        n = min(b, len(x) - s)
        z = model.forward(x[s : s + n], out=[buf[:n] for buf in bufs])
        softmax_(z, probs[:n], sums[:n])
        batch_loss, predictions[s : s + n] = xent_metrics(z, sums[:n], y[s : s + n])
        loss_sum += batch_loss
    accuracy = float(np.mean(predictions == y))
    return Evaluation(accuracy=accuracy, loss=loss_sum / len(x), predictions=predictions)
