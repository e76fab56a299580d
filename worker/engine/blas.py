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
# (symbol, integer type): numpy wheels ship OpenBLAS with 64-bit integers and a prefix/suffix.
_SYMBOLS = (
    ("scipy_cblas_sgemm64_", ctypes.c_int64),
    ("cblas_sgemm64_", ctypes.c_int64),
    ("scipy_cblas_sgemm", ctypes.c_int),
)


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
    args = _blas_args(a, b.T, c)
    fn(_ROW_MAJOR, args[0], args[1], 3, 5, 4, 2.0, args[2], args[3], args[4], args[5], 0.5, c.ctypes.data, 5)
    return np.allclose(c, 2 * a @ b.T + 0.5, rtol=1e-5)


def _operand(m):
    # Row-major BLAS operand: (transpose flag, pointer, leading dimension), or None.
    if m.flags.c_contiguous:
        return _NO_TRANS, m.ctypes.data, m.shape[1]
    if m.flags.f_contiguous:
        return _TRANS, m.ctypes.data, m.shape[0]
    return None


def _blas_args(a, b, c):
    oa, ob = _operand(a), _operand(b)
    if oa is None or ob is None or not c.flags.c_contiguous:
        return None
    return oa[0], ob[0], oa[1], oa[2], ob[1], ob[2]


_sgemm = _find_sgemm()
HAVE_BLAS_GEMM = _sgemm is not None


class Gemm:
    """c = alpha * (a @ b) + beta * c, in place, each time it is called; a (m, k), b (k, n), c (m, n).

    The buffers are bound once (a and b may be transposed views), so a call costs about what a
    np.matmul call costs; the arrays are referenced here and must be updated in place, never
    replaced.
    """

    def __init__(self, a, b, c, alpha: float = 1.0, beta: float = 0.0):
        (m, k), n = a.shape, b.shape[1]
        if b.shape[0] != k or c.shape != (m, n):
            raise ValueError(f"gemm shapes do not match: {a.shape} @ {b.shape} -> {c.shape}")
        self.a, self.b, self.c, self.alpha, self.beta = a, b, c, alpha, beta
        args = _blas_args(a, b, c) if _sgemm is not None and c.dtype == a.dtype == b.dtype == np.float32 else None
        if args is not None and m and n and k:
            ta, tb, pa, lda, pb, ldb = args
            int_t, f32, ptr = _sgemm.argtypes[3], ctypes.c_float, ctypes.c_void_p
            ints = [int_t(v) for v in (m, n, k, lda, ldb, n)]  # converted once, not per call
            flags = [ctypes.c_int(v) for v in (_ROW_MAJOR, ta, tb)]
            self._args = (*flags, *ints[:3], f32(alpha), ptr(pa), ints[3], ptr(pb), ints[4],
                          f32(beta), ptr(c.ctypes.data), ints[5])
            self.blas = True
        else:
            self._scratch = np.empty_like(c)
            self.blas = False

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
