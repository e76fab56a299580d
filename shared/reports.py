"""The text of a job's report: markdown sections, one function per job kind, and the sentences in them.

Each section function takes the job's result dict (as returned by the experiment's final step and
stored with the job) and returns a markdown string. Image and file links are relative to the
job's artifact folder, where the report itself is written. The sentences are written from the
numbers of shared/analysis.py, each showing the number it rests on.

Every word that judges a number ("wider", "shrunk", "alternating", "stands out") follows a named threshold of
shared/analysis.py, and the report lists those thresholds beside the sentences.

Contents:
    * Tables and cells: markdown_table, format_cell, matrix_markdown, format_confusion_table (plain text),
      indexed_names ("m: name" class labels).
    * Sentences: describe_weight_differences and spread_thresholds (Problem 3, from analysis.weight_stats
      and analysis.spread_baseline), weight_insight_sentences and insight_thresholds (Problem 4, from
      analysis.weight_insight).
    * Keras jobs: confusion_section (Problem 2), regularization_section (Problem 3),
      human_machine_section (Problem 4).
    * The sweep: sweep_report (Problem 1), the whole report.md from the job's status and rows.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from shared.analysis import KURTOSIS_CHANGE, NEAR_ZERO_SHARE_CHANGE, SMALL_WEIGHT, SPREAD_CHANGE, spread_change

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[Any], rows: Sequence[Sequence[Any]],
                   align: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured markdown table; ``align`` holds "l"/"r"/"c" per column."""
    align = list(align or ["l"] + ["r"] * (len(header) - 1))
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |",
             "| " + " | ".join(marks[a] for a in align) + " |"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def format_cell(value: float, digits: int = 2, *, plus: bool = False) -> str:
    """A number for a table or heat-map cell: a value that rounds to zero reads 0.00 (never -0.00 or +0.00);
    ``plus`` signs the others explicitly."""
    text = f"{value:+.{digits}f}" if plus else f"{value:.{digits}f}"
    return f"{0:.{digits}f}" if float(text) == 0.0 else text


def matrix_markdown(W: Any, *, row_label: str = "row", col_label: str = "col", digits: int = 2) -> str:
    """A numeric matrix as a markdown table with 1-based row and column labels (cells by :func:`format_cell`)."""
    W = np.asarray(W, dtype=np.float64)
    header = [f"{row_label} \\ {col_label}", *(str(j + 1) for j in range(W.shape[1]))]
    rows = [[str(i + 1), *(format_cell(v, digits, plus=True) for v in row)] for i, row in enumerate(W)]
    return markdown_table(header, rows)


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
# Sentences from the analysis numbers
# --------------------------------------------------------------------------------------------


def _ratio_phrase(x: float, y: float, bigger: str, smaller: str, same: str) -> str:
    """'2.3× narrower than' style phrase comparing x (subject) with y (reference); within ±SPREAD_CHANGE of
    each other the two are ``same``."""
    if x == y or (y != 0 and spread_change(x / y) == 0):
        return same
    if y == 0 or x == 0:
        return f"{bigger} than" if x > y else f"{smaller} than"
    r = x / y
    return f"{r:.2f}× {bigger} than" if r > 1 else f"{1 / r:.2f}× {smaller} than"


def _times(r: float | None) -> str:
    return "—" if r is None else f"×{r:.2f}"


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


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


# What a unit of each kind detects, and the hand-made features that would give a linear model the same evidence.
_DETECTS = {
    "alternating": ("compares each bit with its neighbour, i.e. counts switches",
                    "the number of sign switches, the longest run and the counts of runs of each length"),
    "smooth": ("integrates stretches of same-signed neighbours, i.e. looks at runs",
               "the longest run, the number of runs and the +1/−1 balance over short windows"),
    "balance": ("counts +1s against −1s regardless of their order",
                "the overall and windowed +1/−1 balance (and, for the order it ignores, the number "
                "of switches and the longest run)"),
}


_KIND_WORD = {"alternating": "alternating", "smooth": "smooth", "balance": "balance", "mixed": "no clear pattern"}


