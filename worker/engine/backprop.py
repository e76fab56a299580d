"""Minibatch forward/backward on preallocated buffers, and the SGD update.

Everything here runs once per minibatch, so nothing of size (batch, width) is allocated:
every ufunc and matmul writes into buffers made once per (model, batch size).
"""

from __future__ import annotations

import numpy as np

from .blas import Gemm
from .model import MLP, softmax_, xent_metrics


class Backprop:
    """Buffers and passes for one model and one batch size B.

    Fill x (B, n_in) and y (B,) (see `load`), then:
      forward(rng)               hidden activations a[i] (B, width); logits (B, n_out) into
                                 self.logits (a buffer the caller may re-point, e.g. at a slice
                                 of an epoch-long array, to keep them for the epoch's metrics)
      backward(scale, on_layer, sums)
                                 softmax (logits left shifted, normalisers in sums (B, 1); see
                                 model.softmax_), then delta[i] (B, fan_out) = scale * dL/dz_i
                                 for L the batch-mean cross-entropy, from the last layer down.
                                 on_layer(i) runs as soon as delta[i] is ready and layer i's
                                 weights are no longer needed, so it may update them in place.
    inputs[i] (B, fan_in) is what layer i saw (after dropout): dL/dW_i = inputs[i].T @ delta[i].
    """

    def __init__(self, model: MLP, batch_size: int, dropout: float = 0.0):
        dt, widths, B = model.dtype, model.sizes[1:], batch_size
        hidden = widths[:-1]
        self.model, self.batch_size, self.dropout = model, batch_size, dropout
        self.x = np.empty((B, model.sizes[0]), dt)
        self.y = np.empty(B, np.intp)
        self.a = [np.empty((B, n), dt) for n in hidden]  # activations
        self.zeros = [np.zeros((B, n), dt) for n in hidden]
        # With dropout, h[i] = a[i] * mask[i] is what the next layer sees; otherwise h is a.
        self.mask = [np.empty((B, n), dt) for n in hidden] if dropout else None
        self.h = [np.empty((B, n), dt) for n in hidden] if dropout else self.a
        self.inputs = [self.x, *self.h]
        self.logits = np.empty((B, widths[-1]), dt)
        self.sums = np.empty((B, 1), dt)
        self.delta = [np.empty((B, n), dt) for n in widths]
        self.scratch = [np.empty((B, n), model.act.scratch_dtype or dt) for n in hidden]
        self.rows = np.arange(B)

    def load(self, x, y):
        """Copy a minibatch into the input buffers."""
        np.copyto(self.x, x, casting="same_kind")
        np.copyto(self.y, y, casting="same_kind")

    def forward(self, rng=None):
        """Forward pass of self.x; dropout masks are drawn from rng."""
        m, fn = self.model, self.model.act.fn
        last = len(m.weights) - 1
        for i, (w, b) in enumerate(zip(m.weights, m.biases)):
            z = np.matmul(self.inputs[i], w, out=self.logits if i == last else self.a[i])
            np.add(z, b, out=z)
            if i == last:
                break
            fn(z, out=z, zeros=self.zeros[i])
            if self.dropout:
                self._draw_mask(self.mask[i], rng)
                np.multiply(z, self.mask[i], out=self.h[i])

    def _draw_mask(self, mask, rng):
        # Inverted dropout: keep with probability 1-p and scale kept units by 1/(1-p),
        # so evaluation needs no rescaling.
        rng.random(out=mask, dtype=mask.dtype)
        np.greater_equal(mask, self.dropout, out=mask)
        np.multiply(mask, mask.dtype.type(1.0 / (1.0 - self.dropout)), out=mask)

    def backward(self, scale, on_layer, sums=None):
        m, grad = self.model, self.model.act.grad
        d = self.delta[-1]
        softmax_(self.logits, d, self.sums if sums is None else sums)
        d[self.rows, self.y] -= 1  # softmax + cross-entropy: dL/dlogits = (probs - onehot) / batch
        np.multiply(d, d.dtype.type(scale / self.batch_size), out=d)
        for i in range(len(m.weights) - 1, -1, -1):
            if i:  # the input needs no gradient: the largest propagation matmul is skipped
                np.matmul(d, m.weights[i].T, out=self.delta[i - 1])
            on_layer(i)
            if i:
                d = self.delta[i - 1]
                if self.dropout:
                    np.multiply(d, self.mask[i - 1], out=d)
                grad(self.a[i - 1], d, self.scratch[i - 1])


