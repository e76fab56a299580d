"""Backprop against finite differences, against tf.GradientTape, and one SGD step by hand."""

import math

import numpy as np
import pytest

from worker.engine import MLP, SGD, Backprop, gradients, train_step
from worker.engine.model import xent_metrics

pytestmark = pytest.mark.unit


def tiny_model(activation, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    model = MLP.initialize((5, 4, 3, 3), activation, "glorot", rng, dtype=dtype)
    for b in model.biases:
        b[:] = rng.standard_normal(b.shape) * 0.1
    return model


def tiny_batch(seed=1, n=6):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 5)), rng.integers(0, 3, n)


def hidden_preactivations(model, x):
    zs, h = [], x
    for w, b in zip(model.weights[:-1], model.biases[:-1]):
        zs.append(h @ w + b)
        h = model.act.fn(zs[-1].copy(), out=None)
    return np.concatenate([z.ravel() for z in zs])


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("l2", [0.0, 0.1])
def test_gradients_match_central_differences(activation, l2):
    model, (x, y) = tiny_model(activation), tiny_batch()
    eps = 1e-6
    # ReLU kinks would break finite differences: insist every pre-activation is far from 0.
    assert np.min(np.abs(hidden_preactivations(model, x))) > 10 * eps
    loss, grad_w, grad_b = gradients(model, x, y, l2=l2)
    for params, grads in ((model.weights, grad_w), (model.biases, grad_b)):
        for p, g in zip(params, grads):
            numeric = np.empty_like(p)
            for idx in np.ndindex(p.shape):
                old = p[idx]
                p[idx] = old + eps
                plus = gradients(model, x, y, l2=l2)[0]
                p[idx] = old - eps
                minus = gradients(model, x, y, l2=l2)[0]
                p[idx] = old
                numeric[idx] = (plus - minus) / (2 * eps)
            np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-8)
    expected_loss = _reference_loss(model, x, y) + 0.5 * l2 * sum(np.sum(w**2) for w in model.weights)
    assert loss == pytest.approx(expected_loss, rel=1e-12)


def _reference_loss(model, x, y):
    z = x
    for i, (w, b) in enumerate(zip(model.weights, model.biases)):
        z = z @ w + b
        if i < len(model.weights) - 1:
            z = np.tanh(z) if model.activation == "tanh" else np.maximum(z, 0)
    logp = z - z.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(y)), y].mean()


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_gradients_match_tensorflow(activation):
    import tensorflow as tf  # installed in this project: an import failure must fail the test

    model, (x, y) = tiny_model(activation, seed=3), tiny_batch(seed=4, n=8)
    l2 = 0.01
    loss, grad_w, grad_b = gradients(model, x, y, l2=l2)

    tw = [tf.Variable(w) for w in model.weights]
    tb = [tf.Variable(b) for b in model.biases]
    act = tf.tanh if activation == "tanh" else tf.nn.relu
    with tf.GradientTape() as tape:
        h = tf.constant(x)
        for i, (w, b) in enumerate(zip(tw, tb)):
            h = tf.matmul(h, w) + b
            if i < len(tw) - 1:
                h = act(h)
        ce = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.constant(y), logits=h))
        tf_loss = ce + 0.5 * l2 * tf.add_n([tf.reduce_sum(w * w) for w in tw])
    tf_grads = tape.gradient(tf_loss, tw + tb)
    assert loss == pytest.approx(float(tf_loss), rel=1e-12)
    for ours, theirs in zip(grad_w + grad_b, tf_grads):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-9, atol=1e-12)

    # The float32 engine agrees with the float64 reference to float32 precision.
    m32 = MLP([w.astype(np.float32) for w in model.weights], [b.astype(np.float32) for b in model.biases], activation)
    _, g32_w, g32_b = gradients(m32, x.astype(np.float32), y, l2=l2)
    assert all(g.dtype == np.float32 for g in g32_w + g32_b)
    for ours, theirs in zip(g32_w + g32_b, tf_grads):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-4, atol=1e-6)


