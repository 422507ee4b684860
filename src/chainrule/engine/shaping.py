"""The gates that change shapes, forward and backward side by side: sum, mean and the sum of
squares (reductions), reshape and transpose (views), and the matrix product.

Their sums are accumulated in float32 for float16 inputs (see ``arrays``). The contract is
``gates.Gate``'s.
"""

from __future__ import annotations

import math

import numpy as np

from chainrule.engine.arrays import accumulator, normalize_axis, reduce_sum, unbroadcast, zero_d
from chainrule.engine.backend import namespace
from chainrule.engine.errors import ShapeError
from chainrule.engine.gates import Gate

Array = np.ndarray


class Sum(Gate):
    """out = x summed over ``axis``. Every summed element gets dout: the gradient is copied back."""

    name = "sum"
    saved_inputs = ()  # keeps no input array

    def __init__(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> None:
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x: Array) -> Array:
        self.axes = normalize_axis(self.axis, x.ndim)
        self.x_shape = x.shape
        return reduce_sum(x, self.axes, self.keepdims)

    def backward(self, dout: Array) -> tuple[Array]:
        xp = namespace(dout)
        if not self.keepdims:  # the summed axes back, as ones
            kept = tuple(1 if a in self.axes else n for a, n in enumerate(self.x_shape))
            dout = xp.reshape(dout, kept)
        return (xp.broadcast_to(dout, self.x_shape),)


class Mean(Sum):
    """out = the mean over ``axis``: a Sum whose gradient is divided by the count.

    The sum and the division are done in ``accumulator(x.dtype)`` (float32 for float16), the
    results and gradients are in x's dtype: a float16 mean over 70,000 ones is 1.0, and each
    element's gradient 1/70000 is float16's subnormal 1.4305e-05 (within 0.2%; past 2**25
    elements 1/count rounds to 0 in float16, where only a wider dtype can hold it). A mean over
    no elements is a ShapeError (an empty output, e.g. (0, 3) averaged over axis 1, is fine).
    """

    name = "mean"

    def forward(self, x: Array) -> Array:
        self.axes = normalize_axis(self.axis, x.ndim)
        self.x_shape = x.shape
        acc = accumulator(x.dtype)
        xp = namespace(x)
        total = zero_d(xp.sum(x, axis=self.axes, keepdims=self.keepdims, dtype=acc))
        self.count = math.prod(x.shape[a] for a in self.axes)
        if self.count == 0 and total.size:
            raise ShapeError(
                f"mean: no elements to average over (shape {x.shape}, axes {self.axes}); the "
                "mean of nothing is undefined (a sum over nothing is 0)"
            )
        return xp.astype(zero_d(total / self.count), x.dtype, copy=False)

    def backward(self, dout: Array) -> tuple[Array]:
        xp = namespace(dout)
        share = zero_d(xp.astype(dout, accumulator(dout.dtype), copy=False) / self.count)
        return super().backward(xp.astype(share, dout.dtype, copy=False))


class Reshape(Gate):
    """out = x with a new shape. The gradient is dout with the old shape back."""

    name = "reshape"
    saved_inputs = ()  # keeps no input array
    view_of = 0  # (NumPy returns a view where it can)

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x: Array) -> Array:
        self.x_shape = x.shape
        try:
            return namespace(x).reshape(x, self.shape)
        except ValueError:
            raise ShapeError(
                f"reshape: cannot reshape an array of shape {x.shape} ({x.size} elements) "
                f"into shape {self.shape}"
            ) from None

    def backward(self, dout: Array) -> tuple[Array]:
        return (namespace(dout).reshape(dout, self.x_shape),)


class Transpose(Gate):
    """out = x with its axes permuted. The gradient undoes the permutation."""

    name = "transpose"
    saved_inputs = ()  # keeps no input array
    view_of = 0  # (NumPy returns a view where it can)

    def __init__(self, axes: tuple[int, ...] | None = None) -> None:
        self.axes = axes

    def forward(self, x: Array) -> Array:
        axes = tuple(reversed(range(x.ndim))) if self.axes is None else self.axes
        if sorted(a % max(x.ndim, 1) for a in axes) != list(range(x.ndim)):
            raise ShapeError(f"transpose: axes {axes} are not a permutation of {x.ndim} axes")
        self.inverse = tuple(int(i) for i in np.argsort([a % x.ndim for a in axes]))
        return namespace(x).permute_dims(x, tuple(a % max(x.ndim, 1) for a in axes))

    def backward(self, dout: Array) -> tuple[Array]:
        return (namespace(dout).permute_dims(dout, self.inverse),)


class SumOfSquares(Gate):
    """out = sum(x**2) over every element: the L2 penalty of one weight array, in one pass.

    x: any shape. out: 0-d. d/dx = 2 * x. One gate instead of mul then sum: no (x * x) temporary.
    """

    name = "sum_of_squares"

    def forward(self, x: Array) -> Array:
        self.x = x
        xp = namespace(x)
        flat = xp.astype(xp.reshape(x, (-1,)), accumulator(x.dtype), copy=False)
        # BLAS's dot for NumPy (one pass, no temporary); the standard's vecdot elsewhere
        total = np.dot(flat, flat) if xp is np else xp.vecdot(flat, flat)
        return xp.astype(zero_d(total), x.dtype, copy=False)

    def backward(self, dout: Array) -> tuple[Array]:
        return (zero_d(self.x * (2 * dout)),)


class MatMul(Gate):
    """out = a @ b, for 1-D and 2-D arrays (and stacks of matrices, broadcast as NumPy does).

    With out = A @ B: dA = dout @ B.T and dB = A.T @ dout, the only shapes that fit.
    """

    name = "matmul"

    def forward(self, a: Array, b: Array) -> Array:
        if a.ndim == 0 or b.ndim == 0:
            raise ShapeError(
                f"matmul: inputs must have at least one dimension, got shapes {a.shape} and "
                f"{b.shape} (use * to multiply by a scalar)"
            )
        inner_a = a.shape[-1]
        inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if inner_a != inner_b:
            raise ShapeError(
                f"matmul: shapes {a.shape} and {b.shape} do not fit: the inner sizes "
                f"{inner_a} and {inner_b} differ"
            )
        self.a, self.b = a, b
        return zero_d(namespace(a, b).matmul(a, b))

    def backward(self, dout: Array) -> tuple[Array | None, Array | None]:
        # Promote vectors to matrices so one pair of formulas covers every case.
        a = self.a[None, ...] if self.a.ndim == 1 else self.a
        b = self.b[..., None] if self.b.ndim == 1 else self.b
        xp = namespace(dout)
        d = dout
        if self.b.ndim == 1:
            d = xp.expand_dims(d, axis=-1)
        if self.a.ndim == 1:
            d = xp.expand_dims(d, axis=-2)
        da = db = None
        if self.needs(0):
            da = unbroadcast(xp.matmul(d, xp.matrix_transpose(b)), a.shape)
            da = xp.reshape(da, self.a.shape)
        if self.needs(1):
            db = unbroadcast(xp.matmul(xp.matrix_transpose(a), d), b.shape)
            db = xp.reshape(db, self.b.shape)
        return da, db
