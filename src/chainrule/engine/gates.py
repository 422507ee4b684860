"""Every gate of the engine: forward and backward side by side, simplest first.

The contract (see ``Gate``): ``forward`` takes NumPy arrays, returns one array and caches on the
gate only what the local gradient needs; ``backward`` takes the upstream gradient ``dout`` (same
shape as the output), never modifies it, and returns one gradient per input, in input order
(``None`` for an input that has no gradient). A gate instance serves one call; the engine calls
``release`` after backward so caches never outlive their step.

Two things the engine tells a gate, and three a gate tells the engine:
- ``needs_input_grad``: which inputs want a gradient (PyTorch's name). A gate may skip the work
  for the others and return ``None``: the data batch fed to the first layer needs none, and
  skipping its dx saves one of the six matrix products of a 2-layer step.
- ``fresh_grads``: True when backward always returns newly allocated arrays that nothing else
  holds, so the engine may add later contributions into them in place. Gates that hand back
  ``dout`` itself or a view of it (add, sub, sum, reshape, transpose) say False.
- ``saved_inputs``: the inputs whose arrays the gate keeps for backward (None: all of them, the
  safe default). ``backward()`` refuses a graph in which one of those was changed in place after
  the forward pass; gates that keep only shapes, or their own output, say ``()``.
- ``view_of``: the input whose array the output may be a view of (reshape, transpose), so that
  an in-place change of that input is a change of the output too (None for the others).

One gradient may come back unformed: a dense layer's weight gradient dᵀx is returned as an
``OuterProduct`` holding d and x. Formed, it is an ordinary array (``np.asarray`` forms it);
left as factors, the optimizer can apply W <- b W - lr dᵀx as one BLAS call that writes into W,
so the update costs no pass over W of its own (see ``chainrule.engine.blas``).

Half precision: gates take float16 and keep it for their outputs and gradients, but every sum
(a reduction, a broadcast input's gradient, a loss's mean) is accumulated in float32, as NumPy's
``np.mean`` does for float16: float16's largest number is 65504 and its 11-bit sums stall
(2048 + 1 = 2048), so a float16 accumulator makes a mean over 70,000 elements NaN.

Gates know nothing of Tensors or of the rest of the graph. That keeps each one checkable alone
against finite differences, and keeps the array code in one place (a CuPy swap touches only this
file, the losses and the data preprocessing).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from chainrule.engine.errors import ShapeError

Array = np.ndarray


_FLOAT32 = np.dtype(np.float32)


def accumulator(dtype: np.dtype) -> np.dtype:
    """The dtype to add up values of ``dtype`` in: float32 for float16, else ``dtype`` itself.

    NumPy's own rule for ``np.mean`` on float16 (see the module docstring for why).
    """
    return _FLOAT32 if dtype == np.float16 else dtype


def reduce_sum(x: Array, axis: tuple[int, ...], keepdims: bool = False) -> Array:
    """``x`` summed over ``axis``, accumulated in ``accumulator(x.dtype)``, in x's dtype.

    x: any shape; returns an array (0-d when every axis is summed away), never a NumPy scalar.
    A float16 sum too large for float16 is inf (with NumPy's overflow warning), as it would be
    exactly; float32 keeps every other float16 sum to float16's precision.
    """
    out = x.sum(axis=axis, keepdims=keepdims, dtype=accumulator(x.dtype))
    return np.asarray(out).astype(x.dtype, copy=False)


def unbroadcast(grad: Array, shape: tuple[int, ...]) -> Array:
    """Sum ``grad`` over the axes that broadcasting added or stretched, back to ``shape``.

    grad: the gradient of a broadcast result, shape ``np.broadcast_shapes(shape, ...)``.
    Returns an array of ``shape``. The chain rule says so: an input copied along an axis receives
    the sum of the gradients of all its copies.
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
    """The broadcast shape of two inputs, or a ShapeError naming the gate and both shapes."""
    try:
        return np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(
            f"{name}: shapes {a.shape} and {b.shape} cannot be broadcast together"
        ) from None


@functools.lru_cache(maxsize=32)
def _ones(n: int, dtype: np.dtype) -> Array:
    ones = np.ones(n, dtype)
    ones.flags.writeable = False  # shared by every caller
    return ones


# Up to this many elements relu() compares against a cached array of zeros: NumPy's SIMD loop
# for np.maximum runs only when neither operand is a broadcast scalar (8.4 against 25 µs on
# 128 x 512 float32, NumPy 2.4). Bigger arrays (evaluation batches) take the scalar road rather
# than keep a large array of zeros alive.
_ZEROS_MAX = 1 << 20


@functools.lru_cache(maxsize=8)
def _zeros(shape: tuple[int, ...], dtype: np.dtype) -> Array:
    zeros = np.zeros(shape, dtype)
    zeros.flags.writeable = False  # shared by every caller
    return zeros


def relu(x: Array, out: Array | None = None) -> Array:
    """max(x, 0) elementwise, into ``out`` if given (it may be x). Any shape.

    The same values as ``np.maximum(x, 0)``, NaN and the sign of zero included.
    """
    zero = _zeros(x.shape, x.dtype) if x.size <= _ZEROS_MAX and x.dtype.kind == "f" else 0
    return np.maximum(x, zero, out=out)


def batch_sum(d: Array) -> Array:
    """d summed over its rows: (N, M) -> (M,), as a bias gradient is.

    As the product ones(N) @ d: BLAS's gemv is about twice as quick as ``np.add.reduce(d, 0)``
    on a 128 x 512 batch (4.8 against 9.3 µs), and it is on every step of every layer.
    """
    if d.dtype.kind != "f":  # BLAS is for floats; anything else sums as NumPy does
        return np.add.reduce(d, axis=0)
    return np.matmul(_ones(d.shape[0], d.dtype), d)


class OuterProduct:
    """The array ``d.T @ x``, kept as its two factors until someone needs it formed.

    d: (B, M), x: (B, N); the array is (M, N): a weight gradient summed over a batch of B rows.
    ``form()`` (or ``np.asarray``) computes it; ``chainrule.engine.blas.gemm_tn`` can instead add
    ``alpha * d.T @ x`` straight into another array, which is what optimizers do with it.
    """

    __slots__ = ("d", "x")

    def __init__(self, d: Array, x: Array) -> None:
        self.d, self.x = d, x

    @property
    def shape(self) -> tuple[int, int]:
        return (self.d.shape[1], self.x.shape[1])

    @property
    def dtype(self) -> np.dtype:
        return np.result_type(self.d, self.x)

    def form(self, out: Array | None = None) -> Array:
        """The (M, N) array d.T @ x (into ``out`` if given)."""
        return np.matmul(self.d.T, self.x, out=out)

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> Array:
        formed = self.form()
        return formed if dtype is None else formed.astype(dtype, copy=False)


class Gate:
    """One node: forward computes and caches; backward maps dout to one gradient per input."""

    name = "gate"
    fresh_grads = True
    needs_input_grad: tuple[bool, ...] | None = None  # None: all of them
    saved_inputs: tuple[int, ...] | None = None  # kept for backward; None: all of them
    view_of: int | None = None  # the input the output may be a view of

    def forward(self, *xs: Array) -> Array:
        raise NotImplementedError

    def needs(self, i: int) -> bool:
        """Whether input ``i`` wants a gradient (True unless the engine said otherwise)."""
        return self.needs_input_grad is None or self.needs_input_grad[i]

    def backward(self, dout: Array) -> tuple[Array | None, ...]:
        raise NotImplementedError

    def release(self) -> None:
        """Drop the cache once backward has run (a gate serves one call)."""
        self.__dict__.clear()

    def describe(self) -> str:
        """Short label for tables and drawings, e.g. ``mul`` or ``pow 2``."""
        return self.name


# --- binary arithmetic, with broadcasting -----------------------------------------------------


class Add(Gate):
    """out = a + b. Local gradients 1 and 1: the gate routes dout unchanged to both inputs."""

    name = "add"
    saved_inputs = ()  # keeps no input array
    fresh_grads = False  # hands back dout itself, or a view of it

    def forward(self, a: Array, b: Array) -> Array:
        broadcast_shape(self.name, a, b)
        self.a_shape, self.b_shape = a.shape, b.shape
        return np.asarray(a + b)

    def backward(self, dout: Array) -> tuple[Array, Array]:
        return unbroadcast(dout, self.a_shape), unbroadcast(dout, self.b_shape)


class Sub(Gate):
    """out = a - b. Local gradients 1 and -1."""

    name = "sub"
    saved_inputs = ()  # keeps no input array
    fresh_grads = False  # hands back dout itself, or a view of it

    def forward(self, a: Array, b: Array) -> Array:
        broadcast_shape(self.name, a, b)
        self.a_shape, self.b_shape = a.shape, b.shape
        return np.asarray(a - b)

    def backward(self, dout: Array) -> tuple[Array, Array]:
        return unbroadcast(dout, self.a_shape), unbroadcast(np.asarray(-dout), self.b_shape)


class Mul(Gate):
    """out = a * b. Each input's local gradient is the other input: the gate 'swaps' them."""

    name = "mul"

    def forward(self, a: Array, b: Array) -> Array:
        broadcast_shape(self.name, a, b)
        self.a, self.b = a, b
        return np.asarray(a * b)

    def backward(self, dout: Array) -> tuple[Array | None, Array | None]:
        a, b = self.a, self.b
        da = unbroadcast(np.asarray(dout * b), a.shape) if self.needs(0) else None
        db = unbroadcast(np.asarray(dout * a), b.shape) if self.needs(1) else None
        return da, db


class Div(Gate):
    """out = a / b. d/da = 1/b, d/db = -a/b**2."""

    name = "div"

    def forward(self, a: Array, b: Array) -> Array:
        broadcast_shape(self.name, a, b)
        self.a, self.b = a, b
        return np.asarray(a / b)

    def backward(self, dout: Array) -> tuple[Array, Array]:
        a, b = self.a, self.b
        da = np.asarray(dout / b)
        return unbroadcast(da, a.shape), unbroadcast(np.asarray(-da * a / b), b.shape)


class Maximum(Gate):
    """out = max(a, b) elementwise. The larger input gets dout, the other 0.

    On a tie the gradient goes to ``b`` (the right-hand input), so ``maximum(x, 0)`` agrees with
    ``relu(x)`` and its documented derivative 0 at x = 0.
    """

    name = "max"
    saved_inputs = ()  # keeps no input array

    def forward(self, a: Array, b: Array) -> Array:
        broadcast_shape(self.name, a, b)
        self.a_wins = a > b
        self.a_shape, self.b_shape = a.shape, b.shape
        return np.asarray(np.maximum(a, b))

    def backward(self, dout: Array) -> tuple[Array, Array]:
        da = np.where(self.a_wins, dout, 0).astype(dout.dtype, copy=False)
        db = np.where(self.a_wins, 0, dout).astype(dout.dtype, copy=False)
        return unbroadcast(da, self.a_shape), unbroadcast(db, self.b_shape)


# --- unary elementwise ----------


class Neg(Gate):
    """out = -x. Local gradient -1."""

    name = "neg"
    saved_inputs = ()  # keeps no input array

    def forward(self, x: Array) -> Array:
        return np.asarray(-x)

    def backward(self, dout: Array) -> tuple[Array]:
        return (np.asarray(-dout),)


class Pow(Gate):
    """out = x ** p for a constant p. d/dx = p * x**(p-1).

    p = 0: out is the constant 1, so d/dx = 0 everywhere, x = 0 included, where the formula
    would give 0 * inf = NaN (PyTorch returns 0 too). For every other p the formula's IEEE values
    are the true derivative or its limit: 1 at x = 0 for p = 1 (0**0 = 1); 0 at x = 0 for p > 1;
    inf at x = 0 for 0 < p < 1 (x**0.5 is vertical there); exact at negative x for an integer p;
    NaN at negative x for a non-integer p, where the value x**p is NaN as well.
    """

    name = "pow"

    def __init__(self, exponent: float) -> None:
        self.exponent = exponent

    def describe(self) -> str:
        return f"pow {self.exponent:g}"

    def forward(self, x: Array) -> Array:
        self.x = x
        return np.asarray(x**self.exponent)

    def backward(self, dout: Array) -> tuple[Array]:
        p = self.exponent
        if p == 0:
            return (np.zeros_like(self.x),)
        return (np.asarray(dout * (p * self.x ** (p - 1))),)


class Exp(Gate):
    """out = e**x. The local gradient is the output itself, so that is all the cache holds."""

    name = "exp"
    saved_inputs = ()  # keeps its output, not its input

    def forward(self, x: Array) -> Array:
        self.out = np.asarray(np.exp(x))
        return self.out

    def backward(self, dout: Array) -> tuple[Array]:
        return (np.asarray(dout * self.out),)


class Log(Gate):
    """out = ln(x). d/dx = 1/x."""

    name = "log"

    def forward(self, x: Array) -> Array:
        self.x = x
        return np.asarray(np.log(x))

    def backward(self, dout: Array) -> tuple[Array]:
        return (np.asarray(dout / self.x),)


class ReLU(Gate):
    """out = max(x, 0). d/dx = 1 where x > 0, else 0.

    At the kink x = 0 we take the derivative to be 0 (a subgradient; the same choice as PyTorch).
    The cache is the output, which already says where x > 0.
    """

    name = "relu"
    saved_inputs = ()  # keeps its output, not its input

    def forward(self, x: Array) -> Array:
        self.out = np.asarray(relu(x))
        return self.out

    def backward(self, dout: Array) -> tuple[Array]:
        return (np.asarray(dout * (self.out > 0)),)


class Sigmoid(Gate):
    """out = 1 / (1 + e**-x). d/dx = out * (1 - out) = sigmoid(x) * sigmoid(-x).

    Both tails keep their relative precision. With e = e**-|x|, which never overflows,
    sigmoid(|x|) = 1 / (1 + e) and sigmoid(-|x|) = e / (1 + e): sigmoid(-40) is 4.2484e-18, not
    0, and log(sigmoid(x)) stays finite until sigmoid(x) itself underflows (x < -745 in float64,
    x < -104 in float32). For the derivative the complement sigmoid(-x) is cached beside the
    output, because 1 - out rounds to 0 from x = 37 on (float64; 17 in float32) where the true
    derivative is e**-x.
    """

    name = "sigmoid"
    saved_inputs = ()  # keeps its output, not its input

    def forward(self, x: Array) -> Array:
        with np.errstate(under="ignore"):  # e**-|x| underflowing to 0 is the right value
            e = np.exp(-np.abs(x))
            big = 1 / (1 + e)  # sigmoid(|x|), in [0.5, 1]
            small = e * big  # sigmoid(-|x|), in [0, 0.5]
        positive = x >= 0  # (False for NaN: NaN either way)
        self.out = np.where(positive, big, small)
        self.complement = np.where(positive, small, big)  # sigmoid(-x) = 1 - out, exactly
        return self.out

    def backward(self, dout: Array) -> tuple[Array]:
        with np.errstate(under="ignore"):  # a tail's tiny derivative may round to 0
            return (np.asarray(dout * (self.out * self.complement)),)


class Tanh(Gate):
    """out = tanh(x). d/dx = 1 - out**2.

    Unlike sigmoid's lower tail, tanh has no small output to lose: near +-1 its outputs carry
    only absolute precision, and from |x| = 19 (float64; 10 in float32) tanh(x) rounds to +-1
    exactly, where 1 - out**2 is 0 while sech(x)**2 is below the float's epsilon (1.3e-16;
    8e-9 in float32). Those digits do not matter: the derivative is then below the float's
    resolution of tanh's largest slope (1, at x = 0), and 0 is the exact derivative of the
    function as computed, whose output there is the constant +-1. Keeping them would take an
    exp of x in every backward, for every tanh unit (a 4 e**-2|x| / (1 + e**-2|x|)**2 form), to
    gain nothing a following gate can use.
    """

    name = "tanh"
    saved_inputs = ()  # keeps its output, not its input

    def forward(self, x: Array) -> Array:
        self.out = np.asarray(np.tanh(x))
        return self.out

    def backward(self, dout: Array) -> tuple[Array]:
        return (np.asarray(dout * (1 - self.out**2)),)


# --- reductions and shape ----------


def _normalize_axis(axis: int | tuple[int, ...] | None, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ShapeError(f"axis {a} is out of range for an array of {ndim} dimensions")
    return tuple(sorted(a % max(ndim, 1) for a in axes))


class Sum(Gate):
    """out = x summed over ``axis``. Every summed element gets dout: the gradient is copied back."""

    name = "sum"
    saved_inputs = ()  # keeps no input array
    fresh_grads = False  # hands back dout itself, or a view of it

    def __init__(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> None:
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x: Array) -> Array:
        self.axes = _normalize_axis(self.axis, x.ndim)
        self.x_shape = x.shape
        return reduce_sum(x, self.axes, self.keepdims)

    def backward(self, dout: Array) -> tuple[Array]:
        if not self.keepdims:
            dout = np.expand_dims(dout, self.axes)
        return (np.broadcast_to(dout, self.x_shape),)


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
        self.axes = _normalize_axis(self.axis, x.ndim)
        self.x_shape = x.shape
        acc = accumulator(x.dtype)
        total = x.sum(axis=self.axes, keepdims=self.keepdims, dtype=acc)
        self.count = math.prod(x.shape[a] for a in self.axes)
        if self.count == 0 and total.size:
            raise ShapeError(
                f"mean: no elements to average over (shape {x.shape}, axes {self.axes}); the "
                "mean of nothing is undefined (a sum over nothing is 0)"
            )
        return np.asarray(total / self.count).astype(x.dtype, copy=False)

    def backward(self, dout: Array) -> tuple[Array]:
        share = dout.astype(accumulator(dout.dtype), copy=False) / self.count
        return super().backward(np.asarray(share).astype(dout.dtype, copy=False))


class Reshape(Gate):
    """out = x with a new shape. The gradient is dout with the old shape back."""

    name = "reshape"
    saved_inputs = ()  # keeps no input array
    view_of = 0  # (NumPy returns a view where it can)
    fresh_grads = False  # hands back dout itself, or a view of it

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x: Array) -> Array:
        self.x_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ShapeError(
                f"reshape: cannot reshape an array of shape {x.shape} ({x.size} elements) "
                f"into shape {self.shape}"
            ) from None

    def backward(self, dout: Array) -> tuple[Array]:
        return (dout.reshape(self.x_shape),)


class Transpose(Gate):
    """out = x with its axes permuted. The gradient undoes the permutation."""

    name = "transpose"
    saved_inputs = ()  # keeps no input array
    view_of = 0  # (NumPy returns a view where it can)
    fresh_grads = False  # hands back dout itself, or a view of it

    def __init__(self, axes: tuple[int, ...] | None = None) -> None:
        self.axes = axes

    def forward(self, x: Array) -> Array:
        axes = tuple(reversed(range(x.ndim))) if self.axes is None else self.axes
        if sorted(a % max(x.ndim, 1) for a in axes) != list(range(x.ndim)):
            raise ShapeError(f"transpose: axes {axes} are not a permutation of {x.ndim} axes")
        self.inverse = tuple(np.argsort([a % x.ndim for a in axes]))
        return x.transpose(axes)

    def backward(self, dout: Array) -> tuple[Array]:
        return (dout.transpose(self.inverse),)


class SumOfSquares(Gate):
    """out = sum(x**2) over every element: the L2 penalty of one weight array, in one pass.

    x: any shape. out: 0-d. d/dx = 2 * x. One gate instead of mul then sum: no (x * x) temporary.
    """

    name = "sum_of_squares"

    def forward(self, x: Array) -> Array:
        self.x = x
        flat = x.reshape(-1).astype(accumulator(x.dtype), copy=False)
        return np.asarray(np.dot(flat, flat)).astype(x.dtype, copy=False)

    def backward(self, dout: Array) -> tuple[Array]:
        return (np.asarray(self.x * (2 * dout)),)


# --- products ----------


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
        return np.matmul(a, b)

    def backward(self, dout: Array) -> tuple[Array | None, Array | None]:
        # Promote vectors to matrices so one pair of formulas covers every case.
        a = self.a[None, :] if self.a.ndim == 1 else self.a
        b = self.b[:, None] if self.b.ndim == 1 else self.b
        d = dout
        if self.b.ndim == 1:
            d = np.expand_dims(d, -1)
        if self.a.ndim == 1:
            d = np.expand_dims(d, -2)
        da = db = None
        if self.needs(0):
            da = unbroadcast(np.matmul(d, np.swapaxes(b, -1, -2)), a.shape).reshape(self.a.shape)
        if self.needs(1):
            db = unbroadcast(np.matmul(np.swapaxes(a, -1, -2), d), b.shape).reshape(self.b.shape)
        return da, db


class Affine(Gate):
    """out = x @ W.T + b: a fully connected layer in one gate.

    x: (N, D), W: (M, D) stored [out x in] as the maths writes it, b: (M,). out: (N, M).
    dx = dout @ W (N, D); dW = dout.T @ x (M, D), returned unformed as an ``OuterProduct``;
    db = dout summed over the batch (M,). One gate instead of matmul, transpose and add saves two
    passes over (N, M) memory.
    """

    name = "affine"
    saved_inputs = (0, 1)  # x and W; of b only its gradient's shape

    def forward(self, x: Array, W: Array, b: Array) -> Array:
        if x.ndim != 2 or W.ndim != 2 or b.ndim != 1:
            raise ShapeError(
                f"affine: expected x (N, D), W (M, D) and b (M,), got shapes {x.shape}, "
                f"{W.shape} and {b.shape}"
            )
        if x.shape[1] != W.shape[1] or W.shape[0] != b.shape[0]:
            raise ShapeError(
                f"affine: x {x.shape}, W {W.shape} and b {b.shape} do not fit: expected x (N, D), "
                f"W (M, D), b (M,)"
            )
        self.x, self.W = x, W
        out = x @ W.T
        out += b
        return out

    def backward(self, dout: Array) -> tuple[Array | None, Array | None, Array | None]:
        return self._grads(dout)

    def _grads(self, d: Array) -> tuple[Array | None, Array | None, Array | None]:
        dx = d @ self.W if self.needs(0) else None  # not for the data batch: a whole product
        dW = OuterProduct(d, self.x) if self.needs(1) else None  # formed by whoever needs it
        db = batch_sum(d) if self.needs(2) else None
        return dx, dW, db


class AffineReLU(Affine):
    """out = max(x @ W.T + b, 0): a hidden layer in one gate.

    Shapes as ``Affine``. The ReLU is applied in place on the affine output, and its mask
    (N, M booleans) is kept for backward, so the hidden layer costs one (N, M) float buffer
    instead of three. ReLU'(0) = 0 as in ``ReLU``.
    """

    name = "affine_relu"

    def forward(self, x: Array, W: Array, b: Array) -> Array:
        out = super().forward(x, W, b)
        # A maximum, not out *= mask: the product would turn a negative into -0.0 and -inf into
        # NaN, where ReLU gives +0.0 and the ReLU gate agrees (and it is no quicker: 18.5 µs
        # with the mask's comparison against 8.4 on 128 x 512 float32).
        relu(out, out=out)
        self.mask = np.greater(out, 0)  # max(x, 0) > 0 exactly where x > 0 (NaN: neither)
        return out

    def backward(self, dout: Array) -> tuple[Array | None, Array | None, Array | None]:
        # A new array, not dout in place: dout may be another gate's data.
        return self._grads(np.multiply(dout, self.mask))


# --- fused losses ----------


def check_labels(scores: Array, y: Array, name: str = "loss") -> Array:
    """Validate a batch for a loss named ``name``: scores (N, K) with N, K >= 1, and labels y,
    N integers in [0, K). Returns y as an array.

    Raises ShapeError for shapes, an empty batch (the mean over no examples is undefined) or no
    classes; DataError for labels that are not integers or out of range.
    """
    from chainrule.engine.errors import DataError

    if scores.ndim != 2:
        raise ShapeError(f"{name}: scores must be (N, K), got shape {scores.shape}")
    n, k = scores.shape
    if n == 0:
        raise ShapeError(
            f"{name}: the batch is empty (scores of shape {scores.shape}); the loss is a mean "
            "over the batch and needs at least one example"
        )
    if k == 0:
        raise ShapeError(f"{name}: the scores have no classes (shape {scores.shape})")
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ShapeError(
            f"{name}: labels must be a vector of N = {n} integers, got shape {y.shape}"
        )
    if y.dtype.kind not in "iu":  # (np.issubdtype says the same, slower: this runs every step)
        raise DataError(f"{name}: labels must be integers, got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= k:
        raise DataError(
            f"{name}: labels must lie in [0, {k - 1}] for {k} classes, "
            f"got values from {y.min()} to {y.max()}"
        )
    return y


class SoftmaxCrossEntropy(Gate):
    """out = mean over the batch of -log softmax(scores)[y]: softmax and its loss in one gate.

    scores: (N, K), labels y: (N,) given to the constructor (they get no gradient). out: 0-d.
    Stable: the row maximum is subtracted before exp. The gradient has the famous simple form
    dscores = (softmax(scores) - onehot(y)) / N, so the cache is just the probabilities.
    Infinite scores take their limits, value and gradient alike (see ``chainrule.nn.losses``): a
    row whose maximum is +inf has the softmax onehot(that class) when it is its only +inf, and is
    NaN when it has two or more. An empty batch is a ShapeError.
    """

    name = "softmax_cross_entropy"
    saved_inputs = ()  # keeps no input array

    def __init__(self, y: Array) -> None:
        self.y = y

    def forward(self, scores: Array) -> Array:
        y = check_labels(scores, self.y, self.name)
        n, k = scores.shape
        self.dtype = scores.dtype
        scores = scores.astype(accumulator(scores.dtype), copy=False)  # float16: in float32
        # Entries picked per row (the max, the label) by their index in the flattened array:
        # on a batch of 128 x 10, 2-D fancy indexing costs several times the arithmetic.
        starts = np.arange(0, n * k, k, dtype=np.intp)
        top = scores.argmax(axis=1)
        top += starts
        # inf - inf is NaN (settled below); a finite difference past the float range is -inf,
        # whose exp 0 is the exact limit: neither is worth a warning
        with np.errstate(invalid="ignore", over="ignore"):
            shifted = scores - scores.reshape(-1)[top][:, None]
        label = y.astype(np.intp, copy=False) + starts  # (uint64 + int64 would be float64)
        shifted_y = shifted.reshape(-1)[label]
        exp = np.exp(shifted, out=shifted)
        flat = exp.reshape(-1)
        # log sum_j e^(s_j - max) = log(1 + rest), rest = the sum without the max's own 1.
        # log1p keeps the digits of a confident prediction, where rest is tiny.
        flat[top] = 0
        rest = np.matmul(exp, _ones(k, exp.dtype))  # row sums: gemv, 3 µs quicker than reduce
        flat[top] = 1
        shifted_y -= np.log1p(rest)
        rest += 1
        exp *= np.reciprocal(rest, out=rest)[:, None]  # N divisions, not N x K
        self.probs, self.label = exp, label
        loss = -np.add.reduce(shifted_y) / n
        if not np.isfinite(loss):  # a non-finite score somewhere (finite ones never get here)
            loss = self._non_finite_rows(scores, top, shifted_y)
        return np.asarray(loss).astype(self.dtype, copy=False)

    def _non_finite_rows(self, scores: Array, top: Array, shifted_y: Array) -> Array:
        """Limits where s - max was inf - inf = NaN. A row whose maximum is +inf, at class j,
        alone: the softmax is onehot(j) and the loss 0 (j = y) or +inf (j != y). Two or more
        +inf, a NaN, or only -inf: undefined, NaN loss and NaN probabilities (the last step
        would otherwise leave a one-class row's probability at 1). Returns the batch's loss."""
        n, k = scores.shape
        rows = np.flatnonzero(scores.reshape(-1)[top] == np.inf)
        if rows.size:
            j = top[rows] - rows * k  # the column of each row's (first) +inf
            alone = np.count_nonzero(scores[rows] == np.inf, axis=1) == 1
            on_label = self.label[rows] == top[rows]
            shifted_y[rows] = np.where(alone, np.where(on_label, 0, -np.inf), np.nan)
            self.probs[rows] = np.arange(k) == j[:, None]
        self.probs[np.isnan(shifted_y)] = np.nan
        return -np.add.reduce(shifted_y) / n

    def backward(self, dout: Array) -> tuple[Array]:
        n = self.probs.shape[0]
        # The probabilities are needed by no one else (a gate serves one call): reuse them.
        dscores, self.probs = self.probs, None
        dscores.reshape(-1)[self.label] -= 1  # one label per row: no index repeats
        dscores *= dout.astype(dscores.dtype, copy=False) / n  # (float16: 1/n in float32)
        return (dscores.astype(self.dtype, copy=False),)


class MulticlassHinge(Gate):
    """out = mean over the batch of sum over j != y of max(0, s_j - s_y + 1): the SVM loss.

    scores: (N, K), labels y: (N,). out: 0-d. Margin 1. Each positive margin adds +1 to ds_j and
    -1 to ds_y. At a kink (a margin of exactly 0) the term contributes no gradient, as ReLU.
    Infinite margins are limits (+inf: a positive margin; -inf: 0); a NaN margin (inf - inf, or
    a NaN score) makes the loss NaN and its row's gradient NaN (see ``chainrule.nn.losses``). An
    empty batch is a ShapeError.
    """

    name = "multiclass_hinge"
    saved_inputs = ()  # keeps no input array

    def __init__(self, y: Array) -> None:
        self.y = y

    def forward(self, scores: Array) -> Array:
        y = check_labels(scores, self.y, self.name)
        n = scores.shape[0]
        self.dtype = scores.dtype
        scores = scores.astype(accumulator(scores.dtype), copy=False)  # float16: in float32
        rows = np.arange(n)
        with np.errstate(invalid="ignore", over="ignore"):  # +-inf scores: limits, or NaN
            margins = scores - scores[rows, y][:, None] + 1  # (the sum below may still warn)
        margins[rows, y] = 0
        relu(margins, out=margins)
        self.positive, self.y = margins > 0, y
        total = margins.sum()
        # NaN > 0 is False: without this, a NaN loss would come with a finite gradient
        self.undefined = np.isnan(margins).any(axis=1) if np.isnan(total) else None
        return np.asarray(total / n).astype(self.dtype, copy=False)

    def backward(self, dout: Array) -> tuple[Array]:
        n = self.positive.shape[0]
        acc = accumulator(self.dtype)
        dscores = self.positive.astype(acc)
        dscores[np.arange(n), self.y] = -dscores.sum(axis=1)
        dscores *= dout.astype(acc, copy=False) / n  # (float16: 1/n in float32)
        if self.undefined is not None:
            dscores[self.undefined] = np.nan
        return (dscores.astype(self.dtype, copy=False),)
