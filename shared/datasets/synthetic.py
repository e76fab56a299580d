"""A synthetic stand-in for the human/machine data, for runs without the course file."""
from __future__ import annotations

import numpy as np

from .common import SEQ_LEN


def synthetic_human_machine(n_per_class: int = 5100, seed: int = 0, *,
                            p_switch: float = 0.6, max_run: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic stand-in for the human/machine data, same encoding as :func:`load_human_machine`.

    People asked to type random bits alternate more often than chance and avoid long runs; the
    "human" rows model that as a Markov chain: the first bit is a fair coin, each later bit
    differs from the previous one with probability ``p_switch`` (0.6), and a run of
    ``max_run`` (4) equal bits is always broken. "Machine" rows are fair coin flips. Both are
    reproducible from ``seed``.

    Returns ``x`` float32 ``(2 * n_per_class, 20)`` in {-1, +1}, human rows first, and ``y``
    int64 (1 = human, 0 = machine).
    """
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be at least 1, got {n_per_class}")
    if not 0.0 <= p_switch <= 1.0:
        raise ValueError(f"p_switch must be in [0, 1], got {p_switch}")
    if max_run < 1:
        raise ValueError(f"max_run must be at least 1, got {max_run}")
    rng = np.random.default_rng(seed)
    human = np.empty((n_per_class, SEQ_LEN), np.float32)
    human[:, 0] = rng.choice(np.array([-1.0, 1.0], np.float32), size=n_per_class)
    run = np.ones(n_per_class, np.int64)
    for t in range(1, SEQ_LEN):
        switch = (rng.random(n_per_class) < p_switch) | (run >= max_run)
        human[:, t] = np.where(switch, -human[:, t - 1], human[:, t - 1])
        run = np.where(switch, 1, run + 1)
    machine = rng.integers(0, 2, size=(n_per_class, SEQ_LEN)).astype(np.float32) * 2 - 1
    x = np.concatenate([human, machine])
    y = np.concatenate([np.ones(n_per_class, np.int64), np.zeros(n_per_class, np.int64)])
    return x, y