class SGD:
    """Minibatch SGD with optional classic momentum and L2 on weights (not biases).

    For each parameter p with gradient g (+ l2*p for weights):
      momentum == 0:  p -= lr * g
      momentum  > 0:  v = momentum*v - lr*g;  p += v        (v starts at zero)
    Backprop's deltas already carry the factor lr (backward(scale=lr)), and each weight
    gradient product accumulates straight into p (or v) via BLAS gemm: no gradient buffers,
    no extra pass over the weights.
    """

    def __init__(self, bp: Backprop, momentum: float = 0.0, l2: float = 0.0):
        model = bp.model
        self.model, self.momentum, self.l2 = model, momentum, l2
        self.velocity_w = [np.zeros_like(w) for w in model.weights] if momentum else None
        self.velocity_b = [np.zeros_like(b) for b in model.biases] if momentum else None
        self._l2buf = [np.empty_like(w) for w in model.weights] if l2 and momentum else None
        target_w = self.velocity_w or model.weights
        target_b = self.velocity_b or model.biases
        beta_w = 1.0 if not momentum or l2 else momentum  # with L2, v is decayed before the gemm
        beta_b = momentum or 1.0
        ones = np.ones((1, bp.batch_size), model.dtype)  # bias gradient = ones @ delta
        self._gemm_w = [Gemm(x.T, d, t, -1.0, beta_w) for x, d, t in zip(bp.inputs, bp.delta, target_w)]
        self._gemm_b = [Gemm(ones, d, t.reshape(1, -1), -1.0, beta_b) for d, t in zip(bp.delta, target_b)]

    def update(self, i: int, lr: float):
        """Apply layer i's step; its deltas must already be scaled by lr."""
        w, b, dt = self.model.weights[i], self.model.biases[i], self.model.dtype.type
        if self.l2 and not self.momentum:
            np.multiply(w, dt(1.0 - lr * self.l2), out=w)  # p - lr*l2*p, before adding -lr*g
        elif self.l2:
            v, buf = self.velocity_w[i], self._l2buf[i]
            np.multiply(v, dt(self.momentum), out=v)
            np.subtract(v, np.multiply(w, dt(lr * self.l2), out=buf), out=v)
        self._gemm_w[i]()
        self._gemm_b[i]()
        if self.momentum:
            np.add(w, self.velocity_w[i], out=w)
            np.add(b, self.velocity_b[i], out=b)


def train_step(bp: Backprop, opt: SGD, lr: float, rng=None, sums=None):
    """One SGD update on the minibatch in bp.x / bp.y (see Backprop.backward for sums)."""
    bp.forward(rng)
    bp.backward(lr, lambda i: opt.update(i, lr), sums)


def gradients(model: MLP, x, y, l2: float = 0.0):
    """(loss, grad_w, grad_b) of mean cross-entropy + 0.5*l2*sum(W**2) over the batch (x, y).

    No dropout. The reference for the gradient checks; same forward/backward code as training.
    """
    bp = Backprop(model, len(x))
    bp.load(x, y)
    grad_w = [np.empty_like(w) for w in model.weights]
    grad_b = [np.empty_like(b) for b in model.biases]

    def store(i):
        np.matmul(bp.inputs[i].T, bp.delta[i], out=grad_w[i])
        np.sum(bp.delta[i], axis=0, out=grad_b[i])

    bp.forward()
    bp.backward(1.0, store)
    loss_sum, _ = xent_metrics(bp.logits, bp.sums, bp.y)
    loss = loss_sum / len(x) + 0.5 * l2 * sum(float(np.sum(np.square(w, dtype=np.float64))) for w in model.weights)
    return loss, [g + g.dtype.type(l2) * w for g, w in zip(grad_w, model.weights)], grad_b
