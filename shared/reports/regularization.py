"""Problem 3: the effect of L2 and dropout on the weights, and the sentences comparing the two models.

describe_weight_differences words the numbers of shared.analysis.weight_stats and
shared.analysis.spread_baseline; spread_thresholds lists the thresholds behind its words;
regularization_section is the report's section.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.analysis import KURTOSIS_CHANGE, NEAR_ZERO_SHARE_CHANGE, SMALL_WEIGHT, SPREAD_CHANGE, spread_change

from .common import _fashion_training, _stopped_note
from .tables import _h, _img, _pct, _times, markdown_table


def _ratio_phrase(x: float, y: float, bigger: str, smaller: str, same: str) -> str:
    """'2.3× narrower than' style phrase comparing x (subject) with y (reference); within ±SPREAD_CHANGE of
    each other the two are ``same``."""
    if x == y or (y != 0 and spread_change(x / y) == 0):
        return same
    if y == 0 or x == 0:
        return f"{bigger} than" if x > y else f"{smaller} than"
    r = x / y
    return f"{r:.2f}× {bigger} than" if r > 1 else f"{1 / r:.2f}× {smaller} than"


_GROWTH_WORD = {-1: "shrank", 0: "kept about its initial spread", 1: "widened"}


def spread_thresholds() -> list[str]:
    """The thresholds behind the words of :func:`describe_weight_differences`, one line each."""
    return [f"two stds (or a std and its initial value) within ±{100 * SPREAD_CHANGE:.0f}% of each other are "
            f"\"about the same\"; beyond that one is \"wider\"/\"widened\" or \"narrower\"/\"shrunk\" "
            f"(the std of the smallest layer, 480 weights, varies by about 2% from seed to seed)",
            f"shares of near-zero weights (|w| < {SMALL_WEIGHT}) closer than {100 * NEAR_ZERO_SHARE_CHANGE:.0f} "
            f"percentage points are \"similar\" (standard error over 480 weights: about 0.8 points)",
            f"excess kurtoses closer than {KURTOSIS_CHANGE:g} are \"alike\" (standard error over 480 weights: "
            f"0.05 for uniform, 0.22 for Gaussian weights)"]


def _baseline_sentence(junction: str, b: Mapping[str, Any], s_name: str, r_name: str, subject: str,
                       reference: str, fans: Mapping[str, Any] | None) -> str:
    """Initialization against training for one junction, from an analysis.spread_baseline entry."""
    init, growth, changed = b["init_std"], b["growth"], b["growth_change"]
    if b["init_ratio"] is None:
        return f"{junction}: the {r_name} layer starts with zero spread, so no baseline can be given."
    why = ""
    if fans and fans.get(subject) and fans.get(reference):
        (si, so), (ri, ro) = fans[subject], fans[reference]
        why = (f" (Glorot initialization: std = √(2 / (fan_in + fan_out)), {si} + {so} against {ri} + {ro} "
               f"inputs and outputs)")
    start = (f"{junction}: at initialization (same seed) the {s_name} weights have std {init[subject]:.3g} "
             f"against {init[reference]:.3g}, "
             + ("about the same" if b["init_change"] == 0 else f"{b['init_ratio']:.2f}× "
                + ("wider" if b["init_change"] > 0 else "narrower"))
             + why + ". ")
    moved = (f"Training changed the std by {_times(growth[subject])} for {s_name} ({_GROWTH_WORD[changed[subject]]}) "
             f"and {_times(growth[reference])} for {r_name} ({_GROWTH_WORD[changed[reference]]}). ")
    if b["training_ratio"] is None:
        return start + moved
    after = f"{b['trained_ratio']:.2f}×" if b["trained_ratio"] is not None else "—"
    if b["training_change"] == 0:
        end = (f"Relative to its initial spread the {s_name} layer ends where the {r_name} one does (ratio of the "
               f"two changes {b['training_ratio']:.2f}, within ±{100 * SPREAD_CHANGE:.0f}%): the {after} ratio of "
               f"the trained stds matches the initial {b['init_ratio']:.2f}×, and these numbers show no effect of the "
               f"L2 penalty and dropout on this layer's spread.")
    else:
        more = "narrower" if b["training_change"] < 0 else "wider"
        factor = b["training_ratio"] if b["training_change"] > 0 else 1 / b["training_ratio"]
        end = (f"Relative to its initial spread the {s_name} layer ends {factor:.2f}× {more} than the {r_name} one: "
               f"of the {after} ratio of the trained stds, {b['init_ratio']:.2f}× was there at initialization and "
               f"{b['training_ratio']:.2f}× comes from training, i.e. from the L2 penalty and dropout together with "
               f"any effect the width has on training, which this comparison cannot separate.")
    return start + moved + end


def describe_weight_differences(stats: Mapping[str, Mapping[str, Mapping[str, float]]],
                                subject: str | None = None, reference: str | None = None,
                                labels: Mapping[str, str] | None = None,
                                baseline: Mapping[str, Any] | None = None,
                                fans: Mapping[str, Mapping[str, Any]] | None = None) -> list[str]:
    """Sentences comparing two models' weights, junction by junction, derived from ``stats``.

    ``stats[model][junction]`` is a :func:`shared.analysis.weight_stats` dict. ``subject`` is
    described relative to ``reference`` (defaults: the second and first model in ``stats``).
    ``labels`` maps model names to display names. ``baseline`` is
    :func:`shared.analysis.spread_baseline` of the same models and junctions (the spread at
    initialization); ``fans[model][junction]`` = (fan_in, fan_out) names the layer sizes behind it.
    Returns one sentence per junction present in both models, then, with a baseline, one per junction
    separating initialization from training, then one overall sentence. Words follow the thresholds of
    :func:`spread_thresholds`.
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
    for junction in junctions:
        s, r = stats[subject][junction], stats[reference][junction]
        width = _ratio_phrase(s["std"], r["std"], "wider", "narrower", "about as wide as")
        parts = [f"{junction}: after training the {s_name} weights are {width} the {r_name} ones "
                 f"(std {s['std']:.3g} vs {r['std']:.3g}; mean |w| {s['mean_abs']:.3g} vs "
                 f"{r['mean_abs']:.3g})"]
        df = s["frac_small"] - r["frac_small"]
        if abs(df) >= NEAR_ZERO_SHARE_CHANGE:
            more = "more" if df > 0 else "fewer"
            parts.append(f"{100 * s['frac_small']:.1f}% of them are near zero (|w| < {SMALL_WEIGHT})"
                         f" against {100 * r['frac_small']:.1f}%, i.e. {abs(100 * df):.1f} points {more}")
        else:
            parts.append(f"the share of near-zero weights is similar ({100 * s['frac_small']:.1f}% vs "
                         f"{100 * r['frac_small']:.1f}%)")
        big = _ratio_phrase(s["max_abs"], r["max_abs"], "larger", "smaller", "about the same as")
        parts.append(f"the largest |w| is {big} the {r_name}'s ({s['max_abs']:.3g} vs {r['max_abs']:.3g})")
        ks, kr = s["excess_kurtosis"], r["excess_kurtosis"]
        if abs(ks - kr) < KURTOSIS_CHANGE:
            parts.append(f"the tails are alike (excess kurtosis {ks:.2f} vs {kr:.2f})")
        elif ks > kr:
            parts.append(f"the distribution is more peaked with heavier tails (excess kurtosis "
                         f"{ks:.2f} vs {kr:.2f})")
        else:
            parts.append(f"the distribution is flatter with lighter tails (excess kurtosis "
                         f"{ks:.2f} vs {kr:.2f})")
        sentences.append("; ".join(parts) + ".")
    if not junctions:
        return sentences
    entries = (baseline or {}).get("junctions", {})
    if not entries:
        sentences.append("Without the initial weights these differences cannot be split into what the "
                         "initialization set (the two layers have different widths, hence different initial "
                         "spreads) and what the L2 penalty and dropout did, so no effect is claimed.")
        return sentences
    for junction in junctions:
        if junction in entries:
            junction_fans = {m: (fans or {}).get(m, {}).get(junction) for m in (subject, reference)}
            sentences.append(_baseline_sentence(junction, entries[junction], s_name, r_name, subject, reference,
                                                junction_fans))
    by_change = {c: [j for j in junctions if j in entries and entries[j]["training_ratio"] is not None
                     and entries[j]["training_change"] == c] for c in (-1, 0, 1)}
    parts = []
    if by_change[-1]:
        parts.append(f"narrower than the {r_name} ones at {', '.join(by_change[-1])}")
    if by_change[1]:
        parts.append(f"wider at {', '.join(by_change[1])}")
    if by_change[0]:
        parts.append(f"within ±{100 * SPREAD_CHANGE:.0f}% of them at {', '.join(by_change[0])}")
    if parts:
        sentences.append(f"Overall, measured against each layer's own initial spread, the {s_name} weights end "
                         + "; ".join(parts) + ".")
    return sentences


