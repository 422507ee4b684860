"""The array helpers every gate shares: sums in the right dtype, broadcasting undone, ReLU.

Half precision: gates take float16 and keep it for their outputs and gradients, but every sum
(a reduction, a broadcast input's gradient, a loss's mean) is accumulated in float32, as NumPy's
``np.mean`` does for float16: float16's largest number is 65504 and its 11-bit sums stall
(2048 + 1 = 2048), so a float16 accumulator makes a mean over 70,000 elements NaN.

Array modules: every helper takes its functions from its arguments (``backend.namespace``). The
helpers at the end (``relu``, ``batch_sum``, ``row_sums``) are spelled for NumPy's speed: they
keep small constant arrays (zeros, ones) in a cache, a NumPy-only trick guarded by a type check;
any other array module (CuPy, array_api_strict) takes the plain portable spelling in the same
function, with the same values.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from chainrule.engine.backend import namespace
from chainrule.engine.errors import ShapeError

Array = np.ndarray  # (or a CuPy / array API array: the functions take any; see the docstring)

_FLOAT32 = np.dtype(np.float32)


def accumulator(dtype: np.dtype) -> np.dtype:
    """The dtype to add up values of ``dtype`` in: float32 for float16, else ``dtype`` itself.

    NumPy's own rule for ``np.mean`` on float16 (see the module docstring for why). Dtypes of
    modules without float16 (array_api_strict's) are returned as they are.
    """
    return _FLOAT32 if isinstance(dtype, np.dtype) and dtype == np.float16 else dtype


def is_floating(x: Array) -> bool:
    """Whether ``x`` has a real floating dtype (float16/32/64), in any array module."""
    if isinstance(x, np.ndarray):
        return x.dtype.kind == "f"
    return namespace(x).isdtype(x.dtype, "real floating")


def zero_d(x: Any) -> Array:
    """``x`` as an array: NumPy makes the result of an operation on 0-d arrays a scalar (a
    np.generic), which gates must not return; arrays (of any module) pass through."""
    return np.asarray(x) if isinstance(x, (np.generic, float, int)) else x


def reduce_sum(x: Array, axis: tuple[int, ...], keepdims: bool = False) -> Array:
    """``x`` summed over ``axis``, accumulated in ``accumulator(x.dtype)``, in x's dtype.

    x: any shape; returns an array (0-d when every axis is summed away), never a NumPy scalar.
    A float16 sum too large for float16 is inf (with NumPy's overflow warning), as it would be
    exactly; float32 keeps every other float16 sum to float16's precision.
    """
    xp = namespace(x)
    out = xp.sum(x, axis=axis, keepdims=keepdims, dtype=accumulator(x.dtype))
    return xp.astype(xp.asarray(out), x.dtype, copy=False)


def unbroadcast(grad: Array, shape: tuple[int, ...]) -> Array:
    """Sum ``grad`` over the axes that broadcasting added or stretched, back to ``shape``.

    grad: the gradient of a broadcast result, shape ``np.broadcast_shapes(shape, ...)``.
    Returns an array of ``shape`` (``grad`` itself when nothing was broadcast). The chain rule
    says so: an input copied along an axis receives the sum of the gradients of all its copies.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = reduce_sum(grad, tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = reduce_sum(grad, stretched, keepdims=True)
    return grad


def broadcast_shape(name: str, a: Array, b: Array) -> tuple[int, ...]:
    """The broadcast shape of two inputs. Raises ShapeError naming the gate ``name`` and both
    shapes when they cannot be broadcast together."""
    try:
        return np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(
            f"{name}: shapes {a.shape} and {b.shape} cannot be broadcast together"
        ) from None


def as_array(value: Any, like: Array | None = None) -> Array:
    """``value`` (a number, a sequence, an array) as an array for a gate: a float dtype always,
    and ``like``'s float dtype when ``like`` is given, so a constant that meets a float32 tensor
    stays float32 (integers and booleans become float64 otherwise). An array of another module
    (CuPy, array_api_strict) stays in it; a number or NumPy array meeting such a ``like`` is
    made in like's module (on its device).

    Raises TypeError for a value that is not numeric (a string, an object).
    """
    if not (isinstance(value, np.ndarray) or _is_host_value(value)):
        xp = namespace(value)
        if like is not None and is_floating(like) and namespace(like) is xp:
            return xp.astype(value, like.dtype, copy=False)
        return value if is_floating(value) else xp.astype(value, xp.float64)
    if like is not None and not isinstance(like, np.ndarray):
        return _as_array_like(value, like)
    array = np.asarray(value)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
    ):
        raise TypeError(f"cannot use a value of type {type(value).__name__} in a Tensor operation")
    if like is not None and np.issubdtype(like.dtype, np.floating):
        return array.astype(like.dtype, copy=False)
    if not np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float64)
    return array


def _is_host_value(value: Any) -> bool:
    """Numbers, sequences and NumPy scalars: what np.asarray takes (not another module's array)."""
    return isinstance(value, (int, float, bool, np.generic, list, tuple, str)) or value is None


def _as_array_like(value: Any, like: Array) -> Array:
    """A host value in ``like``'s array module (and device), in like's float dtype."""
    array = as_array(value)  # the checks and the float dtype, on the host first
    xp = namespace(like)
    dtype = like.dtype if is_floating(like) else xp.float64
    return xp.asarray(array, dtype=dtype)


def normalize_axis(axis: int | tuple[int, ...] | None, ndim: int) -> tuple[int, ...]:
    """``axis`` as a sorted tuple of non-negative axes of an ``ndim``-dimensional array (every
    axis for None). Raises ShapeError for an axis out of range."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ShapeError(f"axis {a} is out of range for an array of {ndim} dimensions")
    return tuple(sorted(a % max(ndim, 1) for a in axes))


# --- NumPy speed: cached constant arrays --------------------------------------------------------
# NumPy's SIMD loop for np.maximum runs only when neither operand is a broadcast scalar, and BLAS's
# gemv sums the rows of a batch faster than np.sum; both need a constant array of the right shape,
# kept here (read-only, shared). benchmarks/README.md has the numbers.

# Up to this many elements relu() compares against a cached array of zeros; bigger arrays
# (evaluation batches) take the scalar road rather than keep a large array of zeros alive.
_ZEROS_MAX = 1 << 20


@functools.lru_cache(maxsize=8)
def _zeros(shape: tuple[int, ...], dtype: np.dtype) -> Array:
    zeros = np.zeros(shape, dtype)
    zeros.flags.writeable = False  # shared by every caller
    return zeros


@functools.lru_cache(maxsize=32)
def _ones(n: int, dtype: np.dtype) -> Array:
    ones = np.ones(n, dtype)
    ones.flags.writeable = False  # shared by every caller
    return ones


def relu(x: Array, out: Array | None = None) -> Array:
    """max(x, 0) elementwise, into ``out`` if given (it may be x). x: any shape.

    The same values as ``np.maximum(x, 0)``, NaN and the sign of zero included. ``out`` is
    NumPy's (other modules write into it through ``out[...] =``, which costs a copy).
    """
    if not isinstance(x, np.ndarray):
        xp = namespace(x)
        result = xp.maximum(x, xp.zeros((), dtype=x.dtype))
        if out is None:
            return result
        out[...] = result
        return out
    zero = _zeros(x.shape, x.dtype) if x.size <= _ZEROS_MAX and x.dtype.kind == "f" else 0
    return np.maximum(x, zero, out=out)


def batch_sum(d: Array) -> Array:
    """d summed over its rows: (N, M) -> (M,), as a bias gradient is; ``d.sum(axis=0)``.

    Floats as the product ones(N) @ d (BLAS's gemv); a new array, never a view of ``d``.
    """
    if not isinstance(d, np.ndarray):  # (the cached ones are NumPy's)
        return namespace(d).sum(d, axis=0)
    if d.dtype.kind != "f":  # BLAS is for floats; anything else sums as NumPy does
        return d.sum(axis=0)
    return np.matmul(_ones(d.shape[0], d.dtype), d)


def row_sums(x: Array) -> Array:
    """Each row of x summed: (N, K) -> (N,); ``x.sum(axis=1)``, as the product x @ ones(K).

    x: a float array. A new array, never a view of ``x``.
    """
    if not isinstance(x, np.ndarray):
        return namespace(x).sum(x, axis=1)
    return np.matmul(x, _ones(x.shape[1], x.dtype))
