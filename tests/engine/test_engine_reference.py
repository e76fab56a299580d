"""The fast engine (buffers, transposed output layer, gemm with beta) against the plain reference step."""

import numpy as np
import pytest

from worker.engine import MLP, SGD, Backprop, train_step
from worker.engine import reference
from worker.engine.model import xent_metrics

pytestmark = pytest.mark.unit

SIZES, BATCH, LRS = (12, 9, 7, 5), 8, (0.1, 0.1, 0.05, 0.05, 0.025)


def fast_model(activation, seed=0):
    rng = np.random.default_rng(seed)
    model = MLP.initialize(SIZES, activation, "he", rng, dtype=np.float64)
    for b in model.biases:  # non-zero biases, so the bias path is checked from the first step
        b[:] = 0.1 * rng.standard_normal(b.shape)
    return model


def batches(seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((BATCH, SIZES[0])), rng.integers(0, SIZES[-1], BATCH)) for _ in LRS]


def train_both(activation, momentum, l2, dropout):
    """Run len(LRS) steps of both engines on the same batches (and the fast engine's dropout masks)."""
    fast = fast_model(activation)
    assert fast.dtype == np.float64
    ref = reference.MLP(fast.weights, fast.biases, activation)
    bp = Backprop(fast, BATCH, dropout)
    opt, ref_opt = SGD(bp, momentum, l2), reference.SGD(ref, momentum, l2)
    rng = np.random.default_rng(2)
    for (x, y), lr in zip(batches(), LRS):
        bp.load(x, y)
        train_step(bp, opt, lr, rng)
        # The fast engine's masks hold 0 or 1/p_keep per unit (plus the ones column); the reference
        # takes which units were kept and scales by itself.
        keep = [m[:, :-1] > 0 for m in bp.mask] if dropout else None
        ref_loss = reference.train_step(ref, ref_opt, x, y, lr, dropout, keep_masks=keep)
        fast_loss = xent_metrics(bp.logits, bp.sums, bp.y, axis=0)[0] / BATCH
        assert fast_loss == pytest.approx(ref_loss, rel=1e-12)
    return fast, opt, ref, ref_opt


def assert_same_parameters(fast, ref):
    for i, layer in enumerate(ref.layers):
        assert fast.weights[i].dtype == np.float64
        np.testing.assert_allclose(fast.weights[i], layer.w, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(fast.biases[i], layer.b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("momentum, l2", [(0.0, 0.0), (0.9, 0.0), (0.0, 0.01), (0.9, 0.01)])
def test_fast_engine_matches_reference_after_several_steps(activation, momentum, l2):
    fast, opt, ref, ref_opt = train_both(activation, momentum, l2, dropout=0.0)
    assert_same_parameters(fast, ref)
    if momentum:
        for v_fast, (v_ref, _) in zip(opt.velocity_w, ref_opt.velocity):
            np.testing.assert_allclose(v_fast, v_ref, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("momentum, l2", [(0.0, 0.0), (0.9, 0.01)])
def test_fast_engine_matches_reference_with_dropout_on_the_same_masks(activation, momentum, l2):
    fast, _, ref, _ = train_both(activation, momentum, l2, dropout=0.3)
    assert_same_parameters(fast, ref)


def test_steps_change_the_parameters():
    # Guards the comparisons above against both sides doing nothing.
    fast, _, ref, _ = train_both("relu", 0.9, 0.01, dropout=0.3)
    start = fast_model("relu")
    for w0, w in zip(start.weights, fast.weights):
        assert np.max(np.abs(w - w0)) > 1e-3


@pytest.mark.parametrize("dropout", [0.2, 0.3, 0.5, 1e-6])
def test_kept_units_are_scaled_by_the_exact_keep_probability_of_the_16_bit_draw(dropout):
    bp = Backprop(fast_model("tanh"), BATCH, dropout)
    bp.load(*batches()[0])
    bp.forward(np.random.default_rng(3))
    scales = np.unique(np.concatenate([m[:, :-1].ravel() for m in bp.mask]))
    kept = scales[scales > 0]
    assert len(kept) == 1 and kept[0] == pytest.approx(1 / reference.keep_probability(dropout), rel=1e-15)


def test_reference_draws_its_own_masks_at_the_keep_probability_keeping_the_expected_output():
    dropout, start = 0.3, fast_model("relu")
    ref = reference.MLP(start.weights, start.biases, "relu")
    x = np.random.default_rng(4).standard_normal((20_000, SIZES[0]))
    reference.train_step(ref, reference.SGD(ref), x, np.zeros(len(x), int), 0.0, dropout, np.random.default_rng(5))
    first, second = ref.layers[:2]
    assert first.keep.mean() == pytest.approx(reference.keep_probability(dropout), abs=0.005)
    # Inverted dropout: what the next layer sees (second.h) has the undropped mean.
    np.testing.assert_allclose(second.h.mean(axis=0), first.a.mean(axis=0), rtol=0.03)
