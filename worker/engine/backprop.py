"""Minibatch forward/backward on preallocated buffers, and the SGD update.

Everything here runs once per minibatch, so nothing of size (batch, width) is allocated:
every ufunc and matmul writes into buffers made once per (model, batch size).

Layer inputs carry a constant-1 last column, matching the bias row of MLP.params, so a layer
is one matmul [h, 1] @ params (no separate bias add) and its whole gradient, bias included, is
one product [h, 1].T @ delta.
"""

from __future__ import annotations

import numpy as np

from .blas import Axpy, Gemm
from .model import MLP, softmax_, xent_metrics


def one_hot_columns(y, out):
    """Labels y (n,) one-hot by column into out (classes, n), the layout of Backprop.onehot."""
    out[...] = 0
    out[y, np.arange(len(y))] = 1
    return out


class Backprop:
    """Buffers and passes for one model and one batch size B.

    x (B, n_in + 1) holds the minibatch (last column: ones) and onehot (n_out, B) its labels,
    one-hot by column (see `load`). Then
      forward(rng)          hidden activations into a[i] (B, width + 1); the output layer's
                            logits into a (n_out, B) buffer
      backward(on_layer)    softmax of those logits (written shifted into self.logits, with
                            their normalisers in self.sums (1, B); see model.softmax_), then
                            delta[i] = dL/dz_i, L the cross-entropy summed over the batch (so
                            the batch mean's gradient is delta / B), from the last layer down.
                            on_layer(i) runs as soon as layer i's gradient inputs are ready and
                            its parameters are no longer needed, so it may update them in place.
    The output layer runs transposed, classes along axis 0: logits and delta[-1] are
    (n_out, B), so the softmax's reductions run along contiguous rows of B (numpy reduces a
    (B, 10) array along its short axis 2-4 times slower). self.onehot, self.logits and
    self.sums may be re-pointed by the caller, e.g. at slices of epoch-long arrays (n_out, N) and
    (1, N), which then keep the logits and normalisers for the epoch's metrics.
    inputs[i] (B, fan_in + 1) is what layer i saw (after dropout), so the gradient of
    params[i] is inputs[i].T @ grad_out[i] (B, fan_out); grad_out[-1] is delta[-1].T.
    """

    def __init__(self, model: MLP, batch_size: int, dropout: float = 0.0):
        dt, B = model.dtype, batch_size
        hidden, n_out = model.sizes[1:-1], model.sizes[-1]
        self.model, self.batch_size, self.dropout = model, batch_size, dropout

        def ones_column(n):  # (B, n + 1) buffer whose last column is the constant 1
            return np.concatenate([np.empty((B, n), dt), np.ones((B, 1), dt)], axis=1)

        self.x = ones_column(model.sizes[0])
        self.y = np.empty(B, np.intp)
        self.onehot = np.zeros((n_out, B), dt)
        # Hidden buffers are width + 1 wide: ufuncs run on whole contiguous rows, and the
        # extra column is the next layer's constant 1 (reset after every elementwise pass,
        # unless the activation keeps a 1 as it is and there is no dropout).
        self.a = [ones_column(n) for n in hidden]
        self._z = [a[:, :-1] for a in self.a]  # where each hidden layer's matmul writes
        self.zeros = [np.zeros((B, n + 1), dt) for n in hidden]
        # With dropout, h[i] = a[i] * mask[i] is what the next layer sees; otherwise h is a.
        self.mask = [np.empty((B, n + 1), dt) for n in hidden] if dropout else None
        self._drop_threshold = np.uint16(min(round(dropout * 65536), 65535))
        self._drop_scale = dt.type(65536 / (65536 - int(self._drop_threshold)))
        self.h = [ones_column(n) for n in hidden] if dropout else self.a
        self._reset_ones = bool(dropout) or not model.act.keeps_one
        self.inputs = [self.x, *self.h]
        self.out = np.empty((n_out, B), dt)  # the output layer's logits, transposed
        self.logits = np.empty((n_out, B), dt)
        self.sums = np.empty((1, B), dt)
        # delta[i] = d @ params[i+1].T is width + 1 wide too (its last column is unused).
        self.delta = [*(np.empty((B, n + 1), dt) for n in hidden), np.empty((n_out, B), dt)]
        self.grad_out = [*(d[:, :n] for d, n in zip(self.delta, hidden)), self.delta[-1].T]
        self.scratch = [np.empty((B, n + 1), model.act.scratch_dtype(dt)) for n in hidden]
        self._logits_gemm = Gemm(model.params[-1].T, self.inputs[-1].T, self.out)

    def load(self, x, y):
        """Copy a minibatch (x without the ones column, y integer labels) into the input buffers."""
        np.copyto(self.x[:, :-1], x, casting="same_kind")
        np.copyto(self.y, y, casting="same_kind")
        one_hot_columns(self.y, self.onehot)

    def forward(self, rng=None):
        """Forward pass of self.x; dropout masks are drawn from rng."""
        params, fn = self.model.params, self.model.act.fn
        for i in range(len(params) - 1):
            a = self.a[i]
            np.matmul(self.inputs[i], params[i], out=self._z[i])
            fn(a, out=a, zeros=self.zeros[i])
            if self.dropout:
                self._draw_mask(self.mask[i], rng)
                np.multiply(a, self.mask[i], out=self.h[i])
            if self._reset_ones:
                self.h[i][:, -1] = 1  # the next layer's bias input
        self._logits_gemm()
        return self.out

    def _draw_mask(self, mask, rng):
        # Inverted dropout: drop a unit with probability p, scale kept units by 1/(1-p), so
        # evaluation needs no rescaling. Each unit takes 16 raw bits of the generator (four per
        # 64-bit draw: generating floats took a fifth of a training step), so p is applied as
        # t/65536, t = round(p * 65536), within 2**-17 of p; the scale uses that exact keep
        # probability, so every unit's expected output is unchanged.
        u = rng.bit_generator.random_raw((mask.size + 3) // 4).view(np.uint16)[: mask.size]
        np.greater_equal(u.reshape(mask.shape), self._drop_threshold, out=mask)
        np.multiply(mask, self._drop_scale, out=mask)

    def backward(self, on_layer):
        params, grad = self.model.params, self.model.act.grad
        d = self.delta[-1]
        softmax_(self.out, d, self.sums, axis=0, shifted=self.logits)
        np.subtract(d, self.onehot, out=d)  # softmax + cross-entropy: dL/dlogits = probs - onehot
        for i in range(len(params) - 1, -1, -1):
            if i:  # the input needs no gradient: the largest propagation matmul is skipped
                np.matmul(self.grad_out[i], params[i].T, out=self.delta[i - 1])
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
    Backprop's deltas are batch sums, so g = inputs.T @ delta / B, and each layer's gradient
    product accumulates straight into params (or v) via BLAS gemm with alpha = -lr / B and
    beta = 1 (or momentum): no gradient buffers, no extra pass over the weights or the deltas.
    With momentum, v's L2 term (-lr*l2*w) and p += v are one saxpy pass each.
    """

    def __init__(self, bp: Backprop, momentum: float = 0.0, l2: float = 0.0):
        model = bp.model
        self.model, self.momentum, self.l2 = model, momentum, l2
        self.velocity = [np.zeros_like(p) for p in model.params] if momentum else None
        targets = self.velocity or model.params
        self.batch_size, self._lr = bp.batch_size, None
        beta = momentum or 1.0
        self._gemm = [Gemm(x.T, d, t, 0.0, beta) for x, d, t in zip(bp.inputs, bp.grad_out, targets)]
        if momentum:
            self._apply = [Axpy(v, p) for v, p in zip(self.velocity, model.params)]  # p += v
            self._decay = [Axpy(w, v[:-1]) for w, v in zip(model.weights, self.velocity)] if l2 else None

    @property
    def velocity_w(self):
        return None if self.velocity is None else [v[:-1] for v in self.velocity]

    def set_lr(self, lr: float) -> None:
        if lr != self._lr:
            self._lr = lr
            for gemm in self._gemm:
                gemm.set_alpha(-lr / self.batch_size)

    def update(self, i: int, lr: float):
        """Apply layer i's step from its deltas."""
        self.set_lr(lr)
        if self.l2 and not self.momentum:
            w = self.model.weights[i]
            np.multiply(w, w.dtype.type(1.0 - lr * self.l2), out=w)  # p - lr*l2*p, then the gemm adds -lr*g
        self._gemm[i]()  # p -= lr*g, or v = momentum*v - lr*g
        if self.momentum:
            if self.l2:
                self._decay[i](-lr * self.l2)  # v -= lr*l2*w, with w before this step
            self._apply[i](1.0)

    def step_function(self, lr: float):
        """on_layer for Backprop.backward: layer i's update at learning rate lr."""
        self.set_lr(lr)
        if not self.l2 and not self.momentum:
            gemms = self._gemm
            return lambda i: gemms[i]()  # plain SGD: the gemm is the whole update
        return lambda i: self.update(i, lr)


def train_step(bp: Backprop, opt: SGD, lr: float, rng=None, on_layer=None):
    """One SGD update on the minibatch in bp.x / bp.onehot (on_layer: opt.step_function(lr), reusable)."""
    bp.forward(rng)
    bp.backward(on_layer or opt.step_function(lr))


def gradients(model: MLP, x, y, l2: float = 0.0):
    """(loss, grad_w, grad_b) of mean cross-entropy + 0.5*l2*sum(W**2) over the batch (x, y).

    No dropout. The reference for the gradient checks; same forward/backward code as training.
    """
    bp = Backprop(model, len(x))
    bp.load(x, y)
    grads = [np.empty_like(p) for p in model.params]

    def store(i):
        np.matmul(bp.inputs[i].T, bp.grad_out[i], out=grads[i])
        grads[i] /= len(x)

    bp.forward()
    bp.backward(store)
    loss_sum, _ = xent_metrics(bp.logits, bp.sums, bp.y, axis=0)
    loss = loss_sum / len(x) + 0.5 * l2 * sum(float(np.sum(np.square(w, dtype=np.float64))) for w in model.weights)
    grad_w = [g[:-1] + g.dtype.type(l2) * w for g, w in zip(grads, model.weights)]
    return loss, grad_w, [g[-1].copy() for g in grads]
