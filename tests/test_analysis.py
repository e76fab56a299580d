"""Pure analysis numbers (shared/analysis.py), the sentences and tables written from them
(shared/reports/), JSON conversion and plots, on hand-built inputs."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from shared import analysis, plots, reports
from shared.serialize import to_jsonable

pytestmark = pytest.mark.unit

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------- confusion


def test_confusion_rates_hand_example():
    y_true = [0, 0, 0, 0, 1, 1, 2, 2, 2]
    y_pred = [0, 0, 1, 2, 1, 0, 2, 2, 2]
    C = analysis.confusion_rates(y_true, y_pred, n_classes=3)
    expected = np.array([[0.5, 0.25, 0.25], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(C, expected)
    np.testing.assert_allclose(C.sum(axis=1), 1.0)
    np.testing.assert_array_equal(analysis.confusion_counts(y_true, y_pred, 3),
                                  [[2, 1, 1], [1, 1, 0], [0, 0, 3]])


def test_confusion_rates_rows_sum_to_one_random_and_empty_row():
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 9, 500)  # class 9 never occurs
    y_pred = rng.integers(0, 10, 500)
    C = analysis.confusion_rates(y_true, y_pred, 10)
    np.testing.assert_allclose(C[:9].sum(axis=1), 1.0)
    assert np.all(C[9] == 0.0)
    assert np.all((C >= 0) & (C <= 1))


def test_confusion_rejects_bad_labels():
    with pytest.raises(ValueError):
        analysis.confusion_rates([0, 1], [0, 3], n_classes=3)
    with pytest.raises(ValueError):
        analysis.confusion_rates([0, 1], [0], n_classes=3)


def test_most_confused_for_known_answers_and_ties():
    C = np.array([
        [0.70, 0.20, 0.10, 0.00],
        [0.05, 0.90, 0.05, 0.00],   # tie between 0 and 2
        [0.00, 0.00, 1.00, 0.00],   # never wrong
        [0.10, 0.00, 0.30, 0.60],
    ])
    rows = analysis.most_confused_for(C)
    assert [r["true"] for r in rows] == [0, 1, 2, 3]
    assert rows[0]["predicted"] == [1] and rows[0]["rate"] == pytest.approx(0.20)
    assert rows[1]["predicted"] == [0, 2] and rows[1]["rate"] == pytest.approx(0.05)
    assert rows[2]["predicted"] == [] and rows[2]["rate"] == 0.0
    assert rows[3]["predicted"] == [2] and rows[3]["rate"] == pytest.approx(0.30)


def test_most_confused_pair_symmetric_sum_and_ties():
    C = np.array([
        [0.6, 0.3, 0.1],
        [0.1, 0.8, 0.1],
        [0.25, 0.05, 0.7],
    ])
    # pair sums: (0,1) 0.4, (0,2) 0.35, (1,2) 0.15
    pair = analysis.most_confused_pair(C)
    assert pair["pair"] == (0, 1)
    assert pair["rate"] == pytest.approx(0.4)
    assert pair["rate_ij"] == pytest.approx(0.3) and pair["rate_ji"] == pytest.approx(0.1)
    assert pair["ties"] == [(0, 1)]
    # the largest single entry (0.3) loses to a larger sum elsewhere
    C2 = np.array([[0.7, 0.3, 0.0], [0.0, 0.6, 0.4], [0.0, 0.35, 0.65]])
    assert analysis.most_confused_pair(C2)["pair"] == (1, 2)
    tie = np.array([[0.8, 0.2, 0.0], [0.0, 0.8, 0.2], [0.0, 0.0, 1.0]])
    assert analysis.most_confused_pair(tie)["ties"] == [(0, 1), (1, 2)]


def test_format_confusion_table_is_aligned_with_names():
    names = ("T-shirt/top", "Trouser", "Bag")
    C = np.array([[0.9, 0.05, 0.05], [0.0, 1.0, 0.0], [0.125, 0.0, 0.875]])
    text = reports.format_confusion_table(C, names)
    lines = text.splitlines()
    assert len(lines) == 2 + len(names)
    assert len({len(line) for line in lines}) == 1  # every line equally wide
    assert all(n in text for n in names)
    assert "0.125" in lines[-1] and lines[-1].startswith("Bag")
    assert lines[0].index("|") == lines[2].index("|")


# ------------------------------------------------------------------------------- weights


def test_weight_stats_against_hand_numbers():
    w = np.array([[-0.5, 0.005], [0.0, 1.5]])
    s = analysis.weight_stats(w)
    assert s["n"] == 4
    assert s["mean"] == pytest.approx(0.25125)
    assert s["std"] == pytest.approx(np.sqrt(np.mean((w.ravel() - 0.25125) ** 2)))
    assert s["mean_abs"] == pytest.approx((0.5 + 0.005 + 0 + 1.5) / 4)
    assert s["frac_small"] == pytest.approx(0.5)  # 0.005 and 0.0
    assert s["max_abs"] == pytest.approx(1.5)


def test_excess_kurtosis_of_known_distributions():
    assert analysis.excess_kurtosis(np.array([-1.0, 1.0] * 50)) == pytest.approx(-2.0)
    u = np.linspace(-1, 1, 200001)
    assert analysis.excess_kurtosis(u) == pytest.approx(-1.2, abs=1e-3)
    g = np.random.default_rng(0).standard_normal(400_000)
    assert analysis.excess_kurtosis(g) == pytest.approx(0.0, abs=0.05)
    lap = np.random.default_rng(1).laplace(size=400_000)
    assert analysis.excess_kurtosis(lap) == pytest.approx(3.0, abs=0.2)
    assert analysis.excess_kurtosis(np.ones(5)) == 0.0


def test_shared_bins_cover_everything_symmetrically():
    bins = analysis.shared_bins([np.array([-0.2, 0.1]), np.array([0.5])], n_bins=10)
    assert len(bins) == 11 and bins[0] == pytest.approx(-0.5) and bins[-1] == pytest.approx(0.5)


def _stats(std_a: float, std_b: float, small_a: float = 0.05, small_b: float = 0.3,
           kurt_a: float = 0.5, kurt_b: float = 3.0) -> dict:
    def one(std, small, kurt):
        return {"n": 100, "mean": 0.0, "std": std, "mean_abs": 0.8 * std, "frac_small": small,
                "max_abs": 5 * std, "excess_kurtosis": kurt}
    return {
        "plain": {"input→hidden": one(std_a, small_a, kurt_a), "hidden→output": one(2 * std_a, 0.01, 0.1)},
        "l2_dropout": {"input→hidden": one(std_b, small_b, kurt_b), "hidden→output": one(2 * std_b, 0.01, 0.1)},
    }


def test_describe_weight_differences_is_derived_from_the_numbers():
    narrow = reports.describe_weight_differences(_stats(0.072, 0.031))
    assert len(narrow) == 3  # one per junction + the note that, without initial weights, no cause is claimed
    assert "2.32× narrower" in narrow[0]
    assert "0.031" in narrow[0] and "0.072" in narrow[0]
    assert "30.0%" in narrow[0] and "5.0%" in narrow[0] and "more" in narrow[0]
    assert "heavier tails" in narrow[0]
    assert "no effect is claimed" in narrow[-1]  # widths differ: without the initial spreads, no cause

    wide = reports.describe_weight_differences(_stats(0.031, 0.093, small_a=0.3, small_b=0.05,
                                                       kurt_a=3.0, kurt_b=0.2))
    assert "3.00× wider" in wide[0] and "fewer" in wide[0] and "lighter tails" in wide[0]
    assert wide != narrow

    same = reports.describe_weight_differences(_stats(0.05, 0.051, small_a=0.1, small_b=0.1,
                                                       kurt_a=1.0, kurt_b=1.1))
    assert "about as wide as" in same[0] and "similar" in same[0] and "alike" in same[0]


def test_describe_uses_labels_and_explicit_roles():
    s = _stats(0.072, 0.031)
    text = reports.describe_weight_differences(s, subject="plain", reference="l2_dropout",
                                                labels={"plain": "P", "l2_dropout": "R"})
    assert text[0].startswith("input→hidden: after training the P weights are 2.32× wider than the R ones")


# ------------------------------------------------------------------------------- human/machine


def test_stratified_split_is_stratified_seeded_and_disjoint():
    y = np.array([1] * 510 + [0] * 490)
    tr, va = analysis.stratified_split(y, 0.2, seed=5)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == len(y)
    assert np.sum(y[va] == 1) == 102 and np.sum(y[va] == 0) == 98
    tr2, va2 = analysis.stratified_split(y, 0.2, seed=5)
    np.testing.assert_array_equal(va, va2)
    _, va3 = analysis.stratified_split(y, 0.2, seed=6)
    assert not np.array_equal(va, va3)
    with pytest.raises(ValueError):
        analysis.stratified_split(y, 1.0)


def test_weight_insight_detects_planted_alternating_unit():
    rng = np.random.default_rng(0)
    W = rng.normal(0, 0.05, size=(20, 20))
    alt = np.where(np.arange(20) % 2 == 0, 1.0, -1.0)
    W[:, 7] = -0.8 * alt + rng.normal(0, 0.02, 20)  # sign of the whole pattern does not matter
    W[:, 3] = np.where(np.arange(20) < 10, 0.6, -0.6) + rng.normal(0, 0.02, 20)  # two long runs
    w_out = np.full(20, 0.1)
    w_out[7] = 2.0
    ins = analysis.weight_insight(W, w_out=w_out)
    u7, u3 = ins["units"][7], ins["units"][3]
    assert ins["most_alternating_unit"] == 7
    assert u7["kind"] == "alternating" and u7["flip_fraction"] == 1.0
    assert u7["alternation"] < -0.95 and u7["adjacent_contrast"] > 0.95
    assert u3["kind"] == "smooth" and u3["adjacent_contrast"] < -0.8 and u3["longest_same_sign_run"] == 10
    assert u3["flip_fraction"] == pytest.approx(1 / 19)
    assert sum(ins["counts"].values()) == 20
    # random noise units are only rarely flagged
    assert ins["counts"]["alternating"] + ins["counts"]["smooth"] <= 6
    sentences = reports.weight_insight_sentences(ins)
    text = " ".join(sentences)
    assert "Unit 8 is closest" in text and "8 (alternating)" in text  # 1-based in the text
    assert ins["importance_share"]["alternating"] > 0.5
    assert "switches" in sentences[-1]
    assert len(ins["position_weight"]) == 20 and len(ins["top_positions"]) == 3
    assert ins == analysis.weight_insight(W, w_out=w_out)  # deterministic
    assert "sentences" not in ins  # numbers only; the words come from reports
    assert reports.weight_insight_sentences(json.loads(json.dumps(ins))) == sentences  # as stored


def test_weight_insight_balance_units_and_positions():
    rng = np.random.default_rng(1)
    W = 0.5 + rng.normal(0, 0.05, size=(20, 20))
    W[0] *= 4  # the first position dominates
    ins = analysis.weight_insight(W)
    assert ins["counts"]["balance"] == 20
    assert ins["top_positions"][0] == 0
    sentences = reports.weight_insight_sentences(ins)
    assert "+1s against −1s" in sentences[-1]
    assert "Input positions 1," in " ".join(sentences)
    assert ins["top_position_ratio"] > 2  # the sentence shows this ratio
    assert "{:.2f}× the average".format(ins["top_position_ratio"]) in " ".join(sentences)


def test_weight_insight_changes_with_the_matrix():
    rng = np.random.default_rng(2)
    runs = np.where((np.arange(20) // 5) % 2 == 0, 1.0, -1.0)[:, None] * rng.uniform(0.5, 1, (1, 20))
    ins = analysis.weight_insight(runs + rng.normal(0, 0.05, (20, 20)))
    assert ins["counts"]["smooth"] >= 18
    assert "runs" in reports.weight_insight_sentences(ins)[-1]


# ------------------------------------------------------------------------------- JSON, reports, plots


def test_to_jsonable_gives_plain_json_values():
    obj = {"a": np.float32(0.5), 3: (np.int64(2), Path("runs/x")), "arr": np.arange(3).reshape(1, 3),
           "bad": [float("nan"), np.float64("inf"), np.float32("nan")], "ok": np.bool_(True), "none": None}
    out = to_jsonable(obj)
    assert out == {"a": 0.5, "3": [2, "runs/x"], "arr": [[0, 1, 2]], "bad": [None, None, None],
                   "ok": True, "none": None}
    assert type(out["a"]) is float and type(out["3"][0]) is int and type(out["ok"]) is bool
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert to_jsonable(-math.inf) is None and to_jsonable("text") == "text"



def test_matrix_markdown_shape():
    md = reports.matrix_markdown(np.arange(6).reshape(2, 3) / 10, row_label="input", col_label="unit")
    lines = md.splitlines()
    assert len(lines) == 4 and lines[0].startswith("| input \\ unit | 1 | 2 | 3 |")
    assert "+0.50" in lines[-1]


def test_plots_write_real_pngs(tmp_path):
    hist = [{"epoch": e, "train_accuracy": 0.5 + e / 100, "val_accuracy": 0.5 + e / 120,
             "train_loss": 1 / e, "val_loss": 1.1 / e} for e in range(1, 6)]
    rng = np.random.default_rng(0)
    paths = [
        plots.plot_learning_curves(hist, tmp_path / "a" / "lc.png", best_epoch=3),
        plots.plot_confusion_heatmap(np.eye(3) * 0.8 + 0.2 / 3, ["a", "b", "c"], tmp_path / "cm.png"),
        plots.plot_weight_histogram(rng.normal(size=100), np.linspace(-4, 4, 21), tmp_path / "h.png", title="h"),
        plots.plot_weight_overlay({"x": rng.normal(size=100), "y": rng.normal(size=50)},
                                  np.linspace(-4, 4, 21), tmp_path / "o.png", title="o"),
        plots.plot_weight_matrix(rng.normal(size=(20, 20)), tmp_path / "w.png"),
        plots.plot_run_comparison(["r1", "r2"], [0.6, 0.62], tmp_path / "r.png", highlight="r2", reference=0.61),
        plots.plot_curve_comparison({"m1": hist, "m2": hist}, tmp_path / "c.png"),
    ]
    for p in paths:
        assert p.is_file() and p.read_bytes()[:8] == PNG_MAGIC
