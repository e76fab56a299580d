"""Problems 2-4 through their run_*/summarize_* functions.

Integration tests: short real Keras runs (small subsets, a few epochs: about half a minute on two
cores; the full-size figures come from real jobs). Unit tests: imports, parameters, and the
summaries on hand-made weights with results and epoch rows given as the store holds them.
The summaries get each run's result and epoch rows as arguments, never from files (the database
is the source of truth); weights and models are the only files they read back.
"""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from shared import analysis, reports
from shared.artifacts import run_dir
from shared.datasets import FASHION_CLASSES, load_fashion_mnist, synthetic_human_machine
from worker.experiments import confusion, human_machine, keras_common, regularization

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
EPOCH_KEYS = {"epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds"}


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC


def _stop_after(n: int):
    """A should_stop that says yes from the n-th call on (it is polled once per epoch)."""
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] >= n

    return should_stop


def _stored(res) -> dict:
    """A run's result as the store hands it back: through JSON."""
    return json.loads(json.dumps(res.result))


def _json_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.json") if p.name in ("metrics.json", "history.json"))


def _links_exist(markdown: str, root: Path) -> list[str]:
    import re

    links = re.findall(r"\]\(([^)]+)\)", markdown)
    assert links
    return [link for link in links if not (root / link).is_file()]


unit = pytest.mark.unit
integration = pytest.mark.integration  # trains a real Keras model (through a fixture)


@pytest.fixture(scope="module")
def fashion_small(real_datasets):
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(real_datasets)
    return x_train[:3000], y_train[:3000], x_test[:1000], y_test[:1000]


# ------------------------------------------------------------------------------- imports


