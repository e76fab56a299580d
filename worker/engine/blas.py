"""Accumulating matrix product c = alpha * a @ b + beta * c, in float32.

numpy's matmul always overwrites its output, so an SGD step would be a gradient matmul into a
buffer plus a second full pass over every weight matrix (w -= g). BLAS sgemm accumulates into
c itself (beta), folding the update into the gradient product. We call the sgemm of the BLAS
that numpy already loaded (found through threadpoolctl, so BLAS thread limits apply to it);
where that is not a known OpenBLAS build, the same result comes from matmul + in-place ufuncs.
"""

from __future__ import annotations

import ctypes

import numpy as np
from threadpoolctl import threadpool_info

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
# (symbol, integer type): numpy's wheels ship OpenBLAS with 64-bit integers and a prefix/suffix.
_SYMBOLS = (
    ("scipy_cblas_sgemm64_", ctypes.c_int64),
    ("cblas_sgemm64_", ctypes.c_int64),
    ("scipy_cblas_sgemm", ctypes.c_int),
)


def _layout(m):
    """(transpose flag, leading dimension) describing 2-D m to a row-major BLAS, or None.

    Rows may be padded (a column slice of a wider buffer), as long as one axis has unit stride.
    """
    (rows, cols), (s0, s1), item = m.shape, m.strides, m.itemsize
    if s1 == item and s0 % item == 0 and s0 // item >= max(cols, 1):
        return _NO_TRANS, s0 // item
    if s0 == item and s1 % item == 0 and s1 // item >= max(rows, 1):
        return _TRANS, s1 // item
    return None


def _find_sgemm():
    for info in threadpool_info():
        if info.get("user_api") != "blas" or info.get("internal_api") != "openblas":
            continue
        try:
            lib = ctypes.CDLL(info["filepath"])
        except OSError:
            continue
        for name, int_t in _SYMBOLS:
            fn = getattr(lib, name, None)
            if fn is None:
                continue
            c_int, f32, ptr = ctypes.c_int, ctypes.c_float, ctypes.c_void_p
            fn.argtypes = [c_int, c_int, c_int, int_t, int_t, int_t, f32, ptr, int_t, ptr, int_t, f32, ptr, int_t]
            fn.restype = None
            if _works(fn):
                return fn
    return None


def _works(fn) -> bool:
    # Guard against a symbol whose calling convention is not what we assume.
    rng = np.random.default_rng(0)
    a, b = rng.random((3, 4), dtype=np.float32), rng.random((5, 4), dtype=np.float32)
    c = np.ones((3, 5), np.float32)
    fn(_ROW_MAJOR, _NO_TRANS, _TRANS, 3, 5, 4, 2.0, a.ctypes.data, 4, b.ctypes.data, 4, 0.5, c.ctypes.data, 5)
    return np.allclose(c, 2 * a @ b.T + 0.5, rtol=1e-5)


_sgemm = _find_sgemm()
HAVE_BLAS_GEMM = _sgemm is not None


class Gemm:
    """c = alpha * (a @ b) + beta * c, in place, each time it is called; a (m, k), b (k, n), c (m, n).

    The buffers are bound once (a and b may be transposed or row-padded views), so a call costs
    about what a np.matmul call costs. The arrays are referenced here: update them in place,
    never replace them.
    """

    def __init__(self, a, b, c, alpha: float = 1.0, beta: float = 0.0):
        (m, k), n = a.shape, b.shape[1]
        if b.shape[0] != k or c.shape != (m, n):
            raise ValueError(f"gemm shapes do not match: {a.shape} @ {b.shape} -> {c.shape}")
        self.a, self.b, self.c, self.alpha, self.beta = a, b, c, alpha, beta
        la, lb, lc = _layout(a), _layout(b), _layout(c)
        self.blas = bool(
            _sgemm is not None and m and n and k
            and a.dtype == b.dtype == c.dtype == np.float32
            and la and lb and lc and lc[0] == _NO_TRANS
        )
        if self.blas:
            int_t, f32, ptr = _sgemm.argtypes[3], ctypes.c_float, ctypes.c_void_p
            i = ctypes.c_int
            # Converted to ctypes once, not per call.
            self._args = (i(_ROW_MAJOR), i(la[0]), i(lb[0]), int_t(m), int_t(n), int_t(k), f32(alpha),
                          ptr(a.ctypes.data), int_t(la[1]), ptr(b.ctypes.data), int_t(lb[1]), f32(beta),
                          ptr(c.ctypes.data), int_t(lc[1]))
        else:
            self._scratch = np.empty(c.shape, c.dtype)

    def set_alpha(self, alpha: float) -> None:
        """Change alpha for the following calls (e.g. a new learning rate)."""
        self.alpha = alpha
        if self.blas:
            args = list(self._args)
            args[6] = ctypes.c_float(alpha)
            self._args = tuple(args)

    def __call__(self):
        if self.blas:
            _sgemm(*self._args)
            return self.c
        product = np.matmul(self.a, self.b, out=self._scratch)
        if self.alpha != 1.0:
            product *= self.c.dtype.type(self.alpha)
        if self.beta == 0.0:
            self.c[...] = product
        else:
            if self.beta != 1.0:
                self.c *= self.c.dtype.type(self.beta)
            self.c += product
        return self.c
