"""Pure numpy analysis used by the Keras jobs (Problems 2-4) and their reports.

Nothing here imports TensorFlow or matplotlib, so these functions are cheap to import and test.

Confusion (Problem 2)
    confusion_counts, confusion_rates, most_confused_for, most_confused_pair, format_confusion_table
Weights (Problem 3)
    weight_stats, excess_kurtosis, shared_bins, describe_weight_differences
Human/machine sequences (Problem 4)
    stratified_split, weight_insight
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


def format_confusion_table(C: np.ndarray, class_names: Sequence[str], digits: int = 3) -> str:
    """Aligned plain-text table of a confusion-rate matrix: rows = true class, columns = decision."""
    C = np.asarray(C, dtype=np.float64)
    names = [str(n) for n in class_names]
    if C.shape != (len(names), len(names)):
        raise ValueError(f"matrix shape {C.shape} does not match {len(names)} class names")
    corner = "true \\ predicted"
    label_w = max(len(corner), *(len(n) for n in names))
    cell_w = max(digits + 2, *(len(n) for n in names))
    header = corner.ljust(label_w) + " | " + " ".join(n.rjust(cell_w) for n in names)
    rule = "-" * label_w + "-+-" + "-" * (len(header) - label_w - 3)
    lines = [header, rule]
    for name, row in zip(names, C):
        cells = " ".join(f"{v:.{digits}f}".rjust(cell_w) for v in row)
        lines.append(name.ljust(label_w) + " | " + cells)
    return "\n".join(lines)


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


def _ratio_phrase(x: float, y: float, bigger: str, smaller: str, same: str) -> str:
    """'2.3× narrower than' style phrase comparing x (subject) with y (reference)."""
    if x == y or (y != 0 and abs(x / y - 1.0) < 0.05):
        return same
    if y == 0 or x == 0:
        return f"{bigger} than" if x > y else f"{smaller} than"
    r = x / y
    return f"{r:.1f}× {bigger} than" if r > 1 else f"{1 / r:.1f}× {smaller} than"


def describe_weight_differences(stats: Mapping[str, Mapping[str, Mapping[str, float]]],
                                subject: str | None = None, reference: str | None = None,
                                labels: Mapping[str, str] | None = None) -> list[str]:
    """Sentences comparing two models' weights, junction by junction, derived from ``stats``.

    ``stats[model][junction]`` is a :func:`weight_stats` dict. ``subject`` is described relative to
    ``reference`` (defaults: the second and first model in ``stats``). ``labels`` maps model names
    to display names. Returns one sentence per junction present in both models, then one overall
    sentence.
    """
    models = list(stats)
    if len(models) < 2 and (subject is None or reference is None):
        raise ValueError("need two models to compare")
    reference = reference or models[0]
    subject = subject or next(m for m in models if m != reference)
    labels = dict(labels or {})
    s_name = labels.get(subject, subject)
    r_name = labels.get(reference, reference)
    junctions = [j for j in stats[reference] if j in stats[subject]]
    sentences: list[str] = []
    narrower_votes = 0
    for junction in junctions:
        s, r = stats[subject][junction], stats[reference][junction]
        width = _ratio_phrase(s["std"], r["std"], "wider", "narrower", "about as wide as")
        if s["std"] < r["std"]:
            narrower_votes += 1
        parts = [f"{junction}: the {s_name} weights are {width} the {r_name} ones "
                 f"(std {s['std']:.3g} vs {r['std']:.3g}; mean |w| {s['mean_abs']:.3g} vs "
                 f"{r['mean_abs']:.3g})"]
        df = s["frac_small"] - r["frac_small"]
        if abs(df) >= 0.005:
            more = "more" if df > 0 else "fewer"
            parts.append(f"{100 * s['frac_small']:.1f}% of them are near zero (|w| < {SMALL_WEIGHT})"
                         f" against {100 * r['frac_small']:.1f}%, i.e. {abs(100 * df):.1f} points {more}")
        else:
            parts.append(f"the share of near-zero weights is similar ({100 * s['frac_small']:.1f}% vs "
                         f"{100 * r['frac_small']:.1f}%)")
        big = _ratio_phrase(s["max_abs"], r["max_abs"], "larger", "smaller", "about the same as")
        parts.append(f"the largest |w| is {big} the {r_name}'s ({s['max_abs']:.3g} vs {r['max_abs']:.3g})")
        ks, kr = s["excess_kurtosis"], r["excess_kurtosis"]
        if abs(ks - kr) < 0.25:
            parts.append(f"the tails are alike (excess kurtosis {ks:.2f} vs {kr:.2f})")
        elif ks > kr:
            parts.append(f"the distribution is more peaked with heavier tails (excess kurtosis "
                         f"{ks:.2f} vs {kr:.2f})")
        else:
            parts.append(f"the distribution is flatter with lighter tails (excess kurtosis "
                         f"{ks:.2f} vs {kr:.2f})")
        sentences.append("; ".join(parts) + ".")
    if junctions:
        if narrower_votes == len(junctions):
            sentences.append(f"Overall the {s_name} weights are concentrated closer to zero at every "
                             f"junction, as weight decay is expected to do.")
        elif narrower_votes == 0:
            sentences.append(f"Overall the {s_name} weights are not narrower than the {r_name} "
                             f"ones at any junction: the penalty did not shrink them on balance.")
        else:
            shrunk = [j for j in junctions if stats[subject][j]["std"] < stats[reference][j]["std"]]
            sentences.append(f"Overall the {s_name} weights are narrower only at "
                             f"{', '.join(shrunk)}.")
    return sentences


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


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def weight_insight(W: np.ndarray, w_out: np.ndarray | None = None, *, alpha: float = 0.05,
                   n_permutations: int = 2000, balance_threshold: float = 0.6, top: int = 3,
                   seed: int = 0) -> dict[str, Any]:
    """What the input→hidden weight matrix of the human/machine network attends to.

    ``W`` has shape (n_inputs, n_hidden) (Keras kernel layout: column k = hidden unit k).
    Optional ``w_out`` (n_hidden,) or (n_hidden, 1) weighs each unit's importance by its outgoing
    weight (importance = ||W[:, k]|| · |w_out[k]|; without it, the norm alone).

    Per hidden unit k (weight vector w = W[:, k]; "unit" is the 0-based index, sentences count
    units and positions from 1):
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
      * ``kind``: "alternating" if p_alternating < alpha, "smooth" if p_smooth < alpha, else
        "balance" if sign_balance >= balance_threshold, else "mixed".
    Per input position: mean |w| over units (``position_weight``) and the ``top`` positions.
    ``sentences``: a summary generated from these numbers, ending with a feature-design suggestion.
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

    kinds = ("alternating", "smooth", "balance", "mixed")
    counts = {kd: sum(u["kind"] == kd for u in units) for kd in kinds}
    total_imp = float(importance.sum()) or 1.0
    share = {kd: float(sum(u["importance"] for u in units if u["kind"] == kd)) / total_imp for kd in kinds}
    pos_weight = np.abs(W).mean(axis=1)
    top_positions = [int(i) for i in np.argsort(-pos_weight, kind="stable")[:top]]
    mean_flip = float(np.mean([u["flip_fraction"] for u in units]))
    strongest = max(units, key=lambda u: abs(u["alternation"]))
    by_importance = sorted(units, key=lambda u: -u["importance"])[: min(top, n_hidden)]
    expected = n_hidden * alpha

    sentences = [
        f"Of {n_hidden} hidden units, {_plural(counts['alternating'], 'unit gives', 'units give')} "
        f"neighbouring inputs opposite signs more often than a random ordering of its own weights "
        f"would (alternating: switch detectors), {_plural(counts['smooth'], 'unit gives', 'units give')} "
        f"neighbours the same sign more often (smooth: run detectors), "
        f"{counts['balance']} mostly weigh every input with one sign (balance: counting +1s) and "
        f"{counts['mixed']} show no clear pattern; by chance about {expected:.1f} would be flagged "
        f"each way (permutation test at {alpha:g}).",
        f"By importance (weight norm × |outgoing weight|) alternating units carry "
        f"{100 * share['alternating']:.0f}%, smooth ones {100 * share['smooth']:.0f}%, balance ones "
        f"{100 * share['balance']:.0f}% and the rest {100 * share['mixed']:.0f}%.",
        f"On average {100 * mean_flip:.0f}% of adjacent weight pairs flip sign.",
        f"Unit {strongest['unit'] + 1} is closest to the pure alternating pattern +,−,+,−,… "
        f"(cosine {strongest['alternation']:+.2f}).",
        f"The most important units are "
        + ", ".join(f"{u['unit'] + 1} ({u['kind']})" for u in by_importance) + ".",
    ]
    mean_pos = float(pos_weight.mean()) or 1.0
    ratio = pos_weight[top_positions[0]] / mean_pos
    ends = (pos_weight[:3].mean() + pos_weight[-3:].mean()) / 2 / mean_pos
    where = ("the ends of the sequence weigh more than the middle" if ends > 1.1 else
             "the middle of the sequence weighs more than its ends" if ends < 0.9 else
             "the weight is spread fairly evenly over the positions")
    sentences.append(
        f"Input positions {', '.join(str(p + 1) for p in top_positions)} carry the largest mean |w| "
        f"({ratio:.2f}× the average); {where}.")
    leading = max(("alternating", "smooth", "balance"), key=lambda kd: share[kd])
    detects = {
        "alternating": ("compares each bit with its neighbour, i.e. counts switches",
                        "the number of sign switches, the longest run and the counts of runs of each length"),
        "smooth": ("integrates stretches of same-signed neighbours, i.e. looks at runs",
                   "the longest run, the number of runs and the +1/−1 balance over short windows"),
        "balance": ("counts +1s against −1s regardless of their order",
                    "the overall and windowed +1/−1 balance (and, for the order it ignores, the number "
                    "of switches and the longest run)"),
    }
    if share[leading] == 0.0:
        sentences.append(
            "No unit shows a clear neighbour pattern, so the network has found no simple local "
            "structure; hand-made features (number of switches, longest run, +1/−1 balance) are "
            "worth testing directly.")
    else:
        what, features = detects[leading]
        if share[leading] >= share["mixed"]:
            lead_in = f"The network mostly {what}"
        else:
            lead_in = (f"Most of the network's weight sits in units without a clear neighbour pattern; "
                       f"the clearest structure ({_plural(counts[leading], 'unit', 'units')}, "
                       f"{100 * share[leading]:.0f}% of the importance) {what}, so it captures this only "
                       f"weakly")
        sentences.append(f"{lead_in}: explicit features such as {features} would hand a linear model "
                         f"the same evidence directly.")
    return {
        "units": units,
        "position_weight": [float(v) for v in pos_weight],
        "top_positions": top_positions,
        "counts": counts,
        "importance_share": share,
        "mean_flip_fraction": mean_flip,
        "most_alternating_unit": strongest["unit"],
        "alpha": alpha,
        "sentences": sentences,
    }