def insight_thresholds(insight: Mapping[str, Any]) -> list[str]:
    """The thresholds behind the words of :func:`weight_insight_sentences`, each with how often random weights
    pass it (``insight["chance"]``), one line each."""
    t, c = insight["thresholds"], insight["chance"]
    n = len(insight["position_weight"])
    return [
        f"**alternating** (a switch detector): |cosine with +,−,+,−,…| ≥ {t['alternating_cosine']:g} "
        f"(a unit of random Gaussian weights: {_pct(c['alternating'], 1)})",
        f"**balance** (counts +1s against −1s): sign balance |Σw| / Σ|w| ≥ {t['balance_share']:g} "
        f"(random: {_pct(c['balance'], 1)})",
        f"**smooth** (a run detector): adjacent contrast −Σ w_i w_(i+1) / Σ |w_i w_(i+1)| ≤ "
        f"−{t['smooth_contrast']:g} (random: {_pct(c['smooth'], 1)})",
        "a unit passing none of these is described as having **no clear pattern**; the first threshold "
        "passed, in this order, names a unit",
        f"an input position **stands out** (a position bias) when its mean |w| is at least "
        f"{t['position_bias']:g}× the average (the largest of {n} random positions: {_pct(c['position_bias'], 1)})",
        f"the **ends** (first and last three positions) or the **middle** weigh more when the ends' mean |w| is "
        f"more than {100 * t['ends_bias']:.0f}% above or below the average (random: {_pct(c['ends_heavier'], 1)} "
        f"/ {_pct(c['middle_heavier'], 1)})",
    ]


def weight_insight_sentences(insight: Mapping[str, Any]) -> list[str]:
    """A summary of :func:`shared.analysis.weight_insight`'s numbers, ending with a feature-design
    suggestion. A unit or position gets a word only past its threshold (``insight["thresholds"]``,
    listed by :func:`insight_thresholds`). Units and input positions are counted from 1 here (from 0
    in ``insight``)."""
    units = insight["units"]
    counts, share = insight["counts"], insight["importance_share"]
    t, chance = insight["thresholds"], insight["expected_by_chance"]
    strongest = units[insight["most_alternating_unit"]]
    sentences = [
        f"Of {len(units)} hidden units, {counts['alternating']} "
        f"{'passes' if counts['alternating'] == 1 else 'pass'} the alternating threshold (switch "
        f"detectors), {counts['balance']} the balance threshold (they count +1s against −1s), "
        f"{counts['smooth']} the smooth threshold (run detectors) and {counts['mixed']} none (no clear "
        f"pattern); units of random weights would pass about {chance['alternating']:.1f}, "
        f"{chance['balance']:.1f} and {chance['smooth']:.1f} by chance.",
        f"By importance (weight norm × |outgoing weight|) alternating units carry "
        f"{100 * share['alternating']:.0f}%, balance ones {100 * share['balance']:.0f}%, smooth ones "
        f"{100 * share['smooth']:.0f}% and units with no clear pattern {100 * share['mixed']:.0f}%.",
        f"On average {100 * insight['mean_flip_fraction']:.0f}% of adjacent weight pairs flip sign.",
    ]
    if abs(strongest["alternation"]) >= t["alternating_cosine"]:
        sentences.append(f"Unit {strongest['unit'] + 1} is closest to the pure alternating pattern +,−,+,−,… "
                         f"(cosine {strongest['alternation']:+.2f}, past ±{t['alternating_cosine']:g}).")
    else:
        sentences.append(f"No unit reaches the alternating threshold (|cosine with +,−,+,−,…| ≥ "
                         f"{t['alternating_cosine']:g}); the closest, unit {strongest['unit'] + 1}, has cosine "
                         f"{strongest['alternation']:+.2f}.")
    sentences.append("The most important units are "
                     + ", ".join(f"{k + 1} ({_KIND_WORD[units[k]['kind']]})" for k in insight["most_important_units"])
                     + ".")
    positions = ", ".join(str(p + 1) for p in insight["top_positions"])
    ratio, first = insight["top_position_ratio"], insight["top_positions"][0] + 1
    if ratio >= t["position_bias"]:
        where = (f"position {first} stands out with {ratio:.2f}× the average (a position bias: threshold "
                 f"{t['position_bias']:g}×)")
    else:
        where = (f"the first, position {first}, has {ratio:.2f}× the average, below the {t['position_bias']:g}× "
                 f"at which a position would stand out")
    ends = insight["ends_ratio"]
    ends_text = (f"the ends of the sequence weigh more than the average ({ends:.2f}×)" if ends > 1 + t["ends_bias"]
                 else f"the middle of the sequence weighs more than its ends (ends {ends:.2f}× the average)"
                 if ends < 1 - t["ends_bias"] else
                 f"the ends weigh about as much as the average ({ends:.2f}×, within ±{100 * t['ends_bias']:.0f}%)")
    sentences.append(f"Input positions {positions} carry the largest mean |w|; {where}; {ends_text}.")
    leading = max(("alternating", "smooth", "balance"), key=lambda kd: share[kd])
    if share[leading] == 0.0:
        sentences.append(
            "No unit passes a threshold, so the weights show no simple local structure; hand-made features "
            "(number of switches, longest run, +1/−1 balance) are worth testing directly.")
    else:
        what, features = _DETECTS[leading]
        if share[leading] >= share["mixed"]:
            lead_in = f"The network mostly {what}"
        else:
            lead_in = (f"Most of the network's weight sits in units with no clear pattern; "
                       f"the clearest structure ({_plural(counts[leading], 'unit', 'units')}, "
                       f"{100 * share[leading]:.0f}% of the importance) {what}, so it captures this only "
                       f"weakly")
        sentences.append(f"{lead_in}: explicit features such as {features} would hand a linear model "
                         f"the same evidence directly.")
    return sentences


