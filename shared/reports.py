"""The text of a job's report: markdown sections, one function per job kind, and the sentences in them.

Each section function takes the job's result dict (as returned by the experiment's final step and
stored with the job) and returns a markdown string. Image and file links are relative to the
job's artifact folder, where the report itself is written. The sentences are written from the
numbers of shared/analysis.py, each showing the number it rests on.

Contents:
    * Tables: markdown_table, matrix_markdown, format_confusion_table (plain text).
    * Sentences: describe_weight_differences (Problem 3, from analysis.weight_stats),
      weight_insight_sentences (Problem 4, from analysis.weight_insight).
    * Keras jobs: confusion_section (Problem 2), regularization_section (Problem 3),
      human_machine_section (Problem 4).
    * The sweep: sweep_report (Problem 1), the whole report.md from the job's status and rows.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from shared.analysis import SMALL_WEIGHT

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


def matrix_markdown(W: Any, *, row_label: str = "row", col_label: str = "col", digits: int = 2) -> str:
    """A numeric matrix as a markdown table with 1-based row and column labels."""
    W = np.asarray(W, dtype=np.float64)
    header = [f"{row_label} \\ {col_label}", *(str(j + 1) for j in range(W.shape[1]))]
    rows = [[str(i + 1), *(f"{v:+.{digits}f}" for v in row)] for i, row in enumerate(W)]
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
    """'2.3× narrower than' style phrase comparing x (subject) with y (reference)."""
    if x == y or (y != 0 and abs(x / y - 1.0) < 0.05):
        return same
    if y == 0 or x == 0:
        return f"{bigger} than" if x > y else f"{smaller} than"
    r = x / y
    return f"{r:.1f}× {bigger} than" if r > 1 else f"{1 / r:.1f}× {smaller} than"


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def describe_weight_differences(stats: Mapping[str, Mapping[str, Mapping[str, float]]],
                                subject: str | None = None, reference: str | None = None,
                                labels: Mapping[str, str] | None = None) -> list[str]:
    """Sentences comparing two models' weights, junction by junction, derived from ``stats``.

    ``stats[model][junction]`` is a :func:`shared.analysis.weight_stats` dict. ``subject`` is
    described relative to ``reference`` (defaults: the second and first model in ``stats``).
    ``labels`` maps model names to display names. Returns one sentence per junction present in both
    models, then one overall sentence.
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


