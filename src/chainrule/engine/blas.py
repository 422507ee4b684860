"""Three BLAS calls that NumPy does not expose, from the BLAS NumPy itself already loaded.

Why: an SGD step is ``W <- b * W - lr * (dᵀ x)``. Through NumPy that is a matrix product into a
new array and then passes over W to scale, multiply and add. BLAS ``gemm`` computes
``C <- alpha * Aᵀ B + beta * C`` in one call, so the product writes straight into W and the
update costs no pass over memory of its own; ``axpby`` (``y <- a x + b y``) does an update in one
pass where NumPy needs two or three.

Which BLAS: only the one NumPy is linked to, found by path next to NumPy and opened with
``RTLD_NOLOAD`` (it must already be in the process). A second BLAS would bring a second thread
pool, and two pools on the same cores fight (measured: epochs 3 to 6 times slower). NumPy's Linux
wheels ship OpenBLAS with 64-bit integers and ``scipy_`` prefixed names; for any other NumPy
(conda with MKL, a distribution's build, macOS) ``AVAILABLE`` is False and every function below
computes the same result with NumPy operations instead. The tests run both paths.

Arrays must be float32 or float64, all of one dtype, with unit stride along rows (C order, row
slices allowed); anything else takes the NumPy path too.
"""

from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

Array = np.ndarray

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_INT = ctypes.c_int64  # ILP64: the "64_" in the symbol names


def _open_numpy_blas() -> dict[str, object] | None:
    """The gemm, axpby and axpy of NumPy's own OpenBLAS, or None where it cannot be found."""
    if os.environ.get("CHAINRULE_NUMPY_BLAS", "1") == "0":  # the NumPy path, on request
        return None
    libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    candidates = sorted(glob.glob(os.path.join(libs, "libscipy_openblas64_*.so")))
    if len(candidates) != 1:
        return None
    try:
        # RTLD_NOLOAD: hand back the copy NumPy loaded, never load a second one.
        lib = ctypes.CDLL(candidates[0], mode=os.RTLD_NOLOAD | os.RTLD_LOCAL)
    except (OSError, AttributeError):
        return None
    enum, p, i64 = ctypes.c_int, ctypes.c_void_p, _INT
    functions: dict[str, object] = {}
    for dtype, ch, real in ((np.float32, "s", ctypes.c_float), (np.float64, "d", ctypes.c_double)):
        try:
            gemm = getattr(lib, f"scipy_cblas_{ch}gemm64_")
            axpby = getattr(lib, f"scipy_cblas_{ch}axpby64_")
            axpy = getattr(lib, f"scipy_cblas_{ch}axpy64_")
        except AttributeError:
            return None
        gemm.argtypes = [enum, enum, enum, i64, i64, i64, real, p, i64, p, i64, real, p, i64]
        axpby.argtypes = [i64, real, p, i64, real, p, i64]
        axpy.argtypes = [i64, real, p, i64, p, i64]
        gemm.restype = axpby.restype = axpy.restype = None
        functions[np.dtype(dtype).char] = (gemm, axpby, axpy)
    return functions


_FUNCTIONS = _open_numpy_blas()
AVAILABLE = _FUNCTIONS is not None


def _address(a: Array) -> int:
    """Where a's first element is in memory."""
    try:
        # Through the buffer protocol: ~0.4 µs, against ~1.2 µs for a.ctypes.data, which builds
        # an object each time (a step makes about ten of these calls). Needs a writable,
        # contiguous array; anything else takes the slow road.
        return ctypes.addressof(ctypes.c_char.from_buffer(a))
    except (TypeError, ValueError, BufferError):
        return a.ctypes.data


def _rows(a: Array) -> int | None:
    """The leading dimension of a 2-D array BLAS can read in row-major order, else None."""
    item = a.itemsize
    if a.ndim != 2 or a.strides[1] != item or a.strides[0] % item:
        return None
    lead = a.strides[0] // item
    return lead if lead >= max(a.shape[1], 1) else None


def _blas_for(*arrays: Array) -> tuple | None:
    """NumPy's BLAS functions for these arrays' dtype, if all of them suit BLAS."""
    if _FUNCTIONS is None:
        return None
    dtype = arrays[0].dtype
    if not dtype.isnative:  # '>f8' has char 'd' too: BLAS would read its bytes backwards
        return None
    for a in arrays:
        if a.dtype != dtype or not a.flags.aligned:
            return None
    return _FUNCTIONS.get(dtype.char)  # type: ignore[return-value]


# Below this many elements a level-1 update is quicker in NumPy: a ctypes call costs ~3 µs,
# NumPy's two passes over a bias of 512 numbers ~1 µs.
_LEVEL1_MIN = 8192


def _level1(x: Array, y: Array) -> tuple | None:
    """NumPy's BLAS for y <- f(x, y) over whole arrays, if worth it and possible."""
    if x.size < _LEVEL1_MIN or x.shape != y.shape or not y.flags.writeable:
        return None
    if not (x.flags.c_contiguous and y.flags.c_contiguous):
        return None
    return _blas_for(x, y)


def gemm_tn(alpha: float, a: Array, b: Array, beta: float, c: Array) -> None:
    """c <- alpha * a.T @ b + beta * c, in place. a: (K, M), b: (K, N), c: (M, N).

    ``c`` must not overlap ``a`` or ``b``. With beta = 0, c's old values are never read (NaN
    included), as BLAS specifies.
    """
    if a.shape[0] != b.shape[0] or c.shape != (a.shape[1], b.shape[1]):
        raise ValueError(f"gemm_tn: shapes {a.shape}ᵀ @ {b.shape} do not give {c.shape}")
    blas = _blas_for(a, b, c)
    lda, ldb, ldc = _rows(a), _rows(b), _rows(c)
    if blas is None or lda is None or ldb is None or ldc is None or not c.flags.writeable:
        if beta == 0:
            np.matmul(a.T, b, out=c)
            if alpha != 1:
                c *= alpha
        else:
            product = a.T @ b
            product *= alpha
            if beta != 1:
                c *= beta
            c += product
        return
    (k, m), n = a.shape, b.shape[1]
    blas[0](
        _ROW_MAJOR, _TRANS, _NO_TRANS, m, n, k,
        alpha, _address(a), lda, _address(b), ldb, beta, _address(c), ldc,
    )  # fmt: skip


def axpby(alpha: float, x: Array, beta: float, y: Array, scratch: Array) -> None:
    """y <- alpha * x + beta * y, in place, one pass. x, y, scratch: one shape (any).

    ``scratch`` (same shape and dtype as x) serves the NumPy path, so neither path allocates.
    """
    blas = _level1(x, y)
    if blas is None:
        np.multiply(x, alpha, out=scratch)
        if beta != 1:
            y *= beta
        y += scratch
        return
    blas[1](x.size, alpha, _address(x), 1, beta, _address(y), 1)


def axpy(alpha: float, x: Array, y: Array, scratch: Array) -> None:
    """y <- alpha * x + y, in place. x, y, scratch: one shape (any); scratch as for ``axpby``."""
    blas = _level1(x, y)
    if blas is None:
        np.multiply(x, alpha, out=scratch)
        y += scratch
        return
    blas[2](x.size, alpha, _address(x), 1, _address(y), 1)
