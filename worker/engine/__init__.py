"""numpy MLP engine: configuration, model, minibatch SGD trainer and evaluation.

Pure library (numpy + threadpoolctl); float32 end to end in the training loop.
"""

from .backprop import SGD, Backprop, gradients, train_step
from .config import (
    ACTIVATION_NAMES,
    DEFAULT_ACTIVATIONS,
    DEFAULT_LRS,
    INIT_NAMES,
    ConfigError,
    TrainConfig,
    valid_batch_sizes,
)
from .model import MLP, Evaluation, evaluate
from .trainer import EpochReport, Trainer, blas_threads

__all__ = [
    "ACTIVATION_NAMES",
    "DEFAULT_ACTIVATIONS",
    "DEFAULT_LRS",
    "INIT_NAMES",
    "MLP",
    "SGD",
    "Backprop",
    "ConfigError",
    "EpochReport",
    "Evaluation",
    "TrainConfig",
    "Trainer",
    "blas_threads",
    "evaluate",
    "gradients",
    "train_step",
    "valid_batch_sizes",
]
