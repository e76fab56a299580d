"""Accumulating matrix product c = alpha * a @ b + beta * c, and y += alpha * x, in float32.

numpy's matmul always overwrites its output, so an SGD step would be a gradient matmul into a
buffer plus a second full pass over every weight matrix (w -= g). BLAS sgemm accumulates into
c itself (beta), folding the update into the gradient product; saxpy adds a scaled array in one
pass where numpy needs two (a product into a buffer, then the sum). We call the routines of the BLAS
that numpy already loaded (found through threadpoolctl, so BLAS thread limits apply to it);
where that is not a known OpenBLAS build, the same result comes from matmul + in-place ufuncs.
"""

from __future__ import annotations

import ctypes

import numpy as np
from threadpoolctl import threadpool_info

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
# (prefix, suffix, integer type) of the CBLAS symbols: numpy's wheels ship OpenBLAS with 64-bit
# integers and a prefix/suffix.
_NAMINGS = (
    ("scipy_cblas_", "64_", ctypes.c_int64),
    ("cblas_", "64_", ctypes.c_int64),
    ("scipy_cblas_", "", ctypes.c_int),
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


def _find(stem: str, argtypes, works):
    """The OpenBLAS routine `stem` (e.g. "sgemm") that numpy loaded, checked by works(fn), or None.

    argtypes(int_t) gives the ctypes argument types for the library's integer type.
    """
    for info in threadpool_info():
        if info.get("user_api") != "blas" or info.get("internal_api") != "openblas":
            continue
        try:
            lib = ctypes.CDLL(info["filepath"])
        except OSError:
            continue
        for prefix, suffix, int_t in _NAMINGS:
            fn = getattr(lib, f"{prefix}{stem}{suffix}", None)
            if fn is None:
                continue
            fn.argtypes, fn.restype = argtypes(int_t), None
            if works(fn):
                return fn
    return None


_F32, _PTR, _INT = ctypes.c_float, ctypes.c_void_p, ctypes.c_int


def _gemm_works(fn) -> bool:
    # Guard against a symbol whose calling convention is not what we assume.
    rng = np.random.default_rng(0)
    a, b = rng.random((3, 4), dtype=np.float32), rng.random((5, 4), dtype=np.float32)
    c = np.ones((3, 5), np.float32)
    fn(_ROW_MAJOR, _NO_TRANS, _TRANS, 3, 5, 4, 2.0, a.ctypes.data, 4, b.ctypes.data, 4, 0.5, c.ctypes.data, 5)
    return np.allclose(c, 2 * a @ b.T + 0.5, rtol=1e-5)


def _axpy_works(fn) -> bool:
    x, y = np.arange(5, dtype=np.float32), np.ones(5, np.float32)
    fn(5, -2.0, x.ctypes.data, 1, y.ctypes.data, 1)
    return np.array_equal(y, 1 - 2 * np.arange(5, dtype=np.float32))


_sgemm = _find(
    "sgemm", lambda i: [_INT, _INT, _INT, i, i, i, _F32, _PTR, i, _PTR, i, _F32, _PTR, i], _gemm_works
)
_saxpy = _find("saxpy", lambda i: [i, _F32, _PTR, i, _PTR, i], _axpy_works)
HAVE_BLAS_GEMM = _sgemm is not None
HAVE_BLAS_AXPY = _saxpy is not None


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


class Axpy:
    """y += alpha * x in place, alpha given per call; x and y same-shaped, C-contiguous, bound once.

    One pass over x and y through BLAS saxpy (float32); otherwise numpy's product into a scratch
    buffer, then the sum.
    """

    def __init__(self, x, y):
        if x.shape != y.shape or x.dtype != y.dtype:
            raise ValueError(f"axpy operands differ: {x.dtype}{x.shape} vs {y.dtype}{y.shape}")
        self.x, self.y = x, y
        self.blas = bool(
            _saxpy is not None and x.size and x.dtype == np.float32
            and x.flags.c_contiguous and y.flags.c_contiguous
        )
        if self.blas:
            int_t = _saxpy.argtypes[0]
            self._n, self._one = int_t(x.size), int_t(1)
            self._x, self._y = _PTR(x.ctypes.data), _PTR(y.ctypes.data)
        else:
            self._scratch = np.empty_like(y)

    def __call__(self, alpha: float):
        if self.blas:
            _saxpy(self._n, _F32(alpha), self._x, self._one, self._y, self._one)
        else:
            np.multiply(self.x, self.y.dtype.type(alpha), out=self._scratch)
            np.add(self.y, self._scratch, out=self.y)
        return self.y
