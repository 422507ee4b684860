"""Matrix products while a CUDA graph is recorded: cuBLAS called directly.

cuBLAS kernels can be captured into a CUDA graph, but CuPy refuses every cuBLAS call during
stream capture (its wrappers set the handle's stream before each call, which capture forbids).
So the fused gates multiply through ``matmul``: ``a @ b`` as ever, except inside
``recording(stream)`` (what ``training.captured`` wraps around the step it records), where a
product of CuPy arrays is one cublasSgemm / cublasDgemm call through ctypes, on CuPy's own
handle, whose stream was set to the recording stream before the capture began. The numbers are
cuBLAS's either way. Nothing here imports CuPy until a recording starts.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator
from typing import Any

import numpy as np

from chainrule.engine.backend import on_gpu

_recording = False
_library: Any = None
_OP_N, _OP_T = 0, 1


def matmul(a: Any, b: Any) -> Any:
    """a @ b for 2-D a (M, K) and b (K, N) -> (M, N), any array module. During ``recording``,
    CuPy operands go straight to cuBLAS (float32 or float64)."""
    if _recording and on_gpu(a):
        return _gemm(a, b)
    return a @ b


@contextlib.contextmanager
def recording(stream: Any) -> Iterator[None]:
    """Inside this block CuPy products run as direct cuBLAS calls on ``stream`` (a
    cupy.cuda.Stream, about to be captured). Raises OSError when libcublas cannot be found."""
    global _recording
    import cupy

    handle = cupy.cuda.device.get_cublas_handle()
    _check(_cublas().cublasSetStream_v2(ctypes.c_void_p(handle), ctypes.c_void_p(stream.ptr)))
    _recording = True
    try:
        yield
    finally:
        _recording = False


def _cublas() -> Any:
    """The libcublas CuPy uses: by its soname, else by its path in this process's memory map."""
    global _library
    if _library is None:
        for name in ("libcublas.so.13", "libcublas.so.12", "libcublas.so"):
            try:
                _library = ctypes.CDLL(name)
                return _library
            except OSError:
                pass
        with open("/proc/self/maps") as maps:
            paths = [line.split()[-1] for line in maps if "/libcublas.so" in line]
        if not paths:
            raise OSError("libcublas is not loaded in this process")
        _library = ctypes.CDLL(paths[0])
    return _library


def _check(status: int) -> None:
    if status != 0:
        raise RuntimeError(f"cuBLAS returned status {status}")


def _layout(x: Any) -> tuple[Any, int, int]:
    """A row-major (R, C) operand as cuBLAS (column-major) sees it: (array, op, leading
    dimension). A C-ordered buffer is the transpose, read as is; an F-ordered one (a ``.T``
    view) is the matrix itself, read transposed."""
    if x.flags.c_contiguous:
        return x, _OP_N, max(1, x.shape[1])
    if x.flags.f_contiguous:
        return x, _OP_T, max(1, x.shape[0])
    x = x.copy()  # (C order)
    return x, _OP_N, max(1, x.shape[1])


def _gemm(a: Any, b: Any) -> Any:
    """(M, K) @ (K, N) as C^T = B^T A^T in column-major terms: one cuBLAS gemm, a new C."""
    import cupy

    if a.ndim != 2 or b.ndim != 2 or b.shape[0] != a.shape[1] or a.dtype != b.dtype:
        return a @ b  # (not a fused gate's product: CuPy's own path)
    (m, k), n = a.shape, b.shape[1]
    double = a.dtype == np.float64
    if not (double or a.dtype == np.float32):
        return a @ b
    a, op_a, lda = _layout(a)
    b, op_b, ldb = _layout(b)
    c = cupy.empty((m, n), dtype=a.dtype)
    scalar = ctypes.c_double if double else ctypes.c_float
    one, zero = scalar(1.0), scalar(0.0)
    gemm = _cublas().cublasDgemm_v2 if double else _cublas().cublasSgemm_v2
    handle = cupy.cuda.device.get_cublas_handle()
    pointer, integer = ctypes.c_void_p, ctypes.c_int
    _check(
        gemm(
            pointer(handle),
            integer(op_b),
            integer(op_a),
            integer(n),
            integer(m),
            integer(k),
            ctypes.byref(one),
            pointer(b.data.ptr),
            integer(ldb),
            pointer(a.data.ptr),
            integer(lda),
            ctypes.byref(zero),
            pointer(c.data.ptr),
            integer(max(1, n)),
        )
    )
    return c
