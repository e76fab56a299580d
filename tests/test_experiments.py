"""Short real Keras runs of Problems 2-4 through their run_*/summarize_* functions.

Small subsets and a few epochs keep the whole file to about a minute on two cores; the
full-size figures come from real jobs.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from shared import reports
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


def _links_exist(markdown: str, root: Path) -> list[str]:
    import re

    links = re.findall(r"\]\(([^)]+)\)", markdown)
    assert links
    return [link for link in links if not (root / link).is_file()]


@pytest.fixture(scope="module")
def fashion_small(real_datasets):
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(real_datasets)
    return x_train[:3000], y_train[:3000], x_test[:1000], y_test[:1000]


# ------------------------------------------------------------------------------- imports


def test_experiment_modules_do_not_import_tensorflow():
    code = ("import sys, worker.experiments.confusion, worker.experiments.regularization, "
            "worker.experiments.human_machine, shared.reports, shared.plots; "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


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


def test_confusion_run_reports_every_epoch(confusion_run):
    _, res, epochs = confusion_run
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert all(set(e) == EPOCH_KEYS for e in epochs)
    assert all(0 < e["lr"] <= 1e-3 and 0 < e["val_accuracy"] <= 1 and e["seconds"] > 0 for e in epochs)
    assert epochs[1]["lr"] < epochs[0]["lr"]  # cosine schedule
    assert res.result["epochs_run"] == 2 and not res.result["stopped_early"]


def test_confusion_artifacts_and_result(confusion_run):
    out, res, _ = confusion_run
    r = res.result
    json.dumps(r)  # serialisable
    for name in confusion.FILES.values():
        assert (out / name).is_file() and (out / name) in res.artifacts
    assert _is_png(out / "confusion.png") and _is_png(out / "learning_curves.png")
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
    assert _links_exist(md, out) == []


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
    summary = regularization.summarize_regularization(out)
    return out, runs, seen, summary


def test_regularization_runs(regularization_job):
    out, runs, seen, _ = regularization_job
    assert len(seen["plain"]) == 2 and len(seen["l2_dropout"]) == 2
    assert runs["l2_dropout"].result["stopped_early"] and runs["l2_dropout"].result["epochs_run"] == 2
    for name, res in runs.items():
        folder = out / "runs" / name
        for f in ("weights.npz", "history.json", "metrics.json", "learning_curves.png"):
            assert (folder / f).is_file()
        assert _is_png(folder / "learning_curves.png")
        with np.load(folder / "weights.npz") as npz:
            hidden = 128 if name == "plain" else 48
            assert npz["kernel_1"].shape == (784, hidden) and npz["kernel_2"].shape == (hidden, 10)
        assert 0.5 < res.result["test_accuracy"] <= 1.0


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
    assert len(r["description"]) == 3 and "std" in r["description"][0]
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
    summary = human_machine.summarize_human_machine(out, list(HM_RUNS) + ["sgd-none"], HM_PARAMS)
    return out, x, y, runs, seen, summary


def test_human_machine_runs(human_machine_job):
    out, _, _, runs, seen, _ = human_machine_job
    assert [len(seen[n]) for n in HM_RUNS] == [4, 4, 2]
    assert runs["momentum-dropout"].result["stopped_early"]
    for name, res in runs.items():
        r = res.result
        folder = out / "runs" / name
        assert (folder / "model.hdf5").read_bytes()[:8] == HDF5_MAGIC
        assert _is_png(folder / "learning_curve.png")
        best = max(seen[name], key=lambda e: (e["val_accuracy"], -e["val_loss"]))
        assert r["val_accuracy"] == pytest.approx(best["val_accuracy"], abs=1e-6)
        assert r["best_epoch"] == best["epoch"]
        assert r["n_val"] == 240 and r["n_train"] == 960


def test_human_machine_summary(human_machine_job):
    out, _, _, runs, _, summary = human_machine_job
    r = summary.result
    json.dumps(r)
    best = max(HM_RUNS, key=lambda n: (runs[n].result["val_accuracy"], -runs[n].result["val_loss"]))
    assert r["best_run"] == best and r["val_accuracy"] == runs[best].result["val_accuracy"]
    assert r["model_path"] == "model.hdf5"
    assert (out / "model.hdf5").read_bytes() == (out / "runs" / best / "model.hdf5").read_bytes()
    assert r["missing_runs"] == ["sgd-none"]
    assert r["val_accuracy"] > 0.5  # better than chance after a few epochs on the synthetic rows
    W = np.array(r["weight_matrix"])
    assert W.shape == (20, 20)
    with np.load(out / "runs" / best / "weights.npz") as npz:
        np.testing.assert_allclose(W, npz["kernel_1"], rtol=1e-6)
    assert len(r["insight"]["units"]) == 20 and r["insight"]["sentences"]
    for f in ("weights_input_hidden.png", "runs_comparison.png"):
        assert _is_png(out / f)
    assert len((out / "weights_input_hidden.md").read_text().splitlines()) >= 22
    assert len(list(csv.reader((out / "runs.csv").open()))) == 4
    md = reports.human_machine_section(r)
    assert best in md and "Insight" in md
    assert _links_exist(md, out) == []


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