def test_one_step_by_hand():
    """784/10 are only defaults: a 2-2-2 ReLU net, batch of 2, plain SGD, lr 0.5."""
    w0 = np.array([[0.5, -1.0], [0.25, 0.5]], np.float32)
    b0 = np.array([0.0, 0.5], np.float32)
    w1 = np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
    b1 = np.array([0.0, 0.0], np.float32)
    model = MLP([w0.copy(), w1.copy()], [b0.copy(), b1.copy()], "relu")
    x = np.array([[1.0, 2.0], [2.0, 0.0]], np.float32)
    y = np.array([0, 1])
    lr = 0.5

    # Row 1: z = [1, 0.5] -> h = [1, 0.5] -> logits [1, 1] -> p = [1/2, 1/2]; dlogits = [-1/2, 1/2].
    # Row 2: z = [1, -1.5] -> h = [1, 0] (second unit off, relu' = 0) -> logits [1, 0]
    #        -> p = [s, 1-s], s = e/(e+1); dlogits = [s, -s].
    s = math.e / (math.e + 1)
    d1 = np.array([[-0.5, 0.5], [s, -s]]) / 2  # averaged over the batch of 2
    h = np.array([[1.0, 0.5], [1.0, 0.0]])
    g_w1, g_b1 = h.T @ d1, d1.sum(axis=0)
    dh = d1 @ w1.T.astype(np.float64)
    dz = dh * np.array([[1.0, 1.0], [1.0, 0.0]])
    g_w0, g_b0 = x.T.astype(np.float64) @ dz, dz.sum(axis=0)
    expected_loss_sum = math.log(2) + math.log(1 + math.e)  # -log(1/2) - log(1/(e+1))

    bp = Backprop(model, 2)
    opt = SGD(bp)
    bp.load(x, y)
    train_step(bp, opt, lr)
    loss_sum, predictions = xent_metrics(bp.logits, bp.sums, y, axis=0)  # from the step's forward pass
    assert loss_sum == pytest.approx(expected_loss_sum, rel=1e-6)
    assert list(predictions) == [0, 0]  # row 1 ties: argmax takes the first class
    for got, start, grad in [
        (model.weights[0], w0, g_w0),
        (model.biases[0], b0, g_b0),
        (model.weights[1], w1, g_w1),
        (model.biases[1], b1, g_b1),
    ]:
        np.testing.assert_allclose(got, start - lr * grad, rtol=1e-6, atol=1e-7)
    # Written out: dz = [[-1/4, 1/2], [s/2, 0]], so grad W0 = x.T @ dz = [[s - 1/4, 1/2], [-1/2, 1]].
    np.testing.assert_allclose(
        model.weights[0],
        [[0.5 - lr * (-0.25 + s), -1.0 - lr * 0.5], [0.25 - lr * (-0.5), 0.5 - lr * 1.0]],
        rtol=1e-6,
    )


@pytest.mark.parametrize("momentum, l2", [(0.9, 0.01), (0.9, 0.0), (0.0, 0.01)])
def test_momentum_and_l2_update_rule(momentum, l2):
    """Two real training steps vs. the documented rule applied to reference gradients.

    v = momentum*v - lr*(g + l2*W) (no L2 on biases); p += v; plain SGD: p -= lr*(g + l2*W).
    """
    model = tiny_model("tanh", seed=5, dtype=np.float32)
    ref = MLP([w.astype(np.float64) for w in model.weights], [b.astype(np.float64) for b in model.biases], "tanh")
    bp = Backprop(model, 6)
    opt = SGD(bp, momentum=momentum, l2=l2)
    velocity = [np.zeros_like(p) for p in ref.weights + ref.biases]
    for step, lr in enumerate([0.1, 0.05]):
        x, y = tiny_batch(seed=10 + step)
        _, grad_w, grad_b = gradients(ref, x, y, l2=0.0)
        params = ref.weights + ref.biases
        for k, (p, g) in enumerate(zip(params, grad_w + grad_b)):
            g = g + l2 * p if k < len(ref.weights) else g
            velocity[k] = momentum * velocity[k] - lr * g
            p += velocity[k]
        bp.load(x, y)
        train_step(bp, opt, lr)
    for got, want in zip(model.weights + model.biases, ref.weights + ref.biases):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    if momentum:
        np.testing.assert_allclose(opt.velocity_w[0], velocity[0], rtol=1e-4, atol=1e-7)


def test_plain_sgd_with_l2_shrinks_weights_not_biases():
    w = np.ones((2, 3), np.float32)
    model = MLP([w, np.ones((3, 2), np.float32)], [np.ones(3, np.float32), np.ones(2, np.float32)])
    bp = Backprop(model, 2)
    opt = SGD(bp, momentum=0.0, l2=0.5)
    bp.delta[0][...] = 0.0  # zero data gradient: only the decay acts
    opt.update(0, lr=0.1)
    np.testing.assert_allclose(model.weights[0], 1 - 0.1 * 0.5)
    np.testing.assert_array_equal(model.biases[0], 1.0)


def test_blas_gemm_accumulates_like_numpy():
    from worker.engine.blas import HAVE_BLAS_GEMM, Gemm

    rng = np.random.default_rng(0)
    x, d = rng.random((7, 5), dtype=np.float32), rng.standard_normal((7, 3), dtype=np.float32)
    c0 = rng.standard_normal((5, 3), dtype=np.float32)
    for alpha, beta in [(-1.0, 1.0), (-1.0, 0.9), (2.0, 0.0)]:
        c = c0.copy()
        g = Gemm(x.T, d, c, alpha, beta)
        g()
        np.testing.assert_allclose(c, alpha * (x.T @ d) + beta * c0, rtol=1e-5, atol=1e-6)
    c64 = c0.astype(np.float64)
    g64 = Gemm(x.T.astype(np.float64), d.astype(np.float64), c64, -1.0, 0.5)
    assert not g64.blas  # float64 takes the numpy path
    g64()
    np.testing.assert_allclose(c64, -(x.T @ d) + 0.5 * c0, rtol=1e-5, atol=1e-6)
    assert isinstance(HAVE_BLAS_GEMM, bool)
