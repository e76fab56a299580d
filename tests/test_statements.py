"""Every statement of a report is true and backed by a number: the words of the generated sentences follow
documented thresholds (shared/analysis.py), the reports state how each model was trained and chosen, and the
figures are readable (whole-number epochs, a one-epoch run draws, no "-0.00"). Unit tests: no training."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from shared import analysis, plots, reports
from shared.artifacts import run_dir
from shared.datasets import FASHION_CLASSES
from shared.entities import EpochRow, JobStatus, RunStatus
from worker.experiments import human_machine
from worker.kinds.sweep import KIND as SWEEP
from worker.kinds.sweep import plan_sweep

pytestmark = pytest.mark.unit

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ALT = np.where(np.arange(20) % 2 == 0, 1.0, -1.0)


def _unit_with_cosine(cos: float, seed: int = 0) -> np.ndarray:
    """A 20-weight unit whose cosine with +,−,+,−,… is exactly `cos`; the rest of it is a phase-flipped
    alternation (+,−,…,+,− then −,+,…), which has many sign flips between neighbours but cosine 0."""
    a = ALT / np.linalg.norm(ALT)
    flipped = np.where(np.arange(20) < 10, ALT, -ALT) + np.random.default_rng(seed).normal(0, 0.05, 20)
    v = flipped - (flipped @ a) * a
    v /= np.linalg.norm(v)
    return cos * a + np.sqrt(1 - cos ** 2) * v


def _matrix(*columns: np.ndarray, seed: int = 0) -> np.ndarray:
    """A 20×20 matrix: small noise units, with the given columns first."""
    W = np.random.default_rng(seed).normal(0, 0.01, (20, 20))
    for k, col in enumerate(columns):
        W[:, k] = col
    return W


# ----------------------------------------------------------------------------- Problem 4: words need thresholds


def test_a_unit_at_cosine_minus_0_01_is_not_called_alternating():
    unit = _unit_with_cosine(-0.01)
    ins = analysis.weight_insight(_matrix(unit), w_out=np.r_[5.0, np.full(19, 0.1)])
    u = ins["units"][0]
    assert u["alternation"] == pytest.approx(-0.01, abs=1e-9)
    assert u["flip_fraction"] > 0.8 and u["adjacent_contrast"] > 0.5  # what used to earn it the word
    assert u["kind"] != "alternating" and ins["counts"]["alternating"] == 0
    text = " ".join(reports.weight_insight_sentences(ins))
    assert "No unit reaches the alternating threshold (|cosine with +,−,+,−,…| ≥ 0.5)" in text
    assert "1 (alternating)" not in text and "1 (no clear pattern)" in text


@pytest.mark.parametrize("cos", [analysis.ALTERNATING_COSINE + 0.01, -(analysis.ALTERNATING_COSINE + 0.01)])
def test_a_unit_past_the_cosine_threshold_is_called_alternating(cos):
    ins = analysis.weight_insight(_matrix(_unit_with_cosine(cos)), w_out=np.r_[5.0, np.full(19, 0.1)])
    assert ins["units"][0]["kind"] == "alternating" and ins["counts"]["alternating"] == 1
    text = " ".join(reports.weight_insight_sentences(ins))
    assert f"Unit 1 is closest to the pure alternating pattern +,−,+,−,… (cosine {cos:+.2f}, past ±0.5)" in text
    assert "1 (alternating)" in text


def test_a_unit_just_below_the_cosine_threshold_is_not_alternating():
    ins = analysis.weight_insight(_matrix(_unit_with_cosine(analysis.ALTERNATING_COSINE - 0.01)))
    assert ins["units"][0]["kind"] != "alternating"


def test_smooth_and_balance_words_follow_their_thresholds():
    runs = np.where(np.arange(20) < 10, 1.0, -1.0)              # two runs: contrast -17/19, balance 0
    ones = np.ones(20)                                          # one sign: balance 1 (not "smooth")
    ins = analysis.weight_insight(_matrix(runs, ones))
    assert [u["kind"] for u in ins["units"][:2]] == ["smooth", "balance"]
    weak = np.where((np.arange(20) // 2) % 2 == 0, 1.0, -1.0)   # runs of two: contrast -1/19, no word
    assert analysis.weight_insight(_matrix(weak))["units"][0]["kind"] == "mixed"
    assert analysis.SMOOTH_CONTRAST == 0.6 and analysis.BALANCE_SHARE == 0.6


def test_the_chance_rates_back_the_thresholds():
    chance = analysis.insight_chance_rates(20, 20)
    assert 0.01 < chance["alternating"] < 0.04 and 0.02 < chance["smooth"] < 0.06
    assert 0.01 < chance["balance"] < 0.05 and chance["position_bias"] < 0.1
    assert chance["ends_heavier"] < 0.01 and chance["middle_heavier"] < 0.01
    assert chance == analysis.insight_chance_rates(20, 20)  # seeded


def test_a_position_is_said_to_stand_out_only_past_the_threshold():
    rng = np.random.default_rng(3)
    flat = rng.normal(0, 0.3, (20, 20))
    ins = analysis.weight_insight(flat)
    assert ins["top_position_ratio"] < analysis.POSITION_BIAS
    text = " ".join(reports.weight_insight_sentences(ins))
    assert "stands out" not in text and f"below the {analysis.POSITION_BIAS:g}×" in text
    biased = flat.copy()
    biased[4] *= 3
    ins = analysis.weight_insight(biased)
    text = " ".join(reports.weight_insight_sentences(ins))
    assert f"position 5 stands out with {ins['top_position_ratio']:.2f}× the average" in text


# ----------------------------------------------------------------------------- Problem 3: the initial spread


def _one(std: float) -> dict:
    return {"n": 480, "mean": 0.0, "std": std, "mean_abs": 0.8 * std, "frac_small": 0.03, "max_abs": 2 * std,
            "excess_kurtosis": -1.2}


def _stats(**stds) -> dict:
    """stats[model][junction] from std values named model__junction."""
    out: dict = {}
    for key, std in stds.items():
        model, junction = key.split("__")
        out.setdefault(model, {})[junction] = _one(std)
    return out


def test_a_layer_that_did_not_move_is_not_described_as_shrunk_or_widened():
    init = _stats(plain__out=0.120, reg__out=0.186)      # Glorot: the 48-unit layer starts 1.55× wider
    trained = _stats(plain__out=0.120, reg__out=0.186)   # neither moved
    base = analysis.spread_baseline(init, trained, "reg", "plain")
    b = base["junctions"]["out"]
    assert b["growth"] == {"reg": 1.0, "plain": 1.0} and b["growth_change"] == {"reg": 0, "plain": 0}
    assert b["init_ratio"] == pytest.approx(1.55) and b["training_ratio"] == pytest.approx(1.0)
    text = reports.describe_weight_differences(trained, "reg", "plain", labels={"reg": "R", "plain": "P"},
                                               baseline=base, fans={"reg": {"out": (48, 10)},
                                                                    "plain": {"out": (128, 10)}})
    joined = " ".join(text)
    assert "1.55× wider than the P ones" in text[0]  # after training: the raw comparison stays true
    assert "shrank" not in joined and "widened" not in joined
    assert "ends where the P one does" in text[1] and "show no effect of the L2 penalty and dropout" in text[1]
    assert "48 + 10 against 128 + 10" in text[1]
    assert "within ±10% of them at out" in text[-1]


def test_a_layer_whose_change_differs_between_the_models_past_the_threshold_is_described():
    init = _stats(plain__out=0.120, reg__out=0.186)
    trained = _stats(plain__out=0.180, reg__out=0.186)   # plain widened ×1.5, reg stayed: reg/plain = 0.67
    base = analysis.spread_baseline(init, trained, "reg", "plain")
    b = base["junctions"]["out"]
    assert b["growth_change"] == {"reg": 0, "plain": 1} and b["training_change"] == -1
    text = reports.describe_weight_differences(trained, "reg", "plain", labels={"reg": "R", "plain": "P"},
                                               baseline=base)
    assert "×1.00 for R (kept about its initial spread) and ×1.50 for P (widened)" in text[1]
    assert "ends 1.50× narrower than the P one" in text[1] and "comes from training" in text[1]
    assert "narrower than the P ones at out" in text[-1]


def test_the_spread_threshold_is_ten_percent_each_way():
    assert analysis.SPREAD_CHANGE == 0.10
    assert [analysis.spread_change(r) for r in (0.89, 0.91, 1.0, 1.09, 1.11, None)] == [-1, 0, 0, 0, 1, 0]
    init = _stats(plain__out=0.1, reg__out=0.1)
    shrunk = analysis.spread_baseline(init, _stats(plain__out=0.1, reg__out=0.08), "reg", "plain")
    assert shrunk["junctions"]["out"]["growth_change"]["reg"] == -1
    text = reports.describe_weight_differences(_stats(plain__out=0.1, reg__out=0.08), "reg", "plain", baseline=shrunk)
    assert "×0.80 for reg (shrank)" in text[1]


def test_the_regularization_report_shows_the_spread_table_and_its_threshold(tmp_path):
    from worker.experiments import regularization

    results, histories = {}, {}
    for name, hidden, std0, std1 in (("plain", 16, 0.1, 0.12), ("l2_dropout", 8, 0.12, 0.12)):
        rng = np.random.default_rng(hidden)
        k1, k2 = rng.normal(0, std1, (784, hidden)), rng.normal(0, std1, (hidden, 10))
        i1, i2 = rng.normal(0, std0, (784, hidden)), rng.normal(0, std0, (hidden, 10))
        folder = run_dir(tmp_path, name)
        folder.mkdir(parents=True)
        np.savez(folder / "weights.npz", kernel_1=k1, bias_1=np.zeros(hidden), kernel_2=k2, bias_2=np.zeros(10))
        np.savez(folder / "weights_init.npz", kernel_1=i1, bias_1=np.zeros(hidden), kernel_2=i2, bias_2=np.zeros(10))
        histories[name] = [{"epoch": 1, "train_accuracy": 0.8, "val_accuracy": 0.8}]
        results[name] = {"model": name, "test_accuracy": 0.8, "hidden_units": hidden, "l2": 0.0, "dropout": 0.0,
                         "epochs_run": 1, "n_train": 54000, "n_val": 6000,
                         "params": {"epochs": 1, "batch_size": 128, "optimizer": "adam", "learning_rate": 1e-3,
                                    "lr_schedule": "cosine", "final_lr_fraction": 0.02, "val_fraction": 0.1,
                                    "seed": 0},
                         "init": {"stats": {"input_hidden": analysis.weight_stats(i1),
                                            "hidden_output": analysis.weight_stats(i2)},
                                  "fans": {"input_hidden": [784, hidden], "hidden_output": [hidden, 10]}}}
    r = regularization.summarize_regularization(tmp_path, results, histories).result
    assert set(r["spread"]["junctions"]) == {"input_hidden", "hidden_output"}
    md = reports.regularization_section(r)
    assert "### Spread at initialization and after training" in md
    assert "| input→hidden | plain (128) |" in md and "change (±10%)" in md
    assert "within ±10% of each other are \"about the same\"" in md
    assert "the first 54,000 training images; the last 10% of the training set (6,000 images) validated" in md
    assert "dashed outline" in md


# ----------------------------------------------------------------------------- Problem 4: the set-up and the choice


def test_the_default_split_is_8160_by_2040_stratified_with_seed_0():
    y = np.r_[np.ones(5100, np.int64), np.zeros(5100, np.int64)]
    x = np.random.default_rng(0).choice([-1.0, 1.0], (10200, 20))
    (x_tr, y_tr), (x_val, y_val) = human_machine.split_data(x, y)
    assert (len(y_tr), len(y_val)) == (8160, 2040)
    assert int(y_val.sum()) == 1020 and int(y_tr.sum()) == 4080
    assert human_machine.DEFAULT_PARAMS["split_seed"] == 0
    _, (_, again) = human_machine.split_data(x, y, {"split_seed": 0})
    np.testing.assert_array_equal(y_val, again)


def _hm_result(tmp_path: Path) -> dict:
    params = {"epochs": 40}
    results, histories = {}, {}
    for i, name in enumerate(human_machine.run_names(params)):
        folder = run_dir(tmp_path, name)
        folder.mkdir(parents=True)
        rng = np.random.default_rng(i)
        np.savez(folder / "weights.npz", kernel_1=rng.normal(0, 0.3, (20, 20)), bias_1=np.zeros(20),
                 kernel_2=rng.normal(0, 0.3, (20, 1)), bias_2=np.zeros(1))
        (folder / "model.hdf5").write_bytes(b"m")
        optimizer, reg = human_machine.parse_run_name(name)
        acc = 0.60 + i / 1000
        histories[name] = [{"epoch": e, "train_accuracy": 0.55 + e / 1000, "val_accuracy": acc - (40 - e) / 2000}
                           for e in range(1, 41)]
        results[name] = {"run": name, "optimizer": optimizer, "regularization": reg,
                         "learning_rate": human_machine.DEFAULT_PARAMS["learning_rates"][optimizer],
                         "val_accuracy": acc, "val_loss": 0.66, "train_accuracy": 0.6, "best_epoch": 31,
                         "final": {"epoch": 40, "val_accuracy": acc - 0.012, "train_accuracy": 0.62, "val_loss": 0.67},
                         "epochs_run": 40, "n_train": 8160, "n_val": 2040,
                         "split": {"val_fraction": 0.2, "split_seed": 0, "train_human": 4080, "val_human": 1020}}
    return human_machine.summarize_human_machine(tmp_path, results, histories, params).result


def test_the_human_machine_report_states_the_split_labels_strengths_rates_and_kept_epoch(tmp_path):
    r = _hm_result(tmp_path)
    md = reports.human_machine_section(r)
    assert "label **1 = human**, 0 = machine" in md
    assert "seed 0) gives **8,160 training** and **2,040 validation** rows (20% of each class)" in md
    assert "1,020 human and 1,020 machine sequences validate" in md
    assert "SGD 0.05; SGD with momentum (momentum 0.9) 0.005; Adam 0.001; RMSprop 0.0005" in md
    assert "L2 with coefficient 0.001" in md and "dropout with rate 0.2" in md
    assert "**Kept epoch:** each run keeps the weights of its epoch with the highest validation accuracy" in md
    assert "40 epochs per run" in md
    assert "goal" not in md.lower()


def test_the_optimism_note_and_an_estimate_not_used_for_choosing(tmp_path):
    r = _hm_result(tmp_path)
    best = r["best_run"]
    md = reports.human_machine_section(r)
    assert r["final"]["epoch"] == 40 and r["final"]["val_accuracy"] == pytest.approx(r["val_accuracy"] - 0.012)
    assert "**Optimistic figure.**" in md
    assert "the best of 40 epochs" in md and "the best of 12 runs" in md and "these 2,040 validation rows" in md
    assert f"the same run's final epoch (40) reached **{100 * r['final']['val_accuracy']:.2f}%**" in md
    assert f"**Best run: `{best}`, validation accuracy {100 * r['val_accuracy']:.2f}%** at its kept epoch 31" in md
    assert "| val. acc. (kept epoch) | kept epoch | val. acc. (final epoch) |" in md
    assert (tmp_path / "learning_curves_all.png").read_bytes()[:8] == PNG_MAGIC
    assert "![learning curves of every run](learning_curves_all.png)" in md


def test_the_report_states_the_insight_thresholds(tmp_path):
    md = reports.human_machine_section(_hm_result(tmp_path))
    assert "|cosine with +,−,+,−,…| ≥ 0.5" in md and "adjacent contrast" in md and "≤ −0.6" in md
    assert "|Σw| / Σ|w| ≥ 0.6" in md and "at least 1.5× the average" in md and "more than 15% above" in md


def test_weight_cells_never_read_minus_zero():
    W = np.array([[-0.001, 0.004, -0.35], [0.0, -0.0049, 0.35]])
    md = reports.matrix_markdown(W, digits=2)
    assert "-0.00" not in md and "+0.00" not in md and "| 0.00 |" in md and "-0.35" in md and "+0.35" in md
    assert reports.format_cell(-0.04, 1) == "0.0" and reports.format_cell(-0.05, 1) == "-0.1"


# ----------------------------------------------------------------------------- Problem 2: "m: name"


def test_the_confusion_table_reads_index_and_name():
    assert reports.indexed_names(FASHION_CLASSES)[:2] == ["0: T-shirt/top", "1: Trouser"]
    rates = np.eye(10) * 0.9 + 0.01
    result = {"class_names": list(FASHION_CLASSES), "confusion_rates": rates.tolist(), "test_accuracy": 0.9,
              "test_loss": 0.3, "epochs_run": 40, "n_train": 54000, "n_val": 6000,
              "params": {"epochs": 40, "batch_size": 128, "optimizer": "adam", "learning_rate": 1e-3,
                         "lr_schedule": "cosine", "final_lr_fraction": 0.02, "val_fraction": 0.1, "seed": 0},
              "most_confused_pair": {"classes": ["Pullover", "Coat"], "indices": [2, 4], "rate": 0.02,
                                     "rate_ab": 0.01, "rate_ba": 0.01},
              "most_confused_for": [{"class": n, "confused_with": "Coat", "rate": 0.01} for n in FASHION_CLASSES]}
    md = reports.confusion_section(result)
    header = next(line for line in md.splitlines() if line.startswith("| true \\ decided"))
    assert header.split(" | ")[1:3] == ["0: T-shirt/top", "1: Trouser"] and "9: Ankle boot" in header
    assert "| 0: T-shirt/top | 91.0 | 1.0 |" in md and "| 9: Ankle boot |" in md
    assert "**2: Pullover** and **4: Coat**: C[2][4] + C[4][2]" in md
    assert ("Trained for 40 epochs with Adam (learning rate 0.001 decayed along a cosine, step by step, to 2% of it "
            "(2e-05) at the last step), batch 128, on the first 54,000 training images; the last 10% of the "
            "training set (6,000 images) validated after every epoch") in md
    text = reports.format_confusion_table(rates, reports.indexed_names(FASHION_CLASSES))
    assert text.splitlines()[2].startswith("0: T-shirt/top")


def test_the_heat_map_title_and_colour_bar_are_in_percent(tmp_path, monkeypatch):
    seen = {}
    real = Figure.colorbar

    def spy(self, mappable, *args, **kwargs):
        seen["clim"], seen["label"] = mappable.get_clim(), kwargs.get("label")
        return real(self, mappable, *args, **kwargs)

    monkeypatch.setattr(Figure, "colorbar", spy)
    plots.plot_confusion_heatmap(np.eye(3) * 0.8 + 0.2 / 3, ["0: a", "1: b", "2: c"], tmp_path / "cm.png")
    assert seen["clim"] == (0.0, 100.0) and "%" in seen["label"]


# ----------------------------------------------------------------------------- Problem 1 and every epoch axis


def _integer_ticks_inside(ax) -> list[float]:
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert ticks and all(float(t).is_integer() for t in ticks)
    return ticks


@pytest.mark.parametrize("n_epochs", [1, 2, 7, 50])
def test_epoch_axes_have_whole_number_ticks_and_room_around_the_points(n_epochs):
    fig = Figure()
    ax = fig.add_subplot()
    ax.plot(range(1, n_epochs + 1), np.linspace(0.5, 0.9, n_epochs), marker="o")
    plots.epoch_axis(ax, list(range(1, n_epochs + 1)))
    fig.canvas.draw()
    assert ax.get_xlim() == (0.5, n_epochs + 0.5)
    ticks = _integer_ticks_inside(ax)
    assert 1 in ticks or n_epochs > 10


def _rows(n: int, run_id: int = 1, val: bool = True) -> list[dict]:
    return [{"run_id": run_id, "epoch": e, "lr": 0.02, "train_accuracy": 0.9 + e / 100,
             "val_accuracy": (0.89 + e / 100) if val else None} for e in range(1, n + 1)]


def test_a_one_epoch_sweep_run_draws(tmp_path):
    path = plots.sweep_run_curve(_rows(1), "tanh-lr0.02", [], tmp_path / "one.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    runs = [{"run_id": 1, "name": "tanh-lr0.02"}, {"run_id": 2, "name": "relu-lr0.02"}]
    path = plots.sweep_overview(_rows(1) + _rows(1, run_id=2), runs, [], tmp_path / "overview.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert plots.plot_learning_curves(_rows(1), tmp_path / "keras.png", best_epoch=1).read_bytes()[:8] == PNG_MAGIC


def test_the_sweep_axes_keep_the_legend_off_the_curves_and_the_lr_labels():
    fig = Figure()
    ax = fig.add_subplot()
    plots._draw_sweep_axes(ax, _rows(2), [1], "t")
    assert ax.get_legend() is None  # placed by the caller, outside the axes
    _integer_ticks_inside(ax)


def _status(run_id: int, name: str, role: str, config: dict, result: dict | None = None) -> RunStatus:
    return RunStatus(run_id=run_id, job_id="0123456789ab", name=name, role=role, config=config, state="succeeded",
                     epochs_total=2, epochs_done=2, attempts=1, result=result, error=None, worker=None, pid=None)


def test_the_final_retrain_figure_is_titled_with_its_configuration_and_test_accuracy(tmp_path, monkeypatch):
    titles = {}
    real = plots.sweep_run_curve

    def spy(rows, name, decay, path, *, title=None):
        titles[name] = title
        return real(rows, name, decay, path, title=title)

    monkeypatch.setattr(plots, "sweep_run_curve", spy)
    runs = [_status(1, "relu-lr0.04", "run", {"activation": "relu", "lr": 0.04}),
            _status(2, "final", "final", {"activation": "relu", "lr": 0.04}, {"test_accuracy": 0.9748})]
    job = JobStatus(job_id="0123456789ab", kind="sweep", state="succeeded", error=None,
                    params=plan_sweep({"epochs": 2}).params, result={"test_accuracy": 0.9748},
                    cancel_requested=False, created_at=None, started_at=None, finished_at=None,
                    best_val_accuracy=None, eta_seconds=None, runs=runs)
    rows = [EpochRow(run_id=1, run="relu-lr0.04", epoch=e, lr=0.04, train_loss=0.1, train_accuracy=0.9,
                     val_loss=0.1, val_accuracy=0.9, seconds=1.0) for e in (1, 2)]
    rows += [EpochRow(run_id=2, run="final", epoch=e, lr=0.04, train_loss=0.1, train_accuracy=0.9,
                      val_loss=None, val_accuracy=None, seconds=1.0) for e in (1, 2)]
    paths = SWEEP.figures(job, rows, tmp_path)
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in paths)
    assert titles["relu-lr0.04"] is None  # the default: the run's name and its final epoch's validation accuracy
    assert re.fullmatch(r"final retrain of relu, initial LR 0\.04 on all 60,000 training images\n"
                        r"test accuracy 97\.48% \(mnist_testdata\.hdf5, after the last epoch\)", titles["final"])


def test_the_sweep_report_says_what_trained_validated_and_tested():
    job = JobStatus(job_id="0123456789ab", kind="sweep", state="queued", error=None,
                    params=plan_sweep({"epochs": 2, "train_size": 5000}).params, result=None,
                    cancel_requested=False, created_at=None, started_at=None, finished_at=None,
                    best_val_accuracy=None, eta_seconds=None, runs=[])
    text = SWEEP.report(job, [])
    assert ("each configuration trained on images 1–5,000 of mnist_traindata.hdf5 and was validated on its last "
            "10,000 (images 50,001–60,000); the chosen configuration was retrained on all 60,000 images of "
            "mnist_traindata.hdf5 and tested once on the 10,000 of mnist_testdata.hdf5") in text


def test_no_unbiased_estimate_is_claimed_when_the_kept_epoch_is_the_final_one(tmp_path):
    r = _hm_result(tmp_path)
    best = r["best_run"]
    r["best_epoch"] = r["runs"][best]["best_epoch"] = 40
    md = reports.human_machine_section(r)
    assert "Here the kept epoch is the final one (40)" in md and "An estimate not used for choosing" not in md
