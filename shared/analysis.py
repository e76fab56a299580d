"""Pure numpy analysis used by the Keras jobs (Problems 2-4) and their reports.

Numbers only: the sentences written from them live in shared/reports/. Nothing here imports
TensorFlow or matplotlib, so these functions are cheap to import and test.

Confusion (Problem 2)
    confusion_counts, confusion_rates, most_confused_for, most_confused_pair
Weights (Problem 3)
    weight_stats, excess_kurtosis, shared_bins, spread_change, spread_baseline
Human/machine sequences (Problem 4)
    stratified_split, weight_insight, insight_chance_rates

Thresholds: every word the reports use for a number ("shrunk", "alternating", "position bias", ...)
rests on one of the named constants below, each with the reason for its value; the reports state them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
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
# A std ratio within ±10 % of 1 is "about the same": the std of the smallest layer compared (480 weights,
# 48 → 10) varies by about 2 % from one seed to another, so 10 % is well beyond that noise.
SPREAD_CHANGE = 0.10
# Shares of near-zero weights closer than 2 percentage points are "similar": such a share counted over 480
# weights has a standard error of about 0.8 points.
NEAR_ZERO_SHARE_CHANGE = 0.02
# Excess kurtoses closer than 0.5 are "alike": over 480 weights the statistic's standard error is about 0.05
# for uniform and 0.22 for Gaussian weights.
KURTOSIS_CHANGE = 0.5


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


def spread_change(ratio: float | None, threshold: float = SPREAD_CHANGE) -> int:
    """-1 when ``ratio`` lies below 1 - threshold (narrower, shrunk), +1 above 1 + threshold (wider, widened),
    0 within ±threshold of 1 (about the same) or when there is no ratio."""
    if ratio is None or not np.isfinite(ratio):
        return 0
    return -1 if ratio < 1.0 - threshold else 1 if ratio > 1.0 + threshold else 0


def _ratio(a: float, b: float) -> float | None:
    return float(a / b) if b else None


def spread_baseline(init_stats: Mapping[str, Mapping[str, Mapping[str, float]]],
                    trained_stats: Mapping[str, Mapping[str, Mapping[str, float]]], subject: str, reference: str,
                    threshold: float = SPREAD_CHANGE) -> dict[str, Any]:
    """Splits the difference between two models' weight spreads into initialization and training.

    ``init_stats[model][junction]`` and ``trained_stats[model][junction]`` are :func:`weight_stats` dicts of
    the same layers before and after training. For each junction in both models, with std s, growth
    g = s_trained / s_init per model, and subject S against reference R:

        s_trained(S) / s_trained(R) = [s_init(S) / s_init(R)] × [g(S) / g(R)]
                     trained_ratio  =         init_ratio       ×  training_ratio

    The first factor is fixed before any update (for Glorot initialization by the layer's fan-in + fan-out);
    the second is what training did differently to the two models. Returns ``{"threshold", "subject",
    "reference", "junctions": {junction: {"init_std": {model}, "trained_std": {model}, "growth": {model},
    "growth_change": {model: -1/0/+1}, "init_ratio", "init_change", "trained_ratio", "trained_change",
    "training_ratio", "training_change"}}}`` (changes by :func:`spread_change`; a ratio is None where its
    denominator is 0).
    """
    junctions: dict[str, Any] = {}
    models = (subject, reference)
    for junction in trained_stats[reference]:
        if not all(junction in init_stats.get(m, {}) and junction in trained_stats.get(m, {}) for m in models):
            continue
        init = {m: float(init_stats[m][junction]["std"]) for m in models}
        trained = {m: float(trained_stats[m][junction]["std"]) for m in models}
        growth = {m: _ratio(trained[m], init[m]) for m in models}
        init_ratio = _ratio(init[subject], init[reference])
        trained_ratio = _ratio(trained[subject], trained[reference])
        training_ratio = (_ratio(growth[subject], growth[reference])
                          if growth[subject] is not None and growth[reference] is not None else None)
        junctions[junction] = {
            "init_std": init, "trained_std": trained, "growth": growth,
            "growth_change": {m: spread_change(growth[m], threshold) for m in models},
            "init_ratio": init_ratio, "init_change": spread_change(init_ratio, threshold),
            "trained_ratio": trained_ratio, "trained_change": spread_change(trained_ratio, threshold),
            "training_ratio": training_ratio, "training_change": spread_change(training_ratio, threshold),
        }
    return {"threshold": threshold, "subject": subject, "reference": reference, "junctions": junctions}


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

# The words the Problem 4 report uses for a hidden unit or an input position, and the statistic each needs.
# "By chance": how often a unit (or matrix) of independent Gaussian weights of the same shape passes, which
# insight_chance_rates computes and the report quotes (the figures below are those of a 20 × 20 matrix).
# |cos(w, +,−,+,−,…)| ≥ 0.5 to call a unit "alternating" (a switch detector): 2 % of random units get there.
ALTERNATING_COSINE = 0.5
# Adjacent contrast ≤ −0.6 (≥ 80 % of the neighbour-product mass same-signed) to call a unit "smooth" (a run
# detector): 4 % of random units get there.
SMOOTH_CONTRAST = 0.6
# Sign balance |Σw| / Σ|w| ≥ 0.6 (≥ 80 % of the |w| mass on one sign) to call a unit "balance" (it counts
# +1s against −1s): 3 % of random units get there.
BALANCE_SHARE = 0.6
# An input position's mean |w| ≥ 1.5× the average before the report says it stands out (a position bias):
# the largest of 20 random positions gets there 5 % of the time.
POSITION_BIAS = 1.5
# The first and last three positions' mean |w| more than 15 % above (below) the average before the report
# says the ends (the middle) weigh more: under 1 % of random matrices get there each way.
ENDS_BIAS = 0.15

INSIGHT_THRESHOLDS = {"alternating_cosine": ALTERNATING_COSINE, "smooth_contrast": SMOOTH_CONTRAST,
                      "balance_share": BALANCE_SHARE, "position_bias": POSITION_BIAS, "ends_bias": ENDS_BIAS}


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


def _alternation(w: np.ndarray) -> np.ndarray:
    """Cosine of each vector along axis -2 (n_inputs) with +1, -1, +1, ... (0 for a zero vector)."""
    n_in = w.shape[-2]
    alt = np.where(np.arange(n_in) % 2 == 0, 1.0, -1.0)
    norm = np.linalg.norm(w, axis=-2)
    dot = np.einsum("...ij,i->...j", w, alt)
    return np.divide(dot, norm * np.sqrt(n_in), out=np.zeros_like(norm), where=norm > 0)


def _sign_balance(w: np.ndarray) -> np.ndarray:
    """|sum w| / sum |w| along axis -2 (0 for a zero vector)."""
    total = np.abs(w).sum(axis=-2)
    return np.divide(np.abs(w.sum(axis=-2)), total, out=np.zeros_like(total), where=total > 0)


def _ends_ratio(pos_weight: np.ndarray) -> np.ndarray:
    mean = pos_weight.mean(axis=-1)
    ends = (pos_weight[..., :3].mean(axis=-1) + pos_weight[..., -3:].mean(axis=-1)) / 2
    return np.divide(ends, mean, out=np.ones_like(mean), where=mean > 0)


def _unit_kind(alternation: float, contrast: float, balance: float,
               thresholds: Mapping[str, float] = INSIGHT_THRESHOLDS) -> str:
    """The word for one unit: the first threshold it passes, in this order, else "mixed"."""
    if abs(alternation) >= thresholds["alternating_cosine"]:
        return "alternating"
    if balance >= thresholds["balance_share"]:  # one sign throughout: its neighbours agree trivially
        return "balance"
    if contrast <= -thresholds["smooth_contrast"]:
        return "smooth"
    return "mixed"


def insight_chance_rates(n_inputs: int, n_hidden: int, thresholds: Mapping[str, float] = INSIGHT_THRESHOLDS,
                         n_matrices: int = 2000, seed: int = 0) -> dict[str, float]:
    """How often matrices of independent Gaussian weights of shape (n_inputs, n_hidden) pass each threshold.

    Per unit (over n_matrices × n_hidden random units): ``alternating``, ``smooth``, ``balance`` (each test on
    its own). Per matrix: ``position_bias`` (the largest position's mean |w| ratio), ``ends_heavier``,
    ``middle_heavier``. Seeded, so the same shape always gives the same rates.
    """
    W = np.random.default_rng(seed).standard_normal((n_matrices, n_inputs, n_hidden))
    contrast = _adjacent_contrast(np.swapaxes(W, -1, -2))
    pos = np.abs(W).mean(axis=-1)
    top = pos.max(axis=-1) / pos.mean(axis=-1)
    ends = _ends_ratio(pos)
    return {
        "alternating": float(np.mean(np.abs(_alternation(W)) >= thresholds["alternating_cosine"])),
        "smooth": float(np.mean(contrast <= -thresholds["smooth_contrast"])),
        "balance": float(np.mean(_sign_balance(W) >= thresholds["balance_share"])),
        "position_bias": float(np.mean(top >= thresholds["position_bias"])),
        "ends_heavier": float(np.mean(ends > 1 + thresholds["ends_bias"])),
        "middle_heavier": float(np.mean(ends < 1 - thresholds["ends_bias"])),
    }


def weight_insight(W: np.ndarray, w_out: np.ndarray | None = None, *,
                   thresholds: Mapping[str, float] | None = None, top: int = 3) -> dict[str, Any]:
    """What the input→hidden weight matrix of the human/machine network attends to, as numbers.

    ``W`` has shape (n_inputs, n_hidden) (Keras kernel layout: column k = hidden unit k).
    Optional ``w_out`` (n_hidden,) or (n_hidden, 1) weighs each unit's importance by its outgoing
    weight (importance = ||W[:, k]|| · |w_out[k]|; without it, the norm alone). Units and positions
    are 0-based here; :func:`shared.reports.weight_insight_sentences` words the result.
    ``thresholds`` (default ``INSIGHT_THRESHOLDS``) decide the words; they are returned with the numbers.

    Per hidden unit k (weight vector w = W[:, k]), in ``units``:
      * ``alternation``: cosine similarity of w with the alternating pattern (+1, -1, +1, ...);
        ±1 for a unit that responds exactly to alternating bits, ~0 otherwise.
      * ``flip_fraction``: fraction of adjacent input pairs whose weights have opposite signs.
      * ``adjacent_contrast``: -sum w_i w_{i+1} / sum |w_i w_{i+1}| in [-1, 1]: +1 when every
        neighbouring pair has opposite signs, -1 when all neighbours share a sign (the unit
        integrates runs / smooth stretches).
      * ``sign_balance``: |sum w| / sum |w|; near 1 when all weights share one sign (the unit
        counts +1s against -1s, whatever their order).
      * ``longest_same_sign_run``: length of the longest stretch of same-signed weights.
      * ``norm``, ``importance``.
      * ``kind``: the first threshold passed: "alternating" (|alternation| >= alternating_cosine),
        "balance" (sign_balance >= balance_share), "smooth" (adjacent_contrast <= -smooth_contrast),
        else "mixed" (no word).
    Over all units: ``counts`` and ``importance_share`` per kind, ``chance`` (:func:`insight_chance_rates`)
    and ``expected_by_chance`` (n_hidden × the chance rate, per kind), ``mean_flip_fraction``,
    ``most_alternating_unit`` (largest |alternation|), ``most_important_units`` (the ``top`` by importance).
    Per input position: mean |w| over units (``position_weight``), the ``top`` positions
    (``top_positions``), the first one's ``top_position_ratio`` to the mean and ``ends_ratio``, the
    mean |w| of the first and last three positions over the mean (> 1: the ends weigh more).
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] < 3:
        raise ValueError(f"expected an (n_inputs >= 3, n_hidden) matrix, got shape {W.shape}")
    thresholds = {**INSIGHT_THRESHOLDS, **(thresholds or {})}
    n_in, n_hidden = W.shape
    importance = np.linalg.norm(W, axis=0)
    if w_out is not None:
        importance = importance * np.abs(np.asarray(w_out, dtype=np.float64).ravel())
    alternation = _alternation(W)
    contrast = _adjacent_contrast(W.T)
    balance = _sign_balance(W)
    units = []
    for k in range(n_hidden):
        w = W[:, k]
        signs = np.sign(w)
        runs = _runs(np.where(signs == 0, 1, signs))
        units.append({
            "unit": k,
            "alternation": float(alternation[k]),
            "flip_fraction": float(np.mean(signs[:-1] * signs[1:] < 0)),
            "adjacent_contrast": float(contrast[k]),
            "sign_balance": float(balance[k]),
            "longest_same_sign_run": int(max(length for _, length, _ in runs)),
            "norm": float(np.linalg.norm(w)),
            "importance": float(importance[k]),
            "kind": _unit_kind(float(alternation[k]), float(contrast[k]), float(balance[k]), thresholds),
        })

    counts = {kd: sum(u["kind"] == kd for u in units) for kd in INSIGHT_KINDS}
    total_imp = float(importance.sum()) or 1.0
    share = {kd: float(sum(u["importance"] for u in units if u["kind"] == kd)) / total_imp
             for kd in INSIGHT_KINDS}
    chance = insight_chance_rates(n_in, n_hidden, thresholds)
    pos_weight = np.abs(W).mean(axis=1)
    top_positions = [int(i) for i in np.argsort(-pos_weight, kind="stable")[:top]]
    mean_pos = float(pos_weight.mean()) or 1.0
    return {
        "units": units,
        "position_weight": [float(v) for v in pos_weight],
        "top_positions": top_positions,
        "top_position_ratio": float(pos_weight[top_positions[0]] / mean_pos),
        "ends_ratio": float(_ends_ratio(pos_weight)),
        "counts": counts,
        "importance_share": share,
        "thresholds": thresholds,
        "chance": chance,
        "expected_by_chance": {kd: n_hidden * chance[kd] for kd in ("alternating", "smooth", "balance")},
        "mean_flip_fraction": float(np.mean([u["flip_fraction"] for u in units])),
        "most_alternating_unit": max(units, key=lambda u: abs(u["alternation"]))["unit"],
        "most_important_units": [u["unit"] for u in sorted(units, key=lambda u: -u["importance"])[:top]],
    }