def weight_insight_sentences(insight: Mapping[str, Any]) -> list[str]:
    """A summary of :func:`shared.analysis.weight_insight`'s numbers, ending with a feature-design
    suggestion. Units and input positions are counted from 1 here (from 0 in ``insight``)."""
    units = insight["units"]
    counts, share = insight["counts"], insight["importance_share"]
    alpha = insight["alpha"]
    strongest = units[insight["most_alternating_unit"]]
    sentences = [
        f"Of {len(units)} hidden units, {_plural(counts['alternating'], 'unit gives', 'units give')} "
        f"neighbouring inputs opposite signs more often than a random ordering of its own weights "
        f"would (alternating: switch detectors), {_plural(counts['smooth'], 'unit gives', 'units give')} "
        f"neighbours the same sign more often (smooth: run detectors), "
        f"{counts['balance']} mostly weigh every input with one sign (balance: counting +1s) and "
        f"{counts['mixed']} show no clear pattern; by chance about {insight['expected_by_chance']:.1f} "
        f"would be flagged each way (permutation test at {alpha:g}).",
        f"By importance (weight norm × |outgoing weight|) alternating units carry "
        f"{100 * share['alternating']:.0f}%, smooth ones {100 * share['smooth']:.0f}%, balance ones "
        f"{100 * share['balance']:.0f}% and the rest {100 * share['mixed']:.0f}%.",
        f"On average {100 * insight['mean_flip_fraction']:.0f}% of adjacent weight pairs flip sign.",
        f"Unit {strongest['unit'] + 1} is closest to the pure alternating pattern +,−,+,−,… "
        f"(cosine {strongest['alternation']:+.2f}).",
        f"The most important units are "
        + ", ".join(f"{k + 1} ({units[k]['kind']})" for k in insight["most_important_units"]) + ".",
    ]
    ends = insight["ends_ratio"]
    where = ("the ends of the sequence weigh more than the middle" if ends > 1.1 else
             "the middle of the sequence weighs more than its ends" if ends < 0.9 else
             "the weight is spread fairly evenly over the positions")
    sentences.append(
        f"Input positions {', '.join(str(p + 1) for p in insight['top_positions'])} carry the largest "
        f"mean |w| ({insight['top_position_ratio']:.2f}× the average); {where}.")
    leading = max(("alternating", "smooth", "balance"), key=lambda kd: share[kd])
    if share[leading] == 0.0:
        sentences.append(
            "No unit shows a clear neighbour pattern, so the network has found no simple local "
            "structure; hand-made features (number of switches, longest run, +1/−1 balance) are "
            "worth testing directly.")
    else:
        what, features = _DETECTS[leading]
        if share[leading] >= share["mixed"]:
            lead_in = f"The network mostly {what}"
        else:
            lead_in = (f"Most of the network's weight sits in units without a clear neighbour pattern; "
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


def confusion_section(result: Mapping[str, Any], *, level: int = 2,
                      title: str = "Problem 2: Fashion-MNIST confusions") -> str:
    """Test accuracy, the confusion-rate table, most-confused classes and figures."""
    files = result.get("files", {})
    names = list(result["class_names"])
    rates = np.asarray(result["confusion_rates"], dtype=np.float64)
    params = result.get("params", {})
    pair = result["most_confused_pair"]
    out = [_h(level, title), *_stopped_note(result), ""]
    arch = (f"Dense({params.get('hidden_units', 100)}, ReLU, L2 {params.get('l2', 1e-4):g}) → "
            f"Dropout({params.get('dropout', 0.3):g}) → Dense(10, softmax)")
    out.append(f"Network {arch}, {params.get('optimizer', 'adam')} (learning rate "
               f"{params.get('learning_rate', 1e-3):g}, {params.get('lr_schedule', 'cosine')} schedule), "
               f"{result.get('epochs_run', '?')} epochs, batch {params.get('batch_size', '?')}.")
    final = result.get("final") or {}
    out += ["", f"**Test accuracy: {_pct(result['test_accuracy'])}** (test loss "
                f"{result.get('test_loss', float('nan')):.4f}; last epoch: training accuracy "
                f"{_pct(final.get('train_accuracy'))}, validation accuracy {_pct(final.get('val_accuracy'))}).", ""]
    out.append(f"The two classes most confused with each other are **{pair['classes'][0]}** and "
               f"**{pair['classes'][1]}**: C[{pair['classes'][0]}][{pair['classes'][1]}] + "
               f"C[{pair['classes'][1]}][{pair['classes'][0]}] = {_pct(pair['rate_ab'])} + "
               f"{_pct(pair['rate_ba'])} = {_pct(pair['rate'])}.")
    if pair.get("ties"):
        out.append(f"Tied with: {', '.join(' / '.join(t) for t in pair['ties'])}.")
    out += ["", _h(level + 1, "Class most likely confused for each class"), ""]
    rows = []
    for row in result["most_confused_for"]:
        other = row["confused_with"] or "—"
        if row.get("ties"):
            other += " (tied: " + ", ".join(row["ties"]) + ")"
        rows.append([row["class"], _pct(row.get("correct_rate")), other, _pct(row["rate"])])
    out.append(markdown_table(["true class", "correct", "most often decided instead", "rate"], rows,
                              ["l", "r", "l", "r"]))
    out += ["", _h(level + 1, "Confusion rates (row = true class, column = decision, % of the row)"), ""]
    out.append(markdown_table(["true \\ decided", *names],
                              [[n, *(f"{100 * v:.1f}" for v in r)] for n, r in zip(names, rates)]))
    out += ["", _img("confusion heat map", files.get("heatmap", "confusion.png")), "",
            _img("learning curves", files.get("learning_curves", "learning_curves.png")), "",
            f"Files: [{files.get('csv', 'confusion.csv')}]({files.get('csv', 'confusion.csv')}), "
            f"[{files.get('json', 'confusion.json')}]({files.get('json', 'confusion.json')}), "
            f"[{files.get('table', 'confusion.txt')}]({files.get('table', 'confusion.txt')}).", ""]
    return "\n".join(out)


_STAT_COLUMNS = (("mean", "mean", "{:+.4f}"), ("std", "std", "{:.4f}"), ("mean |w|", "mean_abs", "{:.4f}"),
                 ("|w| < 0.01", "frac_small", "pct"), ("max |w|", "max_abs", "{:.3f}"),
                 ("excess kurtosis", "excess_kurtosis", "{:.2f}"))


def regularization_section(result: Mapping[str, Any], *, level: int = 2,
                           title: str = "Problem 3: effect of L2 and dropout on the weights") -> str:
    """Per-model test accuracy, weight histograms, statistics tables and the generated comparison."""
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
    out.append(markdown_table(["model", "network", "epochs", "train acc.", "val. acc.", "test acc."], rows,
                              ["l", "l", "r", "r", "r", "r"]))
    out += ["", _img("accuracy curves of both models", files.get("learning_curves", "learning_curves.png")), ""]
    out += [_h(level + 1, "What the regularised weights look like"), ""]
    out += [f"- {s}" for s in result.get("description", [])]
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
               f"({files.get('stats_csv', 'weight_stats.csv')}). Histograms of one junction share their bins.")
    out.append("")
    return "\n".join(out)


