"""One MLP training step written to be read: plain numpy, float64, no buffers, no BLAS tricks.

The fast engine (backprop.py) computes the same step on preallocated float32 buffers;
tests/engine/test_engine_reference.py checks that both give the same parameters. Read this
file top to bottom: activations, a dense layer (forward and backward), the MLP, the loss,
dropout, the SGD update, and the step that ties them together. Shapes are (batch, features).
"""

import numpy as np


# Each activation: its value f(z) and its derivative, written in terms of the output a = f(z).
def tanh(z):
    return np.tanh(z)


def tanh_grad(a):
    return 1.0 - a**2  # tanh'(z) = 1 - tanh(z)^2


def relu(z):
    return np.maximum(z, 0.0)


def relu_grad(a):
    return (a > 0).astype(a.dtype)  # relu'(0) := 0


ACTIVATIONS = {"tanh": (tanh, tanh_grad), "relu": (relu, relu_grad)}


class Dense:
    """h (batch, fan_in) -> f(h @ w + b) (batch, fan_out); no activation (f = None) gives logits."""

    def __init__(self, w, b, activation=None):
        self.w, self.b = np.array(w, np.float64), np.array(b, np.float64)  # (fan_in, fan_out), (fan_out,)
        self.fn, self.fn_grad = ACTIVATIONS[activation] if activation else (None, None)

    def forward(self, h, keep=None, p_keep=1.0):
        """Output (batch, fan_out); keep (batch, fan_out) bools: inverted dropout on the output."""
        self.h, self.keep, self.p_keep = h, keep, p_keep  # remembered for backward
        z = h @ self.w + self.b
        self.a = z if self.fn is None else self.fn(z)
        return self.a if keep is None else self.a * keep / p_keep

    def backward(self, d_out):
        """d_out = dL/d(output) (batch, fan_out) -> dL/dh (batch, fan_in); sets self.dw, self.db."""
        d = d_out if self.keep is None else d_out * self.keep / self.p_keep
        if self.fn is not None:
            d = d * self.fn_grad(self.a)  # dL/dz = dL/da * f'(z)
        self.dw = self.h.T @ d  # (fan_in, fan_out)
        self.db = d.sum(axis=0)  # (fan_out,)
        return d @ self.w.T


class MLP:
    """input -> [Dense + activation] * hidden layers -> Dense (logits); weights[i] (fan_in, fan_out)."""

    def __init__(self, weights, biases, activation="relu"):
        last = len(weights) - 1
        self.layers = [Dense(w, b, None if i == last else activation) for i, (w, b) in enumerate(zip(weights, biases))]

    def forward(self, x, keep_masks=None, p_keep=1.0):
        """Logits (batch, n_out) for x (batch, n_in); keep_masks: one per hidden layer, or None."""
        h = np.asarray(x, np.float64)
        for i, layer in enumerate(self.layers):
            h = layer.forward(h, None if keep_masks is None or i == len(self.layers) - 1 else keep_masks[i], p_keep)
        return h

    def backward(self, d_logits):
        """Walk the layers from the last to the first; each keeps its own dw, db."""
        d = d_logits
        for layer in reversed(self.layers):
            d = layer.backward(d)


def softmax_cross_entropy(logits, y):
    """(mean cross-entropy, dL/dlogits (batch, n_out)) for logits (batch, n_out), labels y (batch,)."""
    shifted = logits - logits.max(axis=1, keepdims=True)  # exp cannot overflow
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    rows, batch = np.arange(len(y)), len(y)
    loss = -np.mean(np.log(probs[rows, y]))
    onehot = np.zeros_like(probs)
    onehot[rows, y] = 1.0
    return loss, (probs - onehot) / batch  # the gradient of the batch mean


def keep_probability(dropout):
    """1 - dropout, as the fast engine applies it: drops with probability round(dropout*65536)/65536."""
    return 1.0 - min(round(dropout * 65536), 65535) / 65536


class SGD:
    """v = momentum*v - lr*g; p += v (v starts at 0; momentum 0 is p -= lr*g); g += l2*W, not on biases."""

    def __init__(self, model, momentum=0.0, l2=0.0):
        self.model, self.momentum, self.l2 = model, momentum, l2
        self.velocity = [(np.zeros_like(layer.w), np.zeros_like(layer.b)) for layer in model.layers]

    def step(self, lr):
        for layer, (v_w, v_b) in zip(self.model.layers, self.velocity):
            grad_w = layer.dw + self.l2 * layer.w  # L2 on weights only
            for p, g, v in ((layer.w, grad_w, v_w), (layer.b, layer.db, v_b)):
                v *= self.momentum
                v -= lr * g
                p += v


def train_step(model, opt, x, y, lr, dropout=0.0, rng=None, keep_masks=None):
    """One SGD update on x (batch, n_in), y (batch,); returns the mean cross-entropy before it.

    With dropout, hidden outputs are kept with probability keep_probability(dropout) and scaled by
    its inverse; keep_masks (one (batch, width) bool array per hidden layer) or rng draws them.
    """
    p_keep = keep_probability(dropout)
    if dropout and keep_masks is None:
        keep_masks = [rng.random((len(x), layer.w.shape[1])) < p_keep for layer in model.layers[:-1]]
    logits = model.forward(x, keep_masks if dropout else None, p_keep)
    loss, d_logits = softmax_cross_entropy(logits, y)
    model.backward(d_logits)
    opt.step(lr)
    return loss