def _pct(v: Any, digits: int = 2) -> str:
    return "—" if v is None else f"{100 * float(v):.{digits}f}%"


def _h(level: int, text: str) -> str:
    return "#" * max(1, level) + " " + text


def _img(alt: str, path: str) -> str:
    return f"![{alt}]({path})"


def _stopped_note(result: Mapping[str, Any]) -> list[str]:
    if result.get("stopped_early"):
        return ["", "> Training was stopped before the planned number of epochs; the figures below "
                    "describe the partial run.", ""]
    return []


# --------------------------------------------------------------------------------------------
# Keras jobs (Problems 2-4)
# --------------------------------------------------------------------------------------------


def indexed_names(class_names: Sequence[str]) -> list[str]:
    """Class labels as the homework numbers them: "m: name", m counted from 0 ("0: T-shirt/top")."""
    return [f"{m}: {name}" for m, name in enumerate(class_names)]


def _fashion_training(result: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """How a Fashion-MNIST model of Problems 2 and 3 was trained, in one sentence (worker/experiments/fashion.py)."""
    lr = float(params.get("learning_rate", 1e-3))
    if params.get("lr_schedule", "cosine") == "cosine":
        frac = float(params.get("final_lr_fraction", 0.02))
        schedule = (f"learning rate {lr:g} decayed along a cosine, step by step, to {100 * frac:g}% of it "
                    f"({lr * frac:g}) at the last step")
    else:
        schedule = f"constant learning rate {lr:g}"
    val_fraction = float(params.get("val_fraction", 0.1))
    n_train, n_val = result.get("n_train"), result.get("n_val")
    sizes = (f"the first {n_train:,} training images; the last {100 * val_fraction:g}% of the training set "
             f"({n_val:,} images) validated after every epoch" if n_train and n_val else
             f"the training set less its last {100 * val_fraction:g}%, which validated after every epoch")
    epochs = result.get("epochs_run", "?")
    planned = params.get("epochs")
    ran = f"{epochs} epochs" + (f" (of {planned} planned)" if planned and planned != epochs else "")
    optimizer = params.get("optimizer", "adam")
    return (f"Trained for {ran} with {_OPTIMIZER_NAMES.get(optimizer, optimizer)} ({schedule}), batch "
            f"{params.get('batch_size', '?')}, on {sizes}; the model after the last epoch was tested once on "
            f"the 10,000 test images. Seed {params.get('seed', 0)}.")


def confusion_section(result: Mapping[str, Any], *, level: int = 2,
                      title: str = "Problem 2: Fashion-MNIST confusions") -> str:
    """Test accuracy, the confusion-rate table, most-confused classes and figures. Classes read "m: name"
    with the homework's indices 0–9."""
    files = result.get("files", {})
    names = list(result["class_names"])
    label = dict(zip(names, indexed_names(names)))
    rates = np.asarray(result["confusion_rates"], dtype=np.float64)
    params = result.get("params", {})
    pair = result["most_confused_pair"]
    out = [_h(level, title), *_stopped_note(result), ""]
    arch = (f"Dense({params.get('hidden_units', 100)}, ReLU, L2 {params.get('l2', 1e-4):g}) → "
            f"Dropout({params.get('dropout', 0.3):g}) → Dense(10, softmax)")
    out.append(f"Network {arch}. {_fashion_training(result, params)}")
    final = result.get("final") or {}
    out += ["", f"**Test accuracy: {_pct(result['test_accuracy'])}** (test loss "
                f"{result.get('test_loss', float('nan')):.4f}; final epoch: training accuracy "
                f"{_pct(final.get('train_accuracy'))}, validation accuracy {_pct(final.get('val_accuracy'))}).", ""]
    a, b = pair["classes"]
    ia, ib = pair.get("indices") or (names.index(a), names.index(b))
    out.append(f"The two classes most confused with each other are **{label[a]}** and **{label[b]}**: "
               f"C[{ia}][{ib}] + C[{ib}][{ia}] = {_pct(pair['rate_ab'])} + {_pct(pair['rate_ba'])} = "
               f"{_pct(pair['rate'])}. C[m][n] is the share of the test images of class m decided as n.")
    if pair.get("ties"):
        out.append(f"Tied with: {', '.join(' / '.join(label.get(c, c) for c in t) for t in pair['ties'])}.")
    out += ["", _h(level + 1, "Class most likely confused for each class"), ""]
    rows = []
    for row in result["most_confused_for"]:
        other = label.get(row["confused_with"], "—") if row["confused_with"] else "—"
        if row.get("ties"):
            other += " (tied: " + ", ".join(label.get(t, t) for t in row["ties"]) + ")"
        rows.append([label.get(row["class"], row["class"]), _pct(row.get("correct_rate")), other, _pct(row["rate"])])
    out.append(markdown_table(["true class", "correct", "most often decided instead", "rate"], rows,
                              ["l", "r", "l", "r"]))
    out += ["", _h(level + 1, "Confusion rates C[m][n] (row m = true class, column n = decision, % of the row)"), ""]
    out.append(markdown_table(["true \\ decided", *indexed_names(names)],
                              [[label[n], *(f"{100 * v:.1f}" for v in r)] for n, r in zip(names, rates)]))
    out += ["", _img("confusion heat map", files.get("heatmap", "confusion.png")), "",
            _img("learning curves", files.get("learning_curves", "learning_curves.png")), "",
            f"Files: [{files.get('csv', 'confusion.csv')}]({files.get('csv', 'confusion.csv')}), "
            f"[{files.get('json', 'confusion.json')}]({files.get('json', 'confusion.json')}), "
            f"[{files.get('table', 'confusion.txt')}]({files.get('table', 'confusion.txt')}).", ""]
    return "\n".join(out)


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
                           title: str = "Problem 3: effect of L2 and dropout on the weights") -> str:
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


