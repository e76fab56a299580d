"""Pure numpy analysis used by the Keras jobs (Problems 2-4) and their reports.

Numbers only: the sentences written from them live in shared/reports.py. Nothing here imports
TensorFlow or matplotlib, so these functions are cheap to import and test.

Confusion (Problem 2)
    confusion_counts, confusion_rates, most_confused_for, most_confused_pair
Weights (Problem 3)
    weight_stats, excess_kurtosis, shared_bins
Human/machine sequences (Problem 4)
    stratified_split, weight_insight
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# --------------------------------------------------------------------------------------------
# Confusion matrices
# --------------------------------------------------------------------------------------------


def confusion_counts(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                     n_classes: int = 10) -> np.ndarray:
    """Integer matrix N[i, j] = number of samples of true class i predicted as class j."""
    t = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.size} vs {p.size}")
    if t.size and (t.min() < 0 or p.min() < 0 or t.max() >= n_classes or p.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes})")
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (t, p), 1)
    return counts


def confusion_rates(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                    n_classes: int = 10) -> np.ndarray:
    """Row-normalised confusion matrix: C[i, j] = P(decide j | true class i).

    Every row of a class present in ``y_true`` sums to 1; the row of a class with no samples is all
    zeros (the rate is undefined there).
    """
    counts = confusion_counts(y_true, y_pred, n_classes).astype(np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def _ties(values: np.ndarray, best: float, tol: float) -> np.ndarray:
    return np.flatnonzero(np.abs(values - best) <= tol)


def most_confused_for(C: np.ndarray, tol: float = 1e-12) -> list[dict[str, Any]]:
    """For each true class m, the class(es) its samples are most often mistaken for.

    Returns one dict per row m: ``{"true": m, "predicted": [j, ...], "rate": C[m, j]}`` where
    ``predicted`` lists every off-diagonal column within ``tol`` of the row's largest off-diagonal
    rate, in increasing order (the first one is the answer; the rest are ties). When the row has no
    off-diagonal mass at all (no mistakes), ``predicted`` is empty and ``rate`` is 0.
    """
    C = np.asarray(C, dtype=np.float64)
    k = C.shape[0]
    out = []
    for m in range(k):
        row = C[m].copy()
        row[m] = -np.inf
        best = float(row.max()) if k > 1 else 0.0
        if k == 1 or best <= tol:
            out.append({"true": m, "predicted": [], "rate": 0.0})
            continue
        out.append({"true": m, "predicted": [int(j) for j in _ties(row, best, tol)], "rate": best})
    return out


def most_confused_pair(C: np.ndarray, tol: float = 1e-12) -> dict[str, Any]:
    """The two classes most confused with each other: argmax over i < j of C[i, j] + C[j, i].

    Returns ``{"pair": (i, j), "rate": C[i,j]+C[j,i], "rate_ij": C[i,j], "rate_ji": C[j,i],
    "ties": [(i, j), ...]}``; ``ties`` holds every pair within ``tol`` of the maximum (including
    the chosen one, which is the first in row-major order).
    """
    C = np.asarray(C, dtype=np.float64)
    k = C.shape[0]
    if k < 2:
        raise ValueError("need at least two classes")
    sym = C + C.T
    iu, ju = np.triu_indices(k, 1)
    scores = sym[iu, ju]
    best = float(scores.max())
    tied = _ties(scores, best, tol)
    pairs = [(int(iu[t]), int(ju[t])) for t in tied]
    i, j = pairs[0]
    return {"pair": (i, j), "rate": best, "rate_ij": float(C[i, j]), "rate_ji": float(C[j, i]),
            "ties": pairs}


# --------------------------------------------------------------------------------------------
# Weight statistics
# --------------------------------------------------------------------------------------------

SMALL_WEIGHT = 0.01


def excess_kurtosis(values: np.ndarray) -> float:
    """Population excess kurtosis m4 / m2**2 - 3 (0 for a Gaussian, -1.2 for a uniform)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    d = v - v.mean()
    m2 = float(np.mean(d * d))
    if m2 == 0.0:
        return 0.0
    return float(np.mean(d ** 4) / (m2 * m2) - 3.0)


