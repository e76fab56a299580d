"""Training configuration: one frozen, JSON-able record per run (also what the database stores)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

ACTIVATION_NAMES = ("relu", "tanh")
INIT_NAMES = ("glorot", "he")
MIN_BATCH, MAX_BATCH = 50, 1000
MAX_EPOCHS = 10_000

# The homework sweep: both activations x three initial learning rates around the best one.
DEFAULT_ACTIVATIONS = ("tanh", "relu")
DEFAULT_LRS = (0.02, 0.04, 0.08)


class ConfigError(ValueError):
    """A training parameter is invalid; the message says what was given and what is expected."""


def valid_batch_sizes(n: int) -> list[int]:
    """Batch sizes in 50..1000 that divide n (so every epoch is whole minibatches)."""
    return [b for b in range(MIN_BATCH, MAX_BATCH + 1) if n % b == 0]


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (with the same data and thread count).

    Defaults (the engine's documented defaults for the homework sweep):
      hidden=(512, 256)      two hidden layers: 784-512-256-10, ~535k parameters.
      activation="relu"      the sweep tries both "tanh" and "relu" (DEFAULT_ACTIVATIONS).
      lr=0.04                initial learning rate; the sweep tries DEFAULT_LRS = (0.02, 0.04, 0.08).
      batch_size=100         divides both 50,000 and 60,000: 500 / 600 updates per epoch.
      epochs=50, decay_epochs=(20, 40)
                             lr is halved after each listed epoch, never mid-epoch:
                             epochs 1-20 use lr, 21-40 lr/2, 41-50 lr/4.
      momentum=0.9           classic momentum: v = momentum*v - lr*grad; w += v (0 = plain SGD).
      l2=1e-4                L2 on weights only (not biases): loss += 0.5*l2*sum(W**2),
                             i.e. grad += l2*W.
      dropout=0.2            inverted dropout on every hidden layer's output during training
                             (kept units scaled by 1/(1-dropout)); off at evaluation. Drawn from
                             16 random bits per unit: the rate is round(dropout*65536)/65536.
      init="he"              weights ~ N(0, 2/fan_in) ("he") or N(0, 2/(fan_in+fan_out))
                             ("glorot"); biases start at zero.
      seed=0                 seeds the single generator used for init, shuffling and dropout.
      threads=None           BLAS threads during training/evaluation; None leaves them as they are.

    Construction checks types and ranges; `validate(n_train)` adds the data-dependent checks
    (the batch-size rule: in 50..1000 and dividing the number of training rows).
    """

    hidden: tuple[int, ...] = (512, 256)
    activation: str = "relu"
    lr: float = 0.04
    batch_size: int = 100
    epochs: int = 50
    decay_epochs: tuple[int, ...] = (20, 40)
    momentum: float = 0.9
    l2: float = 1e-4
    dropout: float = 0.2
    init: str = "he"
    seed: int = 0
    threads: int | None = None

    def __post_init__(self):
        # Normalise JSON shapes (lists -> tuples, ints -> floats) so from_dict(to_dict()) == self.
        for name in ("hidden", "decay_epochs"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{name} must be a list of integers, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        for name in ("lr", "momentum", "l2", "dropout"):
            value = getattr(self, name)
            if not _is_number(value):
                raise ConfigError(f"{name} must be a number, got {value!r}")
            object.__setattr__(self, name, float(value))
        self._check()

    def _check(self):
        if not self.hidden:
            raise ConfigError("hidden must list at least one layer width, got []")
        if not all(_is_int(w) and w >= 1 for w in self.hidden):
            raise ConfigError(f"hidden layer widths must be positive integers, got {list(self.hidden)}")
        if self.activation not in ACTIVATION_NAMES:
            raise ConfigError(f"unknown activation {self.activation!r}; expected one of: {', '.join(ACTIVATION_NAMES)}")
        if self.init not in INIT_NAMES:
            raise ConfigError(f"unknown init {self.init!r}; expected one of: {', '.join(INIT_NAMES)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a positive finite number, got {self.lr!r}")
        if not _is_int(self.batch_size) or self.batch_size < 1:
            raise ConfigError(f"batch size must be a positive integer, got {self.batch_size!r}")
        if not _is_int(self.epochs) or not 1 <= self.epochs <= MAX_EPOCHS:
            raise ConfigError(f"epochs must be an integer in 1..{MAX_EPOCHS}, got {self.epochs!r}")
        d = self.decay_epochs
        if not all(_is_int(e) for e in d) or any(not 1 <= e < self.epochs for e in d) or list(d) != sorted(set(d)):
            raise ConfigError(
                f"decay epochs must be strictly increasing integers in 1..{self.epochs - 1} (epochs - 1), got {list(d)}"
            )
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if not (math.isfinite(self.l2) and self.l2 >= 0):
            raise ConfigError(f"l2 must be a finite number >= 0, got {self.l2!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not _is_int(self.seed) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.threads is not None and (not _is_int(self.threads) or self.threads < 1):
            raise ConfigError(f"threads must be an integer >= 1 (or unset), got {self.threads!r}")

    def validate(self, n_train: int) -> TrainConfig:
        """Raise ConfigError unless this config can train on n_train rows; returns self."""
        b, sizes = self.batch_size, valid_batch_sizes(n_train)
        listing = (f"batch sizes in {MIN_BATCH}..{MAX_BATCH} that divide {n_train:,}: "
                   f"{', '.join(map(str, sizes)) or 'none'}")
        if not MIN_BATCH <= b <= MAX_BATCH:
            raise ConfigError(f"batch size {b} is outside {MIN_BATCH}..{MAX_BATCH}; {listing}")
        if n_train % b:
            raise ConfigError(f"batch size {b} does not divide the {n_train:,} training images (every batch is "
                              f"full); {listing}, or take a training-set size that {b} divides")
        return self

    def lr_at(self, epoch: int) -> float:
        """Learning rate used during `epoch` (1-based): halved once per decay epoch already finished."""
        return self.lr * 0.5 ** sum(e < epoch for e in self.decay_epochs)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"], d["decay_epochs"] = list(self.hidden), list(self.decay_epochs)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(unknown)}; expected keys: {', '.join(sorted(known))}")
        return cls(**d)