_OPTIMIZER_NAMES = {"sgd": "SGD", "momentum": "SGD with momentum", "adam": "Adam", "rmsprop": "RMSprop"}


def _human_machine_setup(result: Mapping[str, Any]) -> list[str]:
    """Data, split, label convention, network, each optimizer's learning rate, each regularizer's strength and
    the choice of the kept epoch, as bullet lines (from the result's ``split`` and ``settings``)."""
    split, st = result.get("split") or {}, result.get("settings") or {}
    out = []
    n_train, n_val = split.get("n_train"), split.get("n_val")
    if n_train and n_val:
        line = (f"- **Data and split:** {n_train + n_val:,} sequences of 20 bits in {{−1, +1}}; label **1 = human**, "
                f"0 = machine (a sigmoid output above 0.5 decides human). One stratified split "
                f"(`shared.analysis.stratified_split`, seed {split.get('split_seed', 0)}) gives **{n_train:,} "
                f"training** and **{n_val:,} validation** rows ({100 * split.get('val_fraction', 0.2):g}% of each "
                f"class)")
        if split.get("val_human") is not None:
            line += (f": {split['val_human']:,} human and {n_val - split['val_human']:,} machine sequences validate, "
                     f"{split['train_human']:,} and {n_train - split['train_human']:,} train")
        out.append(line + "; every run uses the same split.")
    if st:
        rates = st.get("learning_rates", {})
        opts = "; ".join(f"{_OPTIMIZER_NAMES.get(o, o)}"
                         + (f" (momentum {st['momentum']:g})" if o == "momentum" else "") + f" {lr:g}"
                         for o, lr in rates.items() if o in {r.get("optimizer") for r in result["runs"].values()})
        out += [f"- **Network:** Dense({st.get('hidden_units', 20)}, ReLU) → Dense(1, sigmoid), binary "
                f"cross-entropy, batch {st.get('batch_size', 16)}, {st.get('epochs')} epochs per run, initial weights "
                f"and shuffling from seed {st.get('seed', 0)}.",
                f"- **Optimizers** (constant learning rates): {opts}.",
                f"- **Regularizers:** none; L2 with coefficient {st.get('l2'):g} on the hidden layer's kernel "
                f"(the loss gains {st.get('l2'):g} · Σw²); dropout with rate {st.get('dropout'):g} after the hidden "
                "layer."]
    out.append("- **Kept epoch:** each run keeps the weights of its epoch with the highest validation accuracy "
               "(ties: the lower validation loss), so that the over-fitting of later epochs is not kept; the best "
               "run is the one whose kept epoch has the highest validation accuracy.")
    return out