_STAT_COLUMNS = (("mean", "mean", "{:+.4f}"), ("std", "std", "{:.4f}"), ("mean |w|", "mean_abs", "{:.4f}"),
                 ("|w| < 0.01", "frac_small", "pct"), ("max |w|", "max_abs", "{:.3f}"),
                 ("excess kurtosis", "excess_kurtosis", "{:.2f}"))


def _spread_table(result: Mapping[str, Any], models: Sequence[str], labels: Mapping[str, str],
                  junctions: Mapping[str, str]) -> list[str]:
    """Per junction and model: std at initialization, after training, their ratio and its word."""
    spread = result.get("spread") or {}
    entries = spread.get("junctions", {})
    if not entries:
        return []
    words = {-1: "shrunk", 0: "about the same", 1: "widened"}
    rows = []
    for slug, label in junctions.items():
        b = entries.get(slug)
        if not b:
            continue
        for m in models:
            g = b["growth"].get(m)
            rows.append([label, labels.get(m, m), f"{b['init_std'][m]:.4f}", f"{b['trained_std'][m]:.4f}",
                         _times(g), words[b["growth_change"][m]]])
        rows.append([label, "ratio of the two (L2 + dropout / plain)" if len(models) == 2 else "ratio",
                     _times(b["init_ratio"]), _times(b["trained_ratio"]), _times(b["training_ratio"]),
                     {-1: "narrower", 0: "about the same", 1: "wider"}[b["training_change"]]])
    return [markdown_table(["junction", "model", "std at initialization", "std after training",
                            "after / initial", f"change (±{100 * SPREAD_CHANGE:.0f}%)"], rows,
                           ["l", "l", "r", "r", "r", "l"]), ""]


