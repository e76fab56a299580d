"""Problem 4: human-typed or machine-generated sequences, and the insight from the best model's weights.

weight_insight_sentences words the numbers of shared.analysis.weight_insight; insight_thresholds lists
the thresholds behind its words; human_machine_section is the report's section.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .common import _OPTIMIZER_NAMES, _stopped_note
from .tables import _h, _img, _pct, markdown_table, matrix_markdown


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


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


def _human_machine_setup(result: Mapping[str, Any]) -> list[str]:
    """Data, split, label convention, network, each optimizer's learning rate, each regularizer's strength and
    the choice of the kept epoch, as bullet lines (from the result's ``split`` and ``settings``)."""
    split, st = result.get("split") or {}, result.get("settings") or {}
    out = []
    n_train, n_val = split.get("n_train"), split.get("n_val")
    if n_train and n_val:
        line = (f"- **Data and split:** {n_train + n_val:,} sequences of 20 bits in {{−1, +1}}; label **1 = human**, "
                f"0 = machine (a sigmoid output above 0.5 decides human). One split stratified "
                f"by class (seed {split.get('split_seed', 0)}) gives **{n_train:,} "
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
                          title: str = "Runs, the chosen model and its weights") -> str:
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