def _optimism_note(result: Mapping[str, Any]) -> list[str]:
    """The best run's quoted accuracy was chosen on the rows it is measured on: say so, and give the figure
    of its final epoch, which chose nothing."""
    runs, best = result["runs"], result["best_run"]
    n_val = (result.get("split") or {}).get("n_val") or runs[best].get("n_val")
    rows_text = f"these {n_val:,} validation rows" if n_val else "the validation rows"
    epochs = runs[best].get("epochs_run")
    final = result.get("final") or runs[best].get("final") or {}
    note = (f"> **Optimistic figure.** The kept epoch (the best of {epochs} epochs) and the best run (the best of "
            f"{len(runs)} runs) were both chosen by accuracy on {rows_text}, and "
            f"{_pct(result['val_accuracy'])} is measured on the same rows, so it overstates what the model does on "
            f"new sequences.")
    if final.get("val_accuracy") is not None and final.get("epoch") == result.get("best_epoch"):
        note += (f" Here the kept epoch is the final one ({final.get('epoch')}), so the final epoch's accuracy is the "
                 f"same number and gives no estimate free of the choice.")
    elif final.get("val_accuracy") is not None:
        note += (f" An estimate not used for choosing the epoch: the same run's final epoch ({final.get('epoch')}) "
                 f"reached **{_pct(final['val_accuracy'])}** on those rows. The run itself was still chosen on them, "
                 f"so even this may be a little high; no rows were held out of the homework's "
                 f"{100 * (1 - (result.get('split') or {}).get('val_fraction', 0.2)):g}/"
                 f"{100 * (result.get('split') or {}).get('val_fraction', 0.2):g} split for a separate test.")
    return [note, ""]