def weight_stats(weights: np.ndarray, small: float = SMALL_WEIGHT) -> dict[str, float]:
    """Summary statistics of one weight array (all entries pooled).

    Keys: n, mean, std (population), mean_abs, frac_small (fraction with |w| < ``small``),
    max_abs, excess_kurtosis.
    """
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.size == 0:
        raise ValueError("empty weight array")
    a = np.abs(w)
    return {
        "n": int(w.size),
        "mean": float(w.mean()),
        "std": float(w.std()),
        "mean_abs": float(a.mean()),
        "frac_small": float(np.mean(a < small)),
        "max_abs": float(a.max()),
        "excess_kurtosis": excess_kurtosis(w),
    }


def shared_bins(arrays: Sequence[np.ndarray], n_bins: int = 60) -> np.ndarray:
    """Common, zero-symmetric histogram bin edges covering every array (so histograms compare)."""
    m = max(float(np.max(np.abs(np.asarray(a)))) for a in arrays)
    if not np.isfinite(m) or m == 0.0:
        m = 1.0
    return np.linspace(-m, m, n_bins + 1)


# --------------------------------------------------------------------------------------------
# Human/machine sequences
# --------------------------------------------------------------------------------------------


def stratified_split(y: Sequence[int] | np.ndarray, val_fraction: float = 0.2,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split: (train_idx, val_idx), each sorted.

    Each class contributes ``round(n_class * val_fraction)`` samples to validation, so the class
    proportions of both parts match the whole. The same (y, fraction, seed) always gives the same
    split.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError("val_fraction must lie strictly between 0 and 1")
    y = np.asarray(y).ravel()
    rng = np.random.default_rng(seed)
    val_parts = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        val_parts.append(idx[: int(round(idx.size * val_fraction))])
    val = np.sort(np.concatenate(val_parts)) if val_parts else np.zeros(0, dtype=np.int64)
    mask = np.ones(y.size, dtype=bool)
    mask[val] = False
    return np.flatnonzero(mask), val


INSIGHT_KINDS = ("alternating", "smooth", "balance", "mixed")


def _runs(signs: np.ndarray) -> list[tuple[int, int, int]]:
    """(start, length, sign) of maximal runs of equal nonzero sign."""
    out = []
    i, n = 0, signs.size
    while i < n:
        j = i
        while j + 1 < n and signs[j + 1] == signs[i]:
            j += 1
        out.append((i, j - i + 1, int(signs[i])))
        i = j + 1
    return out


def _adjacent_contrast(w: np.ndarray) -> np.ndarray:
    """-sum w_i w_{i+1} / sum |w_i w_{i+1}| along the last axis (0 where undefined)."""
    prod = w[..., :-1] * w[..., 1:]
    denom = np.abs(prod).sum(axis=-1)
    return np.divide(-prod.sum(axis=-1), denom, out=np.zeros_like(denom), where=denom > 0)


def weight_insight(W: np.ndarray, w_out: np.ndarray | None = None, *, alpha: float = 0.05,
                   n_permutations: int = 2000, balance_threshold: float = 0.6, top: int = 3,
                   seed: int = 0) -> dict[str, Any]:
    """What the input→hidden weight matrix of the human/machine network attends to, as numbers.

    ``W`` has shape (n_inputs, n_hidden) (Keras kernel layout: column k = hidden unit k).
    Optional ``w_out`` (n_hidden,) or (n_hidden, 1) weighs each unit's importance by its outgoing
    weight (importance = ||W[:, k]|| · |w_out[k]|; without it, the norm alone). Units and positions
    are 0-based here; :func:`shared.reports.weight_insight_sentences` words the result.

    Per hidden unit k (weight vector w = W[:, k]), in ``units``:
      * ``alternation``: cosine similarity of w with the alternating pattern (+1, -1, +1, ...);
        ±1 for a unit that responds exactly to alternating bits, ~0 otherwise.
      * ``flip_fraction``: fraction of adjacent input pairs whose weights have opposite signs.
      * ``adjacent_contrast``: -sum w_i w_{i+1} / sum |w_i w_{i+1}| in [-1, 1]: +1 when every
        neighbouring pair has opposite signs (the unit measures switches between neighbours), -1
        when all neighbours share a sign (the unit integrates runs / smooth stretches).
      * ``p_alternating`` / ``p_smooth``: share of ``n_permutations`` random orderings of the same
        weights whose contrast is at least / at most as extreme, i.e. whether the ORDER of the
        weights (which neighbours share a sign) is unusual for that set of values.
      * ``sign_balance``: |sum w| / sum |w|; near 1 when all weights share one sign (the unit
        counts +1s against -1s, whatever their order).
      * ``longest_same_sign_run``: length of the longest stretch of same-signed weights.
      * ``norm``, ``importance``.
      * ``kind``: "alternating" if p_alternating < alpha, "smooth" if p_smooth < alpha, else
        "balance" if sign_balance >= balance_threshold, else "mixed".
    Over all units: ``counts`` and ``importance_share`` per kind, ``expected_by_chance`` (units a
    test at ``alpha`` flags each way by chance), ``mean_flip_fraction``, ``most_alternating_unit``
    (largest |alternation|), ``most_important_units`` (the ``top`` by importance).
    Per input position: mean |w| over units (``position_weight``), the ``top`` positions
    (``top_positions``), the first one's ``top_position_ratio`` to the mean and ``ends_ratio``, the
    mean |w| of the first and last three positions over the mean (> 1: the ends weigh more).
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] < 3:
        raise ValueError(f"expected an (n_inputs >= 3, n_hidden) matrix, got shape {W.shape}")
    n_in, n_hidden = W.shape
    alt = np.where(np.arange(n_in) % 2 == 0, 1.0, -1.0)
    importance = np.linalg.norm(W, axis=0)
    if w_out is not None:
        importance = importance * np.abs(np.asarray(w_out, dtype=np.float64).ravel())
    rng = np.random.default_rng(seed)
    perms = np.argsort(rng.random((n_permutations, n_in)), axis=1)
    units = []
    for k in range(n_hidden):
        w = W[:, k]
        norm = float(np.linalg.norm(w))
        contrast = float(_adjacent_contrast(w))
        null = _adjacent_contrast(w[perms])
        p_alt = float((np.sum(null >= contrast - 1e-12) + 1) / (n_permutations + 1))
        p_smooth = float((np.sum(null <= contrast + 1e-12) + 1) / (n_permutations + 1))
        abs_sum = float(np.abs(w).sum())
        balance = float(abs(w.sum()) / abs_sum) if abs_sum > 0 else 0.0
        signs = np.sign(w)
        runs = _runs(np.where(signs == 0, 1, signs))
        if p_alt < alpha:
            kind = "alternating"
        elif p_smooth < alpha:
            kind = "smooth"
        elif balance >= balance_threshold:
            kind = "balance"
        else:
            kind = "mixed"
        units.append({
            "unit": k,
            "alternation": float(w @ alt / (norm * np.sqrt(n_in))) if norm > 0 else 0.0,
            "flip_fraction": float(np.mean(signs[:-1] * signs[1:] < 0)),
            "adjacent_contrast": contrast,
            "p_alternating": p_alt,
            "p_smooth": p_smooth,
            "sign_balance": balance,
            "longest_same_sign_run": int(max(length for _, length, _ in runs)),
            "norm": norm,
            "importance": float(importance[k]),
            "kind": kind,
        })

    counts = {kd: sum(u["kind"] == kd for u in units) for kd in INSIGHT_KINDS}
    total_imp = float(importance.sum()) or 1.0
    share = {kd: float(sum(u["importance"] for u in units if u["kind"] == kd)) / total_imp
             for kd in INSIGHT_KINDS}
    pos_weight = np.abs(W).mean(axis=1)
    top_positions = [int(i) for i in np.argsort(-pos_weight, kind="stable")[:top]]
    mean_pos = float(pos_weight.mean()) or 1.0
    return {
        "units": units,
        "position_weight": [float(v) for v in pos_weight],
        "top_positions": top_positions,
        "top_position_ratio": float(pos_weight[top_positions[0]] / mean_pos),
        "ends_ratio": float((pos_weight[:3].mean() + pos_weight[-3:].mean()) / 2 / mean_pos),
        "counts": counts,
        "importance_share": share,
        "expected_by_chance": n_hidden * alpha,
        "mean_flip_fraction": float(np.mean([u["flip_fraction"] for u in units])),
        "most_alternating_unit": max(units, key=lambda u: abs(u["alternation"]))["unit"],
        "most_important_units": [u["unit"] for u in sorted(units, key=lambda u: -u["importance"])[:top]],
        "alpha": alpha,
    }
