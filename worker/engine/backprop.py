"""Minibatch forward/backward on preallocated buffers, and the SGD update.

Everything here runs once per minibatch, so nothing of size (batch, width) is allocated:
every ufunc and matmul writes into buffers made once per (model, batch size).

Layer inputs carry a constant-1 last column, matching the bias row of MLP.params, so a layer
is one matmul [h, 1] @ params (no separate bias add) and its whole gradient, bias included, is
one product [h, 1].T @ delta.
"""

from __future__ import annotations

import numpy as np

from .blas import Gemm
from .model import MLP, softmax_, xent_metrics


class Backprop:
    """Buffers and passes for one model and one batch size B.

    x (B, n_in + 1) and y (B,) hold the minibatch (last column of x: ones; see `load`). Then
      forward(rng)          hidden activations into a[i] (B, width + 1), logits (B, n_out) into
                            self.logits, a buffer the caller may re-point (e.g. at a slice of
                            an epoch-long array, to keep them for the epoch's metrics)
      backward(scale, on_layer, sums)
                            softmax (logits left shifted, normalisers in sums (B, 1); see
                            model.softmax_), then delta[i] = scale * dL/dz_i, L the batch-mean
                            cross-entropy, from the last layer down. on_layer(i) runs as soon as
                            delta[i] is ready and layer i's parameters are no longer needed, so
                            it may update them in place.
    inputs[i] (B, fan_in + 1) is what layer i saw (after dropout), so the gradient of
    params[i] is inputs[i].T @ grad_out[i], where grad_out[i] = delta[i][:, :fan_out].
    """

    def __init__(self, model: MLP, batch_size: int, dropout: float = 0.0):
        dt, B = model.dtype, batch_size
        hidden, n_out = model.sizes[1:-1], model.sizes[-1]
        self.model, self.batch_size, self.dropout = model, batch_size, dropout

        def ones_column(n):  # (B, n + 1) buffer whose last column is the constant 1
            return np.concatenate([np.empty((B, n), dt), np.ones((B, 1), dt)], axis=1)

        self.x = ones_column(model.sizes[0])
        self.y = np.empty(B, np.intp)
        # Hidden buffers are width + 1 wide: ufuncs run on whole contiguous rows, and the
        # extra column is the next layer's constant 1 (reset after every elementwise pass).
        self.a = [ones_column(n) for n in hidden]
        self.zeros = [np.zeros((B, n + 1), dt) for n in hidden]
        # With dropout, h[i] = a[i] * mask[i] is what the next layer sees; otherwise h is a.
        self.mask = [np.empty((B, n + 1), dt) for n in hidden] if dropout else None
        self.h = [ones_column(n) for n in hidden] if dropout else self.a
        self.inputs = [self.x, *self.h]
        self.logits = np.empty((B, n_out), dt)
        self.sums = np.empty((B, 1), dt)
        # delta[i] = d @ params[i+1].T is width + 1 wide too (its last column is unused).
        self.delta = [*(np.empty((B, n + 1), dt) for n in hidden), np.empty((B, n_out), dt)]
        self.grad_out = [d[:, :n] for d, n in zip(self.delta, model.sizes[1:])]
        self.scratch = [np.empty((B, n + 1), model.act.scratch_dtype or dt) for n in hidden]
        self.rows = np.arange(B)

    def load(self, x, y):
        """Copy a minibatch (x without the ones column) into the input buffers."""
        np.copyto(self.x[:, :-1], x, casting="same_kind")
        np.copyto(self.y, y, casting="same_kind")

    def forward(self, rng=None):
        """Forward pass of self.x; dropout masks are drawn from rng."""
        params, fn = self.model.params, self.model.act.fn
        last = len(params) - 1
        for i, p in enumerate(params):
            if i == last:
                np.matmul(self.inputs[i], p, out=self.logits)
                break
            a = self.a[i]
            np.matmul(self.inputs[i], p, out=a[:, :-1])
            fn(a, out=a, zeros=self.zeros[i])
            if self.dropout:
                self._draw_mask(self.mask[i], rng)
                np.multiply(a, self.mask[i], out=self.h[i])
            self.h[i][:, -1] = 1  # the next layer's bias input

    def _draw_mask(self, mask, rng):
        # Inverted dropout: keep with probability 1-p and scale kept units by 1/(1-p),
        # so evaluation needs no rescaling.
        rng.random(out=mask, dtype=mask.dtype)
        np.greater_equal(mask, self.dropout, out=mask)
        np.multiply(mask, mask.dtype.type(1.0 / (1.0 - self.dropout)), out=mask)

    def backward(self, scale, on_layer, sums=None):
        params, grad = self.model.params, self.model.act.grad
        d = self.delta[-1]
        softmax_(self.logits, d, self.sums if sums is None else sums)
        d[self.rows, self.y] -= 1  # softmax + cross-entropy: dL/dlogits = (probs - onehot) / batch
        np.multiply(d, d.dtype.type(scale / self.batch_size), out=d)
        for i in range(len(params) - 1, -1, -1):
            if i:  # the input needs no gradient: the largest propagation matmul is skipped
                np.matmul(d, params[i].T, out=self.delta[i - 1])
            on_layer(i)
            if i:
                d = self.delta[i - 1]
                if self.dropout:
                    np.multiply(d, self.mask[i - 1], out=d)
                grad(self.a[i - 1], d, self.scratch[i - 1])
                d = self.grad_out[i - 1]


