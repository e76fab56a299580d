"""Trainer.resume(threads=...): the resuming caller's BLAS thread count wins over the checkpoint's."""

import dataclasses
import json

import numpy as np
import pytest

import worker.engine.trainer as trainer_module
from test_engine_trainer import toy_config as trainer_config
from test_engine_trainer import toy_data, without_seconds  # noqa: F401  (the same toy problem)
from worker.engine import ConfigError, TrainConfig, Trainer

pytestmark = pytest.mark.unit


def toy_config(**kw):
    return trainer_config(**{"decay_epochs": (2,), **kw})


def checkpoint_after_two_epochs(path, data, threads):
    t = Trainer(toy_config(threads=threads), *data)
    gen = t.run()
    next(gen), next(gen)
    t.save_checkpoint(path)
    return path


def test_resume_with_threads_trains_with_the_callers_count_bit_identical_to_an_uninterrupted_run(tmp_path, monkeypatch):
    data = toy_data()
    straight = Trainer(toy_config(threads=1), *data)
    straight_reports = list(straight.run())

    ckpt = checkpoint_after_two_epochs(tmp_path / "state.npz", data, threads=2)
    limits = []
    real_blas_threads = trainer_module.blas_threads

    def recording_blas_threads(threads):
        limits.append(threads)
        return real_blas_threads(threads)

    monkeypatch.setattr(trainer_module, "blas_threads", recording_blas_threads)
    resumed = Trainer.resume(ckpt, *data, threads=1)
    assert resumed.config.threads == 1
    assert resumed.config == toy_config(threads=1)
    assert [r.epoch for r in resumed.run()] == [3]
    assert limits == [1]  # the resumed epoch ran under a 1-thread BLAS limit, not the checkpoint's 2
    # At these sizes OpenBLAS runs each product on one thread whatever the limit, so the two
    # epochs trained under threads=2 match the uninterrupted threads=1 run bit for bit too.
    assert without_seconds(resumed.history) == without_seconds(straight_reports)
    for p, q in zip(resumed.model.params, straight.model.params):
        assert np.array_equal(p, q)
    for v1, v2 in zip(resumed._opt.velocity, straight._opt.velocity):
        assert np.array_equal(v1, v2)
    assert resumed._rng.bit_generator.state == straight._rng.bit_generator.state


def test_resume_without_threads_keeps_the_checkpoints_count_and_none_leaves_blas_alone(tmp_path):
    data = toy_data()
    ckpt = checkpoint_after_two_epochs(tmp_path / "state.npz", data, threads=2)
    assert Trainer.resume(ckpt, *data).config.threads == 2
    assert Trainer.resume(ckpt, *data, threads=None).config.threads is None


def test_resume_rejects_an_invalid_thread_count(tmp_path):
    data = toy_data()
    ckpt = checkpoint_after_two_epochs(tmp_path / "state.npz", data, threads=2)
    with pytest.raises(ConfigError, match="threads must be an integer >= 1"):
        Trainer.resume(ckpt, *data, threads=0)


def test_resume_still_loads_an_old_checkpoint_with_the_unread_lr_field(tmp_path):
    data = toy_data()
    ckpt = checkpoint_after_two_epochs(tmp_path / "state.npz", data, threads=1)
    with np.load(ckpt, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["meta"]))
    assert "lr" not in meta  # no longer written
    old = tmp_path / "old.npz"
    np.savez(old, **{**arrays, "meta": np.array(json.dumps({**meta, "lr": 0.025}))})

    from_old, from_new = Trainer.resume(old, *data), Trainer.resume(ckpt, *data)
    assert from_old.epoch == 2 and from_old.config == from_new.config
    assert without_seconds(list(from_old.run())) == without_seconds(list(from_new.run()))
    for p, q in zip(from_old.model.params, from_new.model.params):
        assert np.array_equal(p, q)