def regularization_section(result: Mapping[str, Any], *, level: int = 2,
                           title: str = "Weights with and without L2 and dropout") -> str:
    """Per-model test accuracy, weight histograms, statistics tables, the spread at initialization against
    after training, and the generated comparison with the thresholds behind its words."""
    files = result.get("files", {})
    labels = result.get("labels", {})
    junctions = result.get("junctions", {"input_hidden": "input→hidden", "hidden_output": "hidden→output"})
    models = list(result["test_accuracy"])
    out = [_h(level, title), *_stopped_note(result), ""]
    rows = []
    for m in models:
        info = result.get("models", {}).get(m, {})
        arch = (f"Dense({info.get('hidden_units', '?')}, ReLU"
                + (f", L2 {info['l2']:g}" if info.get("l2") else "") + ")"
                + (f" → Dropout({info['dropout']:g})" if info.get("dropout") else "")
                + " → Dense(10, softmax)")
        final = info.get("final", {})
        rows.append([labels.get(m, m), arch, info.get("epochs_run", "?"), _pct(final.get("train_accuracy")),
                     _pct(final.get("val_accuracy")), f"**{_pct(result['test_accuracy'][m])}**"])
    out.append(markdown_table(["model", "network", "epochs", "train acc. (final epoch)", "val. acc. (final epoch)",
                               "test acc."], rows, ["l", "l", "r", "r", "r", "r"]))
    first = result.get("models", {}).get(models[0], {}) if models else {}
    if first:
        training = _fashion_training(first, first.get("params") or {})
        out += ["", f"Both models: {training[0].lower()}{training[1:]} Weights start from "
                    f"Keras' default Glorot-uniform initialization drawn from the same seed; the test accuracy is "
                    f"that of the model after its last epoch."]
    out += ["", _img("accuracy curves of both models", files.get("learning_curves", "learning_curves.png")), ""]
    out += [_h(level + 1, "What the regularised weights look like"), ""]
    out += [f"- {s}" for s in result.get("description", [])]
    table = _spread_table(result, models, labels, junctions)
    if table:
        out += ["", _h(level + 1, "Spread at initialization and after training"), "",
                "The two layers of a junction have different widths, so they start with different spreads; the "
                "ratio after / initial per model separates what training changed from what the initialization "
                "set, and the last row of each junction compares those changes between the models.", "", *table]
    out += ["", "Thresholds behind the words above:", ""]
    out += [f"- {line}" for line in spread_thresholds()]
    for slug, label in junctions.items():
        out += ["", _h(level + 1, f"{label} weights"), ""]
        header = ["model", *(c[0] for c in _STAT_COLUMNS), "n"]
        srows = []
        for m in models:
            s = result["weight_stats"][m][slug]
            cells = [_pct(s[key]) if fmt == "pct" else fmt.format(s[key]) for _, key, fmt in _STAT_COLUMNS]
            srows.append([labels.get(m, m), *cells, s["n"]])
        out.append(markdown_table(header, srows))
        out.append("")
        hist = files.get("histograms", {})
        imgs = [_img(f"{labels.get(m, m)} {label}", hist.get(m, {}).get(slug, f"weights_{m}_{slug}.png"))
                for m in models]
        out.append(" ".join(imgs))
        out += ["", _img(f"{label} overlay", files.get("overlays", {}).get(slug, f"weights_overlay_{slug}.png")), ""]
    out.append(f"Statistics: [{files.get('stats_csv', 'weight_stats.csv')}]"
               f"({files.get('stats_csv', 'weight_stats.csv')}). Histograms of one junction share their bins; "
               f"the dashed outline in each model's histogram is the same layer at initialization.")
    out.append("")
    return "\n".join(out)
