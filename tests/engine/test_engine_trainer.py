"""Trainer behaviour: schedule, determinism, resume, evaluation, dropout, and a short real run."""

import dataclasses

import numpy as np
import pytest

from shared.datasets import mnist_full_train
from worker.engine import MLP, EpochReport, Evaluation, TrainConfig, Trainer, evaluate

pytestmark = pytest.mark.unit


def toy_data(n=500, n_val=100, width=20, seed=0):
    """Linearly separable-ish 10-class data: class means plus noise."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((10, width)).astype(np.float32)
    y = rng.integers(0, 10, n + n_val)
    x = means[y] + 0.5 * rng.standard_normal((n + n_val, width)).astype(np.float32)
    return x[:n], y[:n], x[n:], y[n:]


def toy_config(**kw):
    base = dict(hidden=(32, 16), lr=0.05, batch_size=50, epochs=3, decay_epochs=(), momentum=0.9, dropout=0.3, l2=1e-3)
    return TrainConfig(**{**base, **kw})


def without_seconds(reports):
    return [dataclasses.replace(r, seconds=0.0) for r in reports]


def assert_same_model(a: MLP, b: MLP):
    for p, q in zip(a.weights + a.biases, b.weights + b.biases):
        assert p.dtype == q.dtype == np.float32
        assert np.array_equal(p, q)


def test_run_yields_one_report_per_epoch_and_updates_once_per_minibatch():
    x, y, xv, yv = toy_data()
    t = Trainer(toy_config(epochs=2), x, y, xv, yv)
    gen = t.run()
    first = next(gen)
    assert isinstance(first, EpochReport) and first.epoch == 1 and t.epoch == 1
    assert t.steps == 500 // 50
    rest = list(gen)
    assert [r.epoch for r in rest] == [2] and t.steps == 20
    assert set(first.to_dict()) == {"epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds"}
    assert 0 <= first.val_accuracy <= 1 and first.val_loss > 0 and first.seconds > 0
    assert list(t.run()) == []  # nothing left to do


def test_stopping_between_epochs_is_just_not_continuing():
    x, y, *_ = toy_data()
    t = Trainer(toy_config(epochs=5), x, y)
    for report in t.run():
        if report.epoch == 2:
            break
    assert t.epoch == 2 and len(t.history) == 2
    assert t.history[-1].val_accuracy is None and t.history[-1].val_loss is None


def test_lr_schedule_halves_exactly_at_boundaries():
    x, y, *_ = toy_data()
    t = Trainer(toy_config(lr=0.08, epochs=5, decay_epochs=(2, 4)), x, y)
    assert [r.lr for r in t.run()] == [0.08, 0.08, 0.04, 0.04, 0.02]


def test_same_seed_same_threads_identical_and_other_seed_differs():
    x, y, xv, yv = toy_data()
    runs = []
    for seed in (7, 7, 8):
        t = Trainer(toy_config(seed=seed, threads=1), x, y, xv, yv)
        runs.append((without_seconds(t.run()), t.model))
    assert runs[0][0] == runs[1][0]
    assert_same_model(runs[0][1], runs[1][1])
    assert runs[0][0] != runs[2][0]


def test_resume_is_bit_identical(tmp_path):
    x, y, xv, yv = toy_data()
    cfg = toy_config(epochs=3, activation="tanh", threads=1)
    straight = Trainer(cfg, x, y, xv, yv)
    straight_reports = list(straight.run())

    first = Trainer(cfg, x, y, xv, yv)
    gen = first.run()
    next(gen), next(gen)
    ckpt = tmp_path / "state.npz"
    first.save_checkpoint(ckpt)
    assert ckpt.exists() and not list(tmp_path.glob("*.tmp-*"))
    del first, gen

    resumed = Trainer.resume(ckpt, x, y, xv, yv)
    assert resumed.epoch == 2 and resumed.steps == 20 and resumed.config == cfg
    assert without_seconds(resumed.history) == without_seconds(straight_reports[:2])
    assert [r.epoch for r in resumed.run()] == [3]
    assert without_seconds(resumed.history) == without_seconds(straight_reports)
    assert_same_model(resumed.model, straight.model)
    for v1, v2 in zip(resumed._opt.velocity_w, straight._opt.velocity_w):
        assert np.array_equal(v1, v2)


def test_resume_refuses_other_data(tmp_path):
    x, y, *_ = toy_data()
    t = Trainer(toy_config(epochs=2), x, y)
    next(t.run())
    t.save_checkpoint(tmp_path / "c.npz")
    with pytest.raises(ValueError, match="different training set"):
        Trainer.resume(tmp_path / "c.npz", x, np.roll(y, 1))


def test_evaluate_does_not_touch_training_state():
    x, y, xv, yv = toy_data()
    a = Trainer(toy_config(epochs=2), x, y)
    b = Trainer(toy_config(epochs=2), x, y)
    next(a.run()), next(b.run())
    before = [p.copy() for p in a.model.weights + a.model.biases]
    rng_state = a._rng.bit_generator.state
    ev = evaluate(a.model, xv, yv, batch_size=30)  # uneven last chunk on purpose
    assert isinstance(ev, Evaluation) and ev.predictions.shape == (len(xv),)
    assert np.issubdtype(ev.predictions.dtype, np.integer)
    assert ev.accuracy == pytest.approx(np.mean(ev.predictions == yv))
    assert all(np.array_equal(p, q) for p, q in zip(before, a.model.weights + a.model.biases))
    assert a._rng.bit_generator.state == rng_state and a.epoch == 1
    assert without_seconds(a.run()) == without_seconds(b.run())  # training continues unchanged


def test_dropout_is_inverted_and_off_at_evaluation():
    x, y, xv, yv = toy_data()
    t = Trainer(toy_config(dropout=0.5, epochs=1), x, y)
    list(t.run())
    mask = t._bp.mask[0]
    assert set(np.unique(mask)) <= {0.0, 2.0}  # kept units scaled by 1/(1-p)
    assert 0.4 < np.mean(mask > 0) < 0.6
    e1, e2 = evaluate(t.model, xv, yv), evaluate(t.model, xv, yv)
    assert e1.loss == e2.loss and np.array_equal(e1.predictions, e2.predictions)
    np.testing.assert_array_equal(e1.predictions, t.model.predict(xv))
    logits = t.model.forward(xv.astype(np.float32))
    np.testing.assert_allclose(t.model.predict_proba(xv).sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(logits.argmax(axis=1), e1.predictions)


def test_model_npz_round_trip(tmp_path):
    model = MLP.initialize((784, 16, 10), "tanh", "glorot", 0)
    assert model.n_params == 784 * 16 + 16 + 16 * 10 + 10
    assert all(w.all() for w in model.weights) and not any(b.any() for b in model.biases)
    model.save_npz(tmp_path / "m.npz")
    loaded = MLP.load_npz(tmp_path / "m.npz")
    assert loaded.activation == "tanh" and loaded.sizes == (784, 16, 10)
    assert_same_model(model, loaded)
    with np.load(tmp_path / "m.npz") as f:
        assert sorted(f.files) == ["W0", "W1", "activation", "b0", "b1"]


def test_trainer_rejects_bad_data():
    x, y, *_ = toy_data()
    with pytest.raises(ValueError, match="integer class labels"):
        Trainer(toy_config(), x, np.eye(10)[y])
    with pytest.raises(ValueError, match=r"labels must be in 0..9"):
        Trainer(toy_config(), x, y + 1)
    with pytest.raises(ValueError, match="batch size 50 does not divide the 499 training images"):
        Trainer(toy_config(), x[:499], y[:499])


@pytest.mark.slow
def test_short_real_mnist_training(real_datasets):
    x, y = mnist_full_train(real_datasets)  # the service's loader; skipped when HW3_TEST_DATASETS lacks the file
    x, y = x[:10_000], y[:10_000]
    cfg = TrainConfig(epochs=2, decay_epochs=(), threads=1)  # defaults otherwise; 1 thread: robust on a busy machine
    t = Trainer(cfg, x[:8000], y[:8000], x[8000:], y[8000:])
    reports = list(t.run())
    assert reports[-1].val_accuracy > 0.9, reports
    assert reports[-1].train_loss < reports[0].train_loss


def test_every_layer_updated_exactly_once_per_minibatch(monkeypatch):
    x, y, *_ = toy_data()
    t = Trainer(toy_config(epochs=1), x, y)
    calls = []
    original = t._opt.update
    monkeypatch.setattr(t._opt, "update", lambda i, lr: (calls.append(i), original(i, lr)))
    before = [p.copy() for p in t.model.params]
    list(t.run())
    assert calls == [2, 1, 0] * (500 // 50)  # last layer first, one update per layer per minibatch
    assert all((p != q).all() for p, q in zip(t.model.params, before))  # every weight and bias moved


def test_threads_limit_blas_during_training_only():
    from threadpoolctl import threadpool_info

    def blas_threads_now():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    x, y, xv, yv = toy_data()
    t = Trainer(toy_config(epochs=1, threads=1), x, y, xv, yv)
    outside, seen = blas_threads_now(), []
    original = t._train_epoch
    t._train_epoch = lambda lr: (seen.append(blas_threads_now()), original(lr))[1]
    list(t.run())
    assert seen == [[1] * len(outside)]
    assert blas_threads_now() == outside


def test_float32_everywhere_in_training():
    x, y, *_ = toy_data()
    t = Trainer(toy_config(epochs=1), x.astype(np.float64), y)
    list(t.run())
    bp = t._bp
    arrays = [bp.x, bp.logits, bp.sums, *bp.a, *bp.h, *bp.delta, *bp.mask, *t.model.params, *t._opt.velocity]
    assert all(a.dtype == np.float32 for a in arrays)
    assert t.x_train.dtype == np.float32