def human_machine_section(result: Mapping[str, Any], *, level: int = 2,
                          title: str = "Problem 4: human or machine?") -> str:
    """Set-up (split, labels, learning rates, regularizer strengths, kept epoch), best model with an estimate
    not used for choosing it, run table, every run's learning curves, weight table and heat map, and the
    computed insight with its thresholds."""
    files = result.get("files", {})
    runs = result["runs"]
    best = result["best_run"]
    out = [_h(level, title), *_stopped_note(result), ""]
    out += [*_human_machine_setup(result), ""]
    out += [f"**Best run: `{best}`, validation accuracy {_pct(result['val_accuracy'])}** at its kept epoch "
            f"{result.get('best_epoch')}. Model: "
            f"[{result.get('model_path', 'model.hdf5')}]({result.get('model_path', 'model.hdf5')}) "
            f"(Keras HDF5, the kept epoch's weights; `tf.keras.models.load_model`).", ""]
    out += _optimism_note(result)
    if result.get("missing_runs"):
        out += [f"Runs without results: {', '.join(result['missing_runs'])}.", ""]
    rows = []
    for name in result.get("ranking", list(runs)):
        r = runs[name]
        final = r.get("final") or {}
        rows.append([f"**{name}**" if name == best else name, r.get("optimizer"), r.get("regularization"),
                     f"{r.get('learning_rate', float('nan')):g}", _pct(r.get("train_accuracy")),
                     _pct(r["val_accuracy"]), r.get("best_epoch"), _pct(final.get("val_accuracy")),
                     r.get("epochs_run")])
    out.append(markdown_table(["run", "optimizer", "regularisation", "lr", "train acc. (kept epoch)",
                               "val. acc. (kept epoch)", "kept epoch", "val. acc. (final epoch)", "epochs"], rows,
                              ["l", "l", "l", "r", "r", "r", "r", "r", "r"]))
    curves = files.get("learning_curves", {})
    out += ["", _img("validation accuracy per run at the kept and the final epoch",
                     files.get("runs_comparison", "runs_comparison.png")), ""]
    if files.get("learning_curves_all"):
        out += [_img("learning curves of every run", files["learning_curves_all"]), ""]
    out += [_img(f"learning curve of {best}", curves.get(best, f"runs/{best}/learning_curve.png")), ""]
    others = [n for n in result.get("ranking", list(runs)) if n != best]
    if others:
        out.append("Other runs' learning curves: " + ", ".join(
            f"[{n}]({curves.get(n, f'runs/{n}/learning_curve.png')})" for n in others) + ".")
        out.append("")
    out += [_h(level + 1, "Input→hidden weights of the best model"), "",
            "Rows are input positions 1–20, columns hidden units 1–20.", ""]
    out.append(result.get("weight_table") or matrix_markdown(result["weight_matrix"], row_label="input",
                                                             col_label="unit"))
    out += ["", _img("input-to-hidden weight heat map", files.get("weights_png", "weights_input_hidden.png")), ""]
    insight = result.get("insight", {})
    out += [_h(level + 1, "Insight from the weights"), ""]
    out += [f"- {s}" for s in insight.get("sentences", [])]
    if insight.get("thresholds") and insight.get("chance"):
        out += ["", "A unit or position is given a word only past its threshold (the percentages: how often "
                    "random Gaussian weights of the same shape pass it):", ""]
        out += [f"- {line}" for line in insight_thresholds(insight)]
    units = insight.get("units", [])
    if units:
        top = sorted(units, key=lambda u: -u["importance"])[:8]
        out += ["", markdown_table(
            ["unit", "kind", "alternation cosine", "sign balance", "adjacent contrast", "sign flips",
             "longest same-sign run", "importance"],
            [[u["unit"] + 1, _KIND_WORD.get(u["kind"], u["kind"]), f"{u['alternation']:+.2f}",
              f"{u['sign_balance']:.2f}" if "sign_balance" in u else "—", f"{u['adjacent_contrast']:+.2f}",
              _pct(u["flip_fraction"], 0), u["longest_same_sign_run"], f"{u['importance']:.3f}"] for u in top],
            ["r", "l", "r", "r", "r", "r", "r", "r"])]
        out.append("")
        out.append("Units are numbered from 1 (the insight JSON numbers them from 0).")
    out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# The sweep (Problem 1)
# --------------------------------------------------------------------------------------------


def homework_note(deviations: Sequence[str]) -> list[str]:
    """The lines that open a report right under its title when the job's settings are not the homework's (the
    kind's `deviations`): a blockquote and a blank line; none for the homework's settings."""
    if not deviations:
        return []
    return [f"> **Not the homework's settings:** {'; '.join(deviations)}", ""]


