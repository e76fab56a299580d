"""Hidden-layer activations: the function and its derivative side by side.

Both work in place on preallocated buffers. The derivative is written in terms of the
activation's output a = f(z), which the forward pass keeps anyway, so z is never stored.
"""

from typing import Callable, NamedTuple

import numpy as np


class Activation(NamedTuple):
    fn: Callable  # fn(z, out, zeros=None) -> f(z) into out (out may be z)
    grad: Callable  # grad(a, g, scratch) -> g *= f'(z) in place, given a = f(z)
    scratch_dtype: Callable = np.dtype  # float dtype of the layer -> dtype of grad's scratch buffer
    keeps_one: bool = False  # f(1) == 1 exactly: a constant-1 input column survives the activation


def relu(z, out, zeros=None):
    # `zeros`, an all-zero array shaped like z, takes numpy's vectorised path (a scalar 0 does
    # not). max(z, +0) gives +0, never -0, for every z <= 0: relu_grad relies on that.
    return np.maximum(z, 0 if zeros is None else zeros, out=out)


def relu_grad(a, g, scratch):
    # relu'(0) := 0, so g is kept where a > 0 and zeroed where a == +0 (z <= 0).
    # Done on the bit patterns, with scratch an integer array of a's item size: a float a >= 0
    # is > 0 exactly when its bits, read as a signed integer, are > 0, i.e. when -bits is
    # negative; an arithmetic shift of -bits by (bits - 1) then gives all ones there and 0 where
    # a == +0, and AND-ing g with that is g * (a > 0), bit for bit. Three passes of one
    # integer type; multiplying by a bool mask is slower, as numpy converts the bools on the fly.
    np.negative(a.view(scratch.dtype), out=scratch)
    np.right_shift(scratch, scratch.dtype.itemsize * 8 - 1, out=scratch)
    bits = g.view(scratch.dtype)
    np.bitwise_and(bits, scratch, out=bits)
    return g


def _same_size_int(float_dtype):
    return np.dtype(f"i{np.dtype(float_dtype).itemsize}")


def tanh(z, out, zeros=None):
    return np.tanh(z, out=out)


def tanh_grad(a, g, scratch):
    # tanh'(z) = 1 - tanh(z)^2 = 1 - a^2
    np.square(a, out=scratch)
    np.subtract(1, scratch, out=scratch)
    return np.multiply(g, scratch, out=g)


ACTIVATIONS = {
    "relu": Activation(relu, relu_grad, _same_size_int, keeps_one=True),
    "tanh": Activation(tanh, tanh_grad),
}
