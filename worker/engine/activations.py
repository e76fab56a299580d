"""Hidden-layer activations: the function and its derivative side by side.

Both work in place on preallocated buffers. The derivative is written in terms of the
activation's output a = f(z), which the forward pass keeps anyway, so z is never stored.
"""

from typing import Callable, NamedTuple

import numpy as np


class Activation(NamedTuple):
    fn: Callable  # fn(z, out, zeros=None) -> f(z) into out (out may be z)
    grad: Callable  # grad(a, g, scratch) -> g *= f'(z) in place, given a = f(z)
    scratch_dtype: object = None  # dtype of grad's scratch buffer; None = the layer's float dtype


def relu(z, out, zeros=None):
    # `zeros`, an all-zero array shaped like z, takes numpy's vectorised path (a scalar 0 does not).
    return np.maximum(z, 0 if zeros is None else zeros, out=out)


def relu_grad(a, g, scratch):
    # relu'(0) := 0, so the mask is a > 0 (a == 0 exactly where z <= 0); scratch is bool.
    np.greater(a, 0, out=scratch)
    return np.multiply(g, scratch, out=g)


def tanh(z, out, zeros=None):
    return np.tanh(z, out=out)


def tanh_grad(a, g, scratch):
    # tanh'(z) = 1 - tanh(z)^2 = 1 - a^2
    np.square(a, out=scratch)
    np.subtract(1, scratch, out=scratch)
    return np.multiply(g, scratch, out=g)


ACTIVATIONS = {"relu": Activation(relu, relu_grad, np.bool_), "tanh": Activation(tanh, tanh_grad)}