def sweep_report(status: Mapping, rows: Sequence[Mapping], deviations: Sequence[str] = ()) -> str:
    """report.md of a sweep job: the homework's deliverables for Problem 1, from the job's status and rows;
    `deviations` (the kind's): how its settings differ from the homework's, said first."""
    p = status["params"]
    result = status.get("result") or {}
    layers = [784, *p["hidden"], 10]
    decay = p.get("decay_epochs") or []
    out = [f"# Problem 1 — numpy MLP sweep (job `{status['job_id']}`)", "", *homework_note(deviations),
           f"State: **{status['state']}**" + (f" — {status['error']}" if status.get("error") else ""), "",
           "## Network and training", "",
           f"- Layers (neurons): {' → '.join(map(str, layers))} "
           f"({len(p['hidden'])} hidden layer{'s' if len(p['hidden']) != 1 else ''}; softmax output, "
           "cross-entropy loss)",
           f"- Hidden activations compared: {', '.join(p['activations'])}",
           f"- Initial learning rates compared: {', '.join(f'{lr:g}' for lr in p['lrs'])}",
           f"- Batch size: {p['batch_size']} (minibatch SGD"
           + (f", momentum {p['momentum']:g}" if p.get("momentum") else "") + ")",
           f"- Initialization: {p['init']} (normal); biases zero",
           f"- Regularization: L2 {p.get('l2', 0):g} on the weights, dropout {p.get('dropout', 0):g} "
           "on hidden layers",
           f"- Epochs: {p['epochs']}; learning rate halved after epoch"
           f"{'s' if len(decay) != 1 else ''} {', '.join(map(str, decay)) or '(none)'}",
           f"- Data: each configuration trained on images 1–{p['train_size']:,} of mnist_traindata.hdf5 and "
           "was validated on its last 10,000 (images 50,001–60,000); the chosen configuration was retrained "
           "on all 60,000 images of mnist_traindata.hdf5 and tested once on the 10,000 of mnist_testdata.hdf5; "
           "inputs used as given (no preprocessing)",
           f"- Seed: {p.get('seed')}", "",
           "## The configurations", "",
           "| run | activation | initial LR | state | epochs | final val accuracy | best val accuracy |",
           "|---|---|---|---|---|---|---|"]
    for r in status["runs"]:
        if r["role"] != "run":
            continue
        out.append(f"| {r['name']} | {r['config']['activation']} | {r['config']['lr']:g} | {r['state']} | "
                   f"{r['epochs_done']}/{r['epochs_total']} | {_pct(r['last_val_accuracy'])} | "
                   f"{_pct(r['best_val_accuracy'])} |")
    out += ["", "![overview](overview.png)", ""]
    for r in status["runs"]:
        if r["role"] == "run":
            out.append(f"![{r['name']}](runs/{r['name']}/curve.png)")
    failed = {r["name"]: r["error"] for r in status["runs"] if r["state"] == "failed"}
    if failed:
        out += ["", "## Failed runs", ""] + [f"- {name}: {err}" for name, err in failed.items()]
    if "chosen" in result:
        c = result["chosen"]
        ranked = sorted(((v, k) for k, v in result["val_accuracy"].items() if v is not None), reverse=True)
        runner_up = ranked[1] if len(ranked) > 1 else None
        out += ["", "## Chosen configuration", "",
                f"**{c['activation']}, initial learning rate {c['lr']:g}** — chosen by the highest "
                f"{result['selection']}: {_pct(c['val_accuracy'])}"
                + (f" (next best: {runner_up[1]}, {_pct(runner_up[0])})." if runner_up else "."),
                "", "Retrained with the same schedule on all 60,000 training images, then evaluated once on "
                "the 10,000 images of mnist_testdata.hdf5.", "",
                "![final](runs/final/curve.png)", "",
                "## Final test accuracy", "",
                f"**{_pct(result['test_accuracy'])}** (test loss {result['test_loss']:.4f}); weights in "
                f"`{result['weights']}`.", ""]
    return "\n".join(out) + "\n"
