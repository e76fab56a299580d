"""The per-step kernels: ReLU and its bit-level derivative, the transposed softmax, gemm alpha."""

import numpy as np
import pytest

from worker.engine import TrainConfig, Trainer, evaluate
from worker.engine.activations import ACTIVATIONS, relu, relu_grad
from worker.engine.blas import HAVE_BLAS_AXPY, Gemm
from worker.engine.model import softmax_, xent_metrics

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_gives_plus_zero_and_its_grad_is_exactly_g_times_a_positive(dtype):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((40, 33)).astype(dtype)
    tiny = np.finfo(dtype).smallest_subnormal
    z[0, :7] = [0.0, -0.0, tiny, -tiny, np.inf, -np.inf, 1.0]
    a = relu(z, np.empty_like(z), np.zeros_like(z))
    assert not np.signbit(a).any()  # -0.0 and negatives become +0.0: the mask below relies on it
    assert a[0, 2] == tiny and a[0, 4] == np.inf and a[0, 6] == 1.0  # keeps_one: relu(1) == 1
    g = rng.standard_normal(z.shape).astype(dtype)
    g[1, :3] = [np.inf, -np.inf, -0.0]
    expected = np.where(a > 0, g, 0.0).astype(dtype)
    scratch = np.empty(z.shape, ACTIVATIONS["relu"].scratch_dtype(dtype))
    relu_grad(a, g, scratch)
    assert g.dtype == dtype and np.array_equal(g, expected)
    assert not np.signbit(g[a == 0]).any()  # relu'(0) = 0 exactly


@pytest.mark.parametrize("shape", [(7, 10), (100, 10), (3, 2)])
def test_softmax_over_either_axis_agrees(shape):
    rng = np.random.default_rng(1)
    z = (rng.standard_normal(shape) * 30).astype(np.float32)
    z[0, 0] = 500.0  # exp(500) would overflow without the shift
    y = rng.integers(0, shape[1], shape[0])
    rows_z, rows_p, rows_s = z.copy(), np.empty_like(z), np.empty((shape[0], 1), np.float32)
    softmax_(rows_z, rows_p, rows_s)
    cols_z, cols_p, cols_s = np.ascontiguousarray(z.T), np.empty(z.T.shape, np.float32), np.empty((1, shape[0]), np.float32)
    shifted = np.empty_like(cols_z)
    softmax_(cols_z, cols_p, cols_s, axis=0, shifted=shifted)
    assert np.isfinite(rows_p).all() and np.isfinite(cols_p).all()
    np.testing.assert_allclose(cols_p.T, rows_p, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(cols_p.sum(axis=0), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(cols_z, z.T)  # with `shifted`, the input is left alone
    loss_rows, pred_rows = xent_metrics(rows_z, rows_s, y)
    loss_cols, pred_cols = xent_metrics(shifted, cols_s, y, axis=0)
    assert loss_cols == pytest.approx(loss_rows, rel=1e-6)
    np.testing.assert_array_equal(pred_cols, pred_rows)
    p64 = np.exp(z.astype(np.float64) - z.max(axis=1, keepdims=True))
    p64 /= p64.sum(axis=1, keepdims=True)
    assert loss_rows == pytest.approx(-np.log(p64[np.arange(shape[0]), y]).sum(), rel=1e-5)


def test_gemm_set_alpha_applies_to_later_calls():
    rng = np.random.default_rng(2)
    a, b = rng.random((6, 4), dtype=np.float32), rng.random((4, 3), dtype=np.float32)
    for dtype in (np.float32, np.float64):
        c = np.zeros((6, 3), dtype)
        g = Gemm(a.astype(dtype), b.astype(dtype), c, alpha=1.0, beta=1.0)
        g()
        g.set_alpha(-0.25)
        g()
        np.testing.assert_allclose(c, 0.75 * (a @ b), rtol=1e-6)


def test_epoch_metrics_match_an_evaluation_of_the_same_rows():
    """Near-zero learning rate: the epoch's per-step bookkeeping (transposed logits, one-hot
    columns, shuffled labels) must give the loss and accuracy of a plain evaluation."""
    rng = np.random.default_rng(3)
    x = rng.random((600, 30), dtype=np.float32)
    y = rng.integers(0, 10, 600)
    cfg = TrainConfig(hidden=(16,), lr=1e-30, batch_size=60, epochs=1, decay_epochs=(), momentum=0.0, dropout=0.0, l2=0.0)
    t = Trainer(cfg, x, y)
    before = evaluate(t.model, x, y)
    report = t.run_epoch()
    assert report.train_loss == pytest.approx(before.loss, rel=1e-6)
    assert report.train_accuracy == before.accuracy


def test_axpy_adds_a_scaled_array_in_place():
    from worker.engine.blas import Axpy

    rng = np.random.default_rng(4)
    for dtype in (np.float32, np.float64):  # float64 takes numpy's path
        x = rng.standard_normal((5, 7)).astype(dtype)
        y0 = rng.standard_normal((5, 7)).astype(dtype)
        y = y0.copy()
        axpy = Axpy(x, y)
        assert axpy.blas == (dtype == np.float32 and HAVE_BLAS_AXPY)
        axpy(-0.5)
        axpy(0.25)
        np.testing.assert_allclose(y, y0 - 0.25 * x, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="axpy operands differ"):
        Axpy(np.zeros(3, np.float32), np.zeros(4, np.float32))


def test_dropout_masks_drop_at_rate_p_and_keep_the_expected_output():
    from worker.engine import MLP, Backprop

    model = MLP.initialize((20, 400, 300, 10), "relu", "he", 0)
    bp = Backprop(model, 500, dropout=0.2)
    rng = np.random.default_rng(5)
    masks = []
    for _ in range(4):
        for m in bp.mask:
            bp._draw_mask(m, rng)
            masks.append(m.ravel().copy())
    allm = np.concatenate(masks)
    keep = 1 - 13107 / 65536  # p = 0.2 as 13107/65536
    assert set(np.unique(allm)) == {0.0, np.float32(1 / keep)}
    n = allm.size
    assert abs(np.mean(allm == 0) - 0.2) < 4 * np.sqrt(0.2 * 0.8 / n)  # within 4 sigma
    assert abs(allm.mean() - 1.0) < 4 * np.sqrt(0.2 / 0.8 / n)
    # different draws each time, and from the trainer's generator only
    assert not np.array_equal(masks[0], masks[2])
    rng2 = np.random.default_rng(5)
    bp._draw_mask(bp.mask[0], rng2)
    np.testing.assert_array_equal(bp.mask[0].ravel(), masks[0])