class SGD:
    """Minibatch SGD with optional classic momentum and L2 on weights (not biases).

    For each parameter p with gradient g (+ l2*p for weights):
      momentum == 0:  p -= lr * g
      momentum  > 0:  v = momentum*v - lr*g;  p += v        (v starts at zero)
    Backprop's deltas already carry the factor lr (backward(scale=lr)), and each layer's
    gradient product accumulates straight into params (or v) via BLAS gemm: no gradient
    buffers, no extra pass over the weights.
    """

    def __init__(self, bp: Backprop, momentum: float = 0.0, l2: float = 0.0):
        model = bp.model
        self.model, self.momentum, self.l2 = model, momentum, l2
        self.velocity = [np.zeros_like(p) for p in model.params] if momentum else None
        self._l2buf = [np.empty_like(w) for w in model.weights] if l2 and momentum else None
        beta = 1.0 if not momentum or l2 else momentum  # with L2, v is decayed before the gemm
        targets = self.velocity or model.params
        self._gemm = [Gemm(x.T, d, t, -1.0, beta) for x, d, t in zip(bp.inputs, bp.grad_out, targets)]

    @property
    def velocity_w(self):
        return None if self.velocity is None else [v[:-1] for v in self.velocity]

    @property
    def velocity_b(self):
        return None if self.velocity is None else [v[-1] for v in self.velocity]

    def update(self, i: int, lr: float):
        """Apply layer i's step; its deltas must already be scaled by lr."""
        dt = self.model.dtype.type
        if self.l2 and not self.momentum:
            w = self.model.weights[i]
            np.multiply(w, dt(1.0 - lr * self.l2), out=w)  # p - lr*l2*p, then the gemm adds -lr*g
        elif self.l2:
            v, w, buf = self.velocity[i], self.model.weights[i], self._l2buf[i]
            np.multiply(v, dt(self.momentum), out=v)
            np.subtract(v[:-1], np.multiply(w, dt(lr * self.l2), out=buf), out=v[:-1])
        self._gemm[i]()
        if self.momentum:
            np.add(self.model.params[i], self.velocity[i], out=self.model.params[i])


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
    grads = [np.empty_like(p) for p in model.params]

    def store(i):
        np.matmul(bp.inputs[i].T, bp.grad_out[i], out=grads[i])

    bp.forward()
    bp.backward(1.0, store)
    loss_sum, _ = xent_metrics(bp.logits, bp.sums, bp.y)
    loss = loss_sum / len(x) + 0.5 * l2 * sum(float(np.sum(np.square(w, dtype=np.float64))) for w in model.weights)
    grad_w = [g[:-1] + g.dtype.type(l2) * w for g, w in zip(grads, model.weights)]
    return loss, grad_w, [g[-1].copy() for g in grads]