@unit
def test_experiment_modules_do_not_import_tensorflow():
    code = ("import sys, worker.experiments.confusion, worker.experiments.regularization, "
            "worker.experiments.human_machine, shared.reports, shared.plots; "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@unit
def test_params_and_run_names():
    with pytest.raises(ValueError, match="unknown parameter"):
        keras_common.merge_params(confusion.DEFAULT_PARAMS, {"epoch": 3})
    merged = keras_common.merge_params(human_machine.DEFAULT_PARAMS, {"learning_rates": {"adam": 0.01}})
    assert merged["learning_rates"]["adam"] == 0.01 and merged["learning_rates"]["sgd"] == 0.05
    names = human_machine.run_names()
    assert len(names) == 12 and len(set(names)) == 12 and "adam-l2" in names and "momentum-dropout" in names
    assert human_machine.parse_run_name("rmsprop-none") == ("rmsprop", "none")
    with pytest.raises(ValueError):
        human_machine.parse_run_name("adam-l1")


# ------------------------------------------------------------------------------- Problem 2


@pytest.fixture(scope="module")
def confusion_run(fashion_small, tmp_path_factory):
    out = tmp_path_factory.mktemp("confusion")
    epochs = []
    res = confusion.run_confusion(*fashion_small, {"epochs": 2}, out, on_epoch=epochs.append, threads=1)
    return out, res, epochs


@integration
def test_confusion_run_reports_every_epoch(confusion_run):
    _, res, epochs = confusion_run
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert all(set(e) == EPOCH_KEYS for e in epochs)
    assert all(0 < e["lr"] <= 1e-3 and 0 < e["val_accuracy"] <= 1 and e["seconds"] > 0 for e in epochs)
    assert epochs[1]["lr"] < epochs[0]["lr"]  # cosine schedule
    assert res.result["epochs_run"] == 2 and not res.result["stopped_early"]


@integration
def test_confusion_artifacts_and_result(confusion_run):
    out, res, _ = confusion_run
    r = res.result
    json.dumps(r)  # serialisable
    for key, name in confusion.FILES.items():  # the learning curves are drawn from the rows by the job kind
        assert ((out / name).is_file() and (out / name) in res.artifacts) == (key != "learning_curves"), key
    assert _is_png(out / "confusion.png")
    rows = list(csv.reader((out / "confusion.csv").open()))
    assert rows[0] == ["true\\predicted", *FASHION_CLASSES] and len(rows) == 11
    C = np.array([[float(v) for v in row[1:]] for row in rows[1:]])
    np.testing.assert_allclose(C.sum(axis=1), 1.0, atol=1e-5)
    saved = json.loads((out / "confusion.json").read_text())
    assert saved["test_accuracy"] == pytest.approx(r["test_accuracy"])
    assert np.trace(np.array(saved["counts"])) / 1000 == pytest.approx(r["test_accuracy"])
    assert r["test_accuracy"] > 0.6
    assert len(r["most_confused_for"]) == 10
    for row in r["most_confused_for"]:
        assert row["confused_with"] != row["class"]
    pair = r["most_confused_pair"]
    assert len(pair["classes"]) == 2 and pair["rate"] == pytest.approx(pair["rate_ab"] + pair["rate_ba"])
    assert "T-shirt/top" in (out / "confusion.txt").read_text()
    md = reports.confusion_section(r)
    assert "Test accuracy" in md and pair["classes"][0] in md
    assert _links_exist(md, out) == ["learning_curves.png"]  # drawn from the epoch rows by the job kind


@integration
def test_confusion_should_stop_stops_early(fashion_small, tmp_path):
    seen = []
    res = confusion.run_confusion(*fashion_small, {"epochs": 10}, tmp_path, on_epoch=seen.append,
                                  should_stop=_stop_after(1), threads=1)
    assert len(seen) == 1 and res.result["epochs_run"] == 1 and res.result["stopped_early"]
    assert "stopped before" in reports.confusion_section(res.result)


# ------------------------------------------------------------------------------- Problem 3


@pytest.fixture(scope="module")
def regularization_job(fashion_small, tmp_path_factory):
    out = tmp_path_factory.mktemp("regularization")
    seen = {name: [] for name in regularization.RUN_NAMES}
    runs = {
        "plain": regularization.run_regularization("plain", *fashion_small, {"epochs": 2}, out,
                                                   on_epoch=seen["plain"].append, threads=1),
        "l2_dropout": regularization.run_regularization("l2_dropout", *fashion_small, {"epochs": 6}, out,
                                                        on_epoch=seen["l2_dropout"].append,
                                                        should_stop=_stop_after(2), threads=1),
    }
    summary = regularization.summarize_regularization(out, {n: _stored(runs[n]) for n in regularization.RUN_NAMES},
                                                      seen)
    return out, runs, seen, summary


@integration
def test_regularization_runs(regularization_job):
    out, runs, seen, _ = regularization_job
    assert len(seen["plain"]) == 2 and len(seen["l2_dropout"]) == 2
    assert runs["l2_dropout"].result["stopped_early"] and runs["l2_dropout"].result["epochs_run"] == 2
    for name, res in runs.items():
        folder = out / "runs" / name
        for f in ("weights.npz", "weights_init.npz", "history.json", "metrics.json"):
            assert (folder / f).is_file()
        assert res.result["files"]["learning_curves"] == f"runs/{name}/learning_curves.png"  # drawn from the rows
        hidden = 128 if name == "plain" else 48
        with np.load(folder / "weights.npz") as npz:
            assert npz["kernel_1"].shape == (784, hidden) and npz["kernel_2"].shape == (hidden, 10)
        init = res.result["init"]
        assert init["fans"] == {"input_hidden": [784, hidden], "hidden_output": [hidden, 10]}
        with np.load(folder / "weights_init.npz") as npz:  # Glorot uniform: limit √(6 / (fan_in + fan_out))
            limit = np.sqrt(6 / (hidden + 10))
            assert np.abs(npz["kernel_2"]).max() <= limit
            assert init["stats"]["hidden_output"]["std"] == pytest.approx(limit / np.sqrt(3), rel=0.1)
            assert init["stats"]["input_hidden"] == analysis.weight_stats(npz["kernel_1"])
        assert 0.5 < res.result["test_accuracy"] <= 1.0


@integration
def test_regularization_summary(regularization_job):
    out, runs, _, summary = regularization_job
    r = summary.result
    json.dumps(r)
    assert set(r["test_accuracy"]) == {"plain", "l2_dropout"}
    assert r["test_accuracy"]["plain"] == pytest.approx(runs["plain"].result["test_accuracy"])
    pngs = [p for p in summary.artifacts if p.suffix == ".png"]
    assert len(pngs) == 7 and all(_is_png(p) for p in pngs)  # 4 histograms, 2 overlays, curves
    for model in ("plain", "l2_dropout"):
        for junction in ("input_hidden", "hidden_output"):
            assert _is_png(out / f"weights_{model}_{junction}.png")
            s = r["weight_stats"][model][junction]
            assert s["std"] > 0 and 0 <= s["frac_small"] <= 1
    rows = list(csv.reader((out / "weight_stats.csv").open()))
    assert len(rows) == 5 and rows[0][:3] == ["junction", "model", "n"]
    assert len(r["description"]) == 5 and "std" in r["description"][0]  # 2 junctions, 2 baselines, overall
    assert "at initialization (same seed)" in r["description"][2]
    spread = r["spread"]["junctions"]["hidden_output"]
    assert spread["init_ratio"] == pytest.approx(np.sqrt(138 / 58), rel=0.1)  # Glorot: √((128+10) / (48+10))
    assert spread["trained_ratio"] == pytest.approx(spread["init_ratio"] * spread["training_ratio"])
    assert r["models"] == {n: _stored(runs[n]) for n in ("plain", "l2_dropout")}
    md = reports.regularization_section(r)
    assert "input→hidden" in md and "excess kurtosis" in md
    assert _links_exist(md, out) == []


# ------------------------------------------------------------------------------- Problem 4

HM_RUNS = ("adam-none", "rmsprop-l2", "momentum-dropout")
HM_PARAMS = {"epochs": 4, "optimizers": ["adam", "rmsprop", "momentum"],
             "learning_rates": {"adam": 0.01, "rmsprop": 0.01, "momentum": 0.05}}


@pytest.fixture(scope="module")
def human_machine_job(tmp_path_factory):
    out = tmp_path_factory.mktemp("human_machine")
    x, y = synthetic_human_machine(n_per_class=600, seed=1)
    seen = {n: [] for n in HM_RUNS}
    runs = {}
    for name in HM_RUNS:
        stop = _stop_after(2) if name == "momentum-dropout" else None
        runs[name] = human_machine.run_human_machine(name, x, y, HM_PARAMS, out, on_epoch=seen[name].append,
                                                     should_stop=stop, threads=1)
    summary = human_machine.summarize_human_machine(out, {n: _stored(runs[n]) for n in HM_RUNS}, seen, HM_PARAMS)
    return out, x, y, runs, seen, summary


@integration
def test_human_machine_runs(human_machine_job):
    out, _, _, runs, seen, _ = human_machine_job
    assert [len(seen[n]) for n in HM_RUNS] == [4, 4, 2]
    assert runs["momentum-dropout"].result["stopped_early"]
    for name, res in runs.items():
        r = res.result
        folder = out / "runs" / name
        assert (folder / "model.hdf5").read_bytes()[:8] == HDF5_MAGIC
        assert r["files"]["learning_curve"] == f"runs/{name}/learning_curve.png"  # drawn from the rows
        best = max(seen[name], key=lambda e: (e["val_accuracy"], -e["val_loss"]))
        assert r["val_accuracy"] == pytest.approx(best["val_accuracy"], abs=1e-6)
        assert r["best_epoch"] == best["epoch"]
        assert r["n_val"] == 240 and r["n_train"] == 960


@integration
def test_human_machine_summary(human_machine_job):
    out, _, _, runs, _, summary = human_machine_job
    r = summary.result
    json.dumps(r)
    best = max(HM_RUNS, key=lambda n: (runs[n].result["val_accuracy"], -runs[n].result["val_loss"]))
    assert r["best_run"] == best and r["val_accuracy"] == runs[best].result["val_accuracy"]
    assert r["model_path"] == "model.hdf5"
    assert (out / "model.hdf5").read_bytes() == (out / "runs" / best / "model.hdf5").read_bytes()
    assert r["missing_runs"] == [n for n in human_machine.run_names(HM_PARAMS) if n not in HM_RUNS]
    assert r["runs"] == {n: _stored(runs[n]) for n in HM_RUNS}
    assert r["val_accuracy"] > 0.5  # better than chance after a few epochs on the synthetic rows
    W = np.array(r["weight_matrix"])
    assert W.shape == (20, 20)
    with np.load(out / "runs" / best / "weights.npz") as npz:
        np.testing.assert_allclose(W, npz["kernel_1"], rtol=1e-6)
    assert len(r["insight"]["units"]) == 20 and r["insight"]["sentences"]
    numbers = {k: v for k, v in r["insight"].items() if k != "sentences"}
    assert r["insight"]["sentences"] == reports.weight_insight_sentences(numbers)
    for f in ("weights_input_hidden.png", "runs_comparison.png"):
        assert _is_png(out / f)
    assert len((out / "weights_input_hidden.md").read_text().splitlines()) >= 22
    assert len(list(csv.reader((out / "runs.csv").open()))) == 4
    md = reports.human_machine_section(r)
    assert best in md and "Insight" in md
    assert sorted(_links_exist(md, out)) == sorted(f"runs/{n}/learning_curve.png" for n in runs)  # the kind draws them


@integration
def test_saved_model_loads_in_a_fresh_process(human_machine_job, tmp_path):
    out, x, y, _, _, summary = human_machine_job
    (_, _), (x_val, y_val) = human_machine.split_data(x, y, HM_PARAMS)
    np.savez(tmp_path / "val.npz", x=x_val, y=y_val)
    script = textwrap.dedent("""
        import json, os, sys
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
        import numpy as np
        import tensorflow as tf
        model = tf.keras.models.load_model(sys.argv[1])
        data = np.load(sys.argv[2])
        prob = model.predict(data["x"], verbose=0).ravel()
        acc = float(np.mean((prob > 0.5).astype(np.int64) == data["y"]))
        print(json.dumps({"acc": acc, "layers": [type(l).__name__ for l in model.layers]}))
    """)
    proc = subprocess.run([sys.executable, "-c", script, str(out / "model.hdf5"), str(tmp_path / "val.npz")],
                          capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded["acc"] == summary.result["val_accuracy"]
    assert loaded["layers"][0] == "Dense" and loaded["layers"][-1] == "Dense"


# ------------------------------------------------------------------------------- summaries from stored data


@integration
def test_summaries_need_no_json_files_on_disk(regularization_job, human_machine_job, tmp_path):
    """With every metrics.json/history.json deleted, the summaries give the same results."""
    src, runs, seen, summary = regularization_job
    out = shutil.copytree(src, tmp_path / "regularization")
    for path in _json_files(out / "runs"):
        path.unlink()
    assert not _json_files(out) and (out / "runs" / "plain" / "weights.npz").is_file()
    again = regularization.summarize_regularization(out, {n: _stored(runs[n]) for n in regularization.RUN_NAMES},
                                                    seen)
    assert again.result == summary.result

    src, _, _, runs, seen, summary = human_machine_job
    out = shutil.copytree(src, tmp_path / "human_machine")
    for path in _json_files(out / "runs"):
        path.unlink()
    assert not _json_files(out)
    again = human_machine.summarize_human_machine(out, {n: _stored(runs[n]) for n in HM_RUNS}, seen, HM_PARAMS)
    assert again.result == summary.result


def _rows(n_epochs: int, acc: float) -> list[dict]:
    return [{"epoch": e, "lr": 1e-3, "train_loss": 1 / e, "train_accuracy": acc + e / 100, "val_loss": 1.1 / e,
             "val_accuracy": acc + e / 200, "seconds": 0.1} for e in range(1, n_epochs + 1)]


def _save_weights(folder: Path, shapes: tuple[tuple[int, int], tuple[int, int]], std: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (a, b), (c, d) = shapes
    np.savez(folder / "weights.npz", kernel_1=rng.normal(0, std, (a, b)), bias_1=np.zeros(b),
             kernel_2=rng.normal(0, std, (c, d)), bias_2=np.zeros(d))


@unit
def test_regularization_summary_from_stored_results(tmp_path):
    results, histories = {}, {}
    for name, hidden, l2, dropout, std, acc in (("plain", 16, 0.0, 0.0, 0.1, 0.80),
                                               ("l2_dropout", 8, 1e-4, 0.2, 0.03, 0.82)):
        _save_weights(run_dir(tmp_path, name), ((784, hidden), (hidden, 10)), std, seed=hidden)
        histories[name] = _rows(3, acc)
        results[name] = {"model": name, "test_accuracy": acc, "test_loss": 0.5, "hidden_units": hidden, "l2": l2,
                         "dropout": dropout, "epochs_run": 3, "stopped_early": name == "l2_dropout",
                         "final": {k: histories[name][-1][k] for k in ("epoch", "train_loss", "train_accuracy",
                                                                       "val_loss", "val_accuracy")},
                         "seconds": 1.0}
    assert not _json_files(tmp_path)
    r = regularization.summarize_regularization(tmp_path, results, histories).result
    assert r["test_accuracy"] == {"plain": 0.80, "l2_dropout": 0.82} and r["stopped_early"]
    assert r["models"] == results
    assert r["weight_stats"]["l2_dropout"]["input_hidden"]["std"] == pytest.approx(0.03, rel=0.05)
    labelled = {n: {r["junctions"][j]: s for j, s in r["weight_stats"][n].items()} for n in results}
    assert r["description"] == reports.describe_weight_differences(labelled, subject="l2_dropout",
                                                                   reference="plain", labels=r["labels"])
    assert "narrower" in r["description"][0]
    assert r["spread"] is None and r["init_stats"] == {}  # results stored without initial statistics
    assert "no effect is claimed" in r["description"][-1]
    assert _is_png(tmp_path / "learning_curves.png")  # drawn from the given epoch rows
    assert _links_exist(reports.regularization_section(r), tmp_path) == []
    assert not _json_files(tmp_path)
    with pytest.raises(ValueError, match="two runs"):
        regularization.summarize_regularization(tmp_path, {"plain": results["plain"]}, histories)
    with pytest.raises(ValueError, match="epoch rows"):
        regularization.summarize_regularization(tmp_path, results, {"plain": histories["plain"]})


@unit
def test_human_machine_summary_from_stored_results(tmp_path):
    params = {"optimizers": ["adam", "sgd"], "regularizations": ["none", "l2"]}
    accuracy = {"sgd-l2": 0.64, "adam-l2": 0.64, "adam-none": 0.58}  # a tie: grid order decides
    results, histories = {}, {}
    for i, (name, acc) in enumerate(accuracy.items()):  # not in grid order
        folder = run_dir(tmp_path, name)
        _save_weights(folder, ((20, 20), (20, 1)), 0.3, seed=i)
        (folder / "model.hdf5").write_bytes(b"model of " + name.encode())
        optimizer, reg = human_machine.parse_run_name(name)
        histories[name] = _rows(4, acc - 0.05)
        results[name] = {"run": name, "optimizer": optimizer, "regularization": reg, "learning_rate": 0.01,
                         "val_accuracy": acc, "val_loss": 0.66, "train_accuracy": acc + 0.01, "best_epoch": 3,
                         "epochs_run": 4, "stopped_early": False, "seconds": 1.0, "n_train": 960, "n_val": 240}
    assert not _json_files(tmp_path)
    r = human_machine.summarize_human_machine(tmp_path, results, histories, params).result
    assert r["ranking"] == ["adam-l2", "sgd-l2", "adam-none"] and r["best_run"] == "adam-l2"
    assert r["val_accuracy"] == 0.64 and r["best_epoch"] == 3
    assert "goal" not in r and "goal_met" not in r  # the homework sets no target: none is shown
    assert r["missing_runs"] == ["sgd-none"] and r["runs"] == results
    assert (tmp_path / "model.hdf5").read_bytes() == b"model of adam-l2"
    with np.load(run_dir(tmp_path, "adam-l2") / "weights.npz") as npz:
        numbers = analysis.weight_insight(npz["kernel_1"], w_out=npz["kernel_2"])
    assert r["insight"] == json.loads(json.dumps({**numbers, "sentences": reports.weight_insight_sentences(numbers)}))
    assert json.loads((tmp_path / "insight.json").read_text()) == r["insight"]
    missing = _links_exist(reports.human_machine_section(r), tmp_path)
    assert sorted(missing) == sorted(f"runs/{n}/learning_curve.png" for n in results)  # each run draws its own
    assert not _json_files(tmp_path)
    with pytest.raises(ValueError, match="no finished run"):
        human_machine.summarize_human_machine(tmp_path, {}, {}, params)


# ------------------------------------------------------------------------------- resuming from a checkpoint


@integration
def test_an_interrupted_fashion_run_resumes_from_its_checkpoint(fashion_small, tmp_path):
    """Stopped after epoch 2 of 4 (as an interrupt leaves it), then run again with the stored rows: epochs 3 and 4
    only, with the optimizer where it was (the cosine schedule's learning rate continues, not restarts)."""
    whole, first, second = [], [], []
    confusion.run_confusion(*fashion_small, {"epochs": 4}, tmp_path / "whole", on_epoch=whole.append)
    ckpt = tmp_path / "cut" / "runs" / "confusion" / keras_common.CHECKPOINT_FILE
    ckpt.parent.mkdir(parents=True)
    stopped = confusion.run_confusion(*fashion_small, {"epochs": 4}, tmp_path / "cut", on_epoch=first.append,
                                      should_stop=_stop_after(2), checkpoint=ckpt)
    assert stopped.result["stopped_early"] and [e["epoch"] for e in first] == [1, 2] and ckpt.is_file()
    resumed = confusion.run_confusion(*fashion_small, {"epochs": 4}, tmp_path / "cut", on_epoch=second.append,
                                      checkpoint=ckpt, earlier=first)
    assert [e["epoch"] for e in second] == [3, 4] and not resumed.result["stopped_early"]
    assert resumed.result["epochs_run"] == 4
    assert [e["lr"] for e in second] == pytest.approx([e["lr"] for e in whole[2:]], rel=1e-6)
    assert json.loads((tmp_path / "cut" / "history.json").read_text())[:2] == json.loads(json.dumps(first))
    with pytest.raises(ValueError, match="the checkpoint is after epoch 4, the earlier rows are epochs \\[1, 2\\]"):
        confusion.run_confusion(*fashion_small, {"epochs": 4}, tmp_path / "cut", checkpoint=ckpt, earlier=first)


@integration
def test_a_resumed_human_machine_run_keeps_the_best_epoch_it_had(tmp_path):
    x, y = synthetic_human_machine(n_per_class=300, seed=2)
    params = {"epochs": 3, "learning_rates": {"adam": 0.01}}
    first, second = [], []
    ckpt = tmp_path / "runs" / "adam-none" / keras_common.CHECKPOINT_FILE
    ckpt.parent.mkdir(parents=True)
    human_machine.run_human_machine("adam-none", x, y, params, tmp_path, on_epoch=first.append,
                                    should_stop=_stop_after(2), checkpoint=ckpt)
    saved = keras_common.load_checkpoint(ckpt)
    best_before = int(saved["extra_best_epoch"])
    assert best_before in (1, 2) and float(saved["extra_best"]) == max(e["val_accuracy"] for e in first)
    done = human_machine.run_human_machine("adam-none", x, y, params, tmp_path, on_epoch=second.append,
                                           checkpoint=ckpt, earlier=first)
    rows = first + second
    assert [e["epoch"] for e in rows] == [1, 2, 3]
    best = max(rows, key=lambda e: (e["val_accuracy"], -e["val_loss"]))
    assert done.result["best_epoch"] == best["epoch"]  # chosen over all three epochs, across the interruption
    assert done.result["epochs_run"] == 3