def human_machine_section(result: Mapping[str, Any], *, level: int = 2,
                          title: str = "Problem 4: human or machine?") -> str:
    """Run table, best model, its learning curve, weight table and heat map, computed insight."""
    files = result.get("files", {})
    runs = result["runs"]
    best = result["best_run"]
    out = [_h(level, title), *_stopped_note(result), ""]
    out.append(f"Network Dense(20, ReLU) → Dense(1, sigmoid), binary cross-entropy, batch 16; each run "
               f"keeps its best epoch by validation accuracy.")
    out += ["", f"**Best run: `{best}`, validation accuracy {_pct(result['val_accuracy'])}** "
                f"(epoch {result.get('best_epoch')}). Model: "
                f"[{result.get('model_path', 'model.hdf5')}]({result.get('model_path', 'model.hdf5')}) "
                f"(Keras HDF5; `tf.keras.models.load_model`).", ""]
    if result.get("missing_runs"):
        out += [f"Runs without results: {', '.join(result['missing_runs'])}.", ""]
    rows = []
    for name in result.get("ranking", list(runs)):
        r = runs[name]
        rows.append([f"**{name}**" if name == best else name, r.get("optimizer"), r.get("regularization"),
                     f"{r.get('learning_rate', float('nan')):g}", _pct(r.get("train_accuracy")),
                     _pct(r["val_accuracy"]), r.get("best_epoch"), r.get("epochs_run")])
    out.append(markdown_table(["run", "optimizer", "regularisation", "lr", "train acc. (kept epoch)",
                               "val. acc.", "kept epoch", "epochs"], rows,
                              ["l", "l", "l", "r", "r", "r", "r", "r"]))
    curves = files.get("learning_curves", {})
    out += ["", _img("validation accuracy per run", files.get("runs_comparison", "runs_comparison.png")), "",
            _img(f"learning curve of {best}", curves.get(best, f"runs/{best}/learning_curve.png")), ""]
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
    units = insight.get("units", [])
    if units:
        top = sorted(units, key=lambda u: -u["importance"])[:8]
        out += ["", markdown_table(
            ["unit", "kind", "adjacent contrast", "sign flips", "alternation cosine", "longest same-sign run",
             "importance"],
            [[u["unit"] + 1, u["kind"], f"{u['adjacent_contrast']:+.2f}", _pct(u["flip_fraction"], 0),
              f"{u['alternation']:+.2f}", u["longest_same_sign_run"], f"{u['importance']:.3f}"] for u in top],
            ["r", "l", "r", "r", "r", "r", "r"])]
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
           f"- Data: first {p['train_size']:,} of the 50,000 training images for training, the last 10,000 "
           "of mnist_traindata.hdf5 for validation; inputs used as given (no preprocessing)",
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
                "", f"Retrained with the same schedule on all 60,000 training images, then evaluated once on "
                "the 10,000 images of mnist_testdata.hdf5.", "",
                "![final](runs/final/curve.png)", "",
                "## Final test accuracy", "",
                f"**{_pct(result['test_accuracy'])}** (test loss {result['test_loss']:.4f}); weights in "
                f"`{result['weights']}`.", ""]
    return "\n".join(out) + "\n"
