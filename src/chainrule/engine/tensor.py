"""Tensor: an array that remembers the gate that made it, and backward(), the reverse walk.

A Tensor made by a gate keeps that gate and the gate's inputs. ``backward()`` sorts the graph once
(iteratively: a chain of any depth works) and walks it in reverse; each gate gets the gradient of
its output and hands one gradient to each input, which the engine adds up (``autograd``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule.engine import autograd, fused, gates, shaping, versions
from chainrule.engine.arrays import as_array

# (no_grad and is_grad_enabled live in autograd, and are chainrule.engine.tensor's too)
from chainrule.engine.autograd import is_grad_enabled, no_grad, topological_order  # noqa: F401
from chainrule.engine.backend import may_share, to_numpy

_Operator = Callable[["Tensor", Any], "Tensor"]


def _operator(gate: type[gates.Gate], symbol: str, name: str) -> tuple[_Operator, _Operator]:
    """A two-input gate's operator method ``__name__`` and its reflected form ``__rname__``, for
    Tensor: ``x OP y`` records ``gate`` on (x, y); ``y OP x`` with a non-Tensor y (Python then
    calls x's reflected method) records it on (y, x), so the gate sees its inputs in the order
    written. Both results take and give any shapes the gate accepts."""

    def operator(self: Tensor, other: Any) -> Tensor:
        return apply(gate(), self, other)

    def reflected(self: Tensor, other: Any) -> Tensor:
        return apply(gate(), other, self)

    gate_name = gate.__name__
    for method, dunder, doc in (
        (operator, f"__{name}__", f"self {symbol} other: a {gate_name} gate on (self, other)."),
        (reflected, f"__r{name}__", f"other {symbol} self, other not a Tensor: a {gate_name} "
         "gate on (other, self)."),
    ):  # fmt: skip
        method.__name__, method.__qualname__, method.__doc__ = dunder, f"Tensor.{dunder}", doc
    return operator, reflected


class Tensor:
    """An array with a gradient, and the gate (and inputs) that made it.

    data: the values, any shape (a scalar is 0-d); integer and boolean data become float64,
    float32 and float64 stay. grad: a plain attribute, None until ``backward()`` fills it with an
    array of data's shape (a leaf's is its own writable array). requires_grad: whether
    gradients flow to this tensor.

    In-place changes (see ``versions``): ``backward()`` refuses a graph whose kept tensor was
    changed in place after the forward pass by an optimizer step, ``load_state_dict`` or anything
    that called ``mark_modified()``. A write into the array by hand (``t.data[...] = v``) cannot
    be seen: call ``t.mark_modified()`` after one. ``Tensor(t)`` and ``t.detach()`` share t's
    record of changes; rebinding ``t.data`` and ``t += 1`` (a new tensor) are safe.
    """

    __slots__ = ("_gate", "_inputs", "_stamp", "_version", "data", "grad", "name", "requires_grad")
    __array_priority__ = 100  # so ndarray + Tensor calls Tensor.__radd__

    def __init__(self, data: Any, requires_grad: bool = False, name: str | None = None) -> None:
        version = None
        if isinstance(data, Tensor):  # the same array: the same record of in-place changes
            version = data._shared_version()
            data = data.data
        if not (type(data) is np.ndarray and data.dtype.kind == "f"):  # (a gate's output is)
            data = as_array(data)
        self.data: np.ndarray = data
        self.grad: np.ndarray | None = None
        self.requires_grad = requires_grad
        self.name = name
        self._gate: gates.Gate | None = None
        self._inputs: tuple[Tensor, ...] = ()
        self._version: versions.Version | None = version  # made on the first in-place change
        # (_stamp, the clock when apply recorded this tensor's gate, is set by apply only)

    # --- in-place changes ---
    @property
    def version(self) -> int:
        """How many in-place changes of ``data`` chainrule has recorded (see ``mark_modified``)."""
        return 0 if self._version is None else self._version.count

    def mark_modified(self, by: str = "an in-place change") -> None:
        """Record that ``data`` was changed in place, by ``by`` (e.g. ``"SGD.step()"``).

        A graph recorded before this change that kept this tensor for its gradient then refuses
        ``backward()`` with a ChainruleError naming the tensor and ``by``. Optimizers and
        ``Module.load_state_dict`` call it; call it after writing into ``data`` by hand.
        """
        self._shared_version().record(by)

    def _shared_version(self) -> versions.Version:
        if self._version is None:
            self._version = versions.Version()
        return self._version

    # --- plain facts ---
    @property
    def shape(self) -> tuple[int, ...]:
        """data's shape."""
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        """data's dtype."""
        return self.data.dtype

    @property
    def ndim(self) -> int:
        """data's number of dimensions (0 for a scalar)."""
        return self.data.ndim

    @property
    def size(self) -> int:
        """data's number of elements."""
        return self.data.size

    @property
    def gate(self) -> gates.Gate | None:
        """The gate that made this tensor (None for a leaf)."""
        return self._gate

    @property
    def inputs(self) -> tuple[Tensor, ...]:
        """The tensors the gate took as inputs (empty for a leaf)."""
        return self._inputs

    def item(self) -> float:
        """The value of a one-element tensor as a Python float (waits for the GPU there)."""
        return float(to_numpy(self.data).item())

    def numpy(self) -> np.ndarray:
        """data as a NumPy array: data itself on the CPU (not a copy), a copy from a GPU."""
        return to_numpy(self.data)

    def detach(self) -> Tensor:
        """A leaf with the same data (and record of in-place changes) and no history."""
        return Tensor(self)

    def zero_grad(self) -> None:
        """Forget the gradient (the next backward starts from zero)."""
        self.grad = None

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        made_by = f", gate={self._gate.describe()}" if self._gate is not None else ""
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(to_numpy(self.data), precision=4)}{grad}{made_by})"

    # --- operators build the graph: x OP y records the gate on (x, y); a reflected y OP x, where
    # y is not a Tensor, records it on (y, x) ---
    __add__, __radd__ = _operator(gates.Add, "+", "add")
    __sub__, __rsub__ = _operator(gates.Sub, "-", "sub")
    __mul__, __rmul__ = _operator(gates.Mul, "*", "mul")
    __truediv__, __rtruediv__ = _operator(gates.Div, "/", "truediv")
    __matmul__, __rmatmul__ = _operator(shaping.MatMul, "@", "matmul")

    def __neg__(self) -> Tensor:
        return apply(gates.Neg(), self)

    def __pos__(self) -> Tensor:
        return self

    def __pow__(self, exponent: Any) -> Tensor:
        if isinstance(exponent, Tensor):
            raise TypeError("pow: the exponent must be a constant number, not a Tensor")
        if not isinstance(exponent, (int, float, np.integer, np.floating)):
            raise TypeError(f"pow: the exponent must be a number, got {type(exponent).__name__}")
        return apply(gates.Pow(float(exponent)), self)

    # --- methods ---
    def relu(self) -> Tensor:
        """max(x, 0) elementwise, same shape (derivative 0 at 0)."""
        return apply(gates.ReLU(), self)

    def sigmoid(self) -> Tensor:
        """1 / (1 + e^-x) elementwise, same shape."""
        return apply(gates.Sigmoid(), self)

    def tanh(self) -> Tensor:
        """tanh(x) elementwise, same shape."""
        return apply(gates.Tanh(), self)

    def exp(self) -> Tensor:
        """e^x elementwise, same shape."""
        return apply(gates.Exp(), self)

    def log(self) -> Tensor:
        """Natural logarithm elementwise, same shape."""
        return apply(gates.Log(), self)

    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """The sum over ``axis`` (all axes by default): (N, D).sum(axis=1) -> (N,)."""
        return apply(shaping.Sum(axis, keepdims), self)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """The mean over ``axis`` (all axes by default): (N, D).mean(axis=0) -> (D,)."""
        return apply(shaping.Mean(axis, keepdims), self)

    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        """The same elements in a new shape, e.g. (N, H, W) -> reshape(N, -1) -> (N, H*W)."""
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])  # type: ignore[arg-type]
        return apply(shaping.Reshape(tuple(shape)), self)  # type: ignore[arg-type]

    def transpose(self, *axes: int) -> Tensor:
        """Axes permuted as given (reversed by default): (N, D) -> (D, N)."""
        return apply(shaping.Transpose(axes or None), self)

    @property
    def T(self) -> Tensor:
        """The axes reversed: (N, D) -> (D, N)."""
        return apply(shaping.Transpose(), self)

    # --- the reverse walk ---
    def backward(self, grad: Any = None) -> None:
        """Fill ``.grad`` of every tensor in this one's graph that requires a gradient.

        grad: the seed, d(something)/d(self), same shape as self (copied, never kept). It may be
        left out only for a scalar (one element), where it is 1. Raises ShapeError for a missing
        or misshapen seed, ChainruleError for a graph already walked or one whose kept tensor
        was changed in place. Each gate's cache is freed once its backward ran.
        """
        seed = autograd.seed_gradient(self, grad)
        order = topological_order(self)
        versions.check_saved_inputs(order)  # before any gradient is touched
        autograd.accumulate(self, seed, None)
        for node in reversed(order):
            gate = node._gate
            if gate is None:
                continue
            if node.grad is not None:  # (None: nothing reached it; it does not affect the result)
                for parent, g in zip(node._inputs, gate.backward(node.grad)):
                    if g is not None and parent.requires_grad:
                        autograd.accumulate(parent, g, node.grad)
            gate.release()
            node._gate, node._inputs = autograd.SPENT, ()


def as_tensor(value: Any, like: Tensor | None = None) -> Tensor:
    """``value`` if it is a Tensor, else a constant leaf (numbers take ``like``'s float dtype)."""
    if isinstance(value, Tensor):
        return value
    return Tensor(as_array(value, like.data if like is not None else None))


def apply(gate: gates.Gate, *operands: Any) -> Tensor:
    """Run ``gate`` forward on the operands and, when a gradient is needed, record it in the graph.

    operands: Tensors, arrays or numbers, shapes as the gate takes them; the non-Tensors become
    constants with the dtype of the first Tensor operand. Returns the output Tensor (the gate's
    output array, which keeps the gate and inputs when one of them requires a gradient). Raises
    what the gate's forward raises (ShapeError), TypeError for a non-numeric operand.
    """
    if all(isinstance(x, Tensor) for x in operands):  # the common case: no conversions
        inputs: tuple[Tensor, ...] = operands
    else:
        like = next((x for x in operands if isinstance(x, Tensor)), None)
        inputs = tuple(as_tensor(x, like) for x in operands)
    out = Tensor(gate.forward(*[t.data for t in inputs]))
    if gate.view_of is not None and may_share(out.data, inputs[gate.view_of].data):
        # A view changes with its input's array: it shares the input's record of changes.
        out._version = inputs[gate.view_of]._shared_version()
    if is_grad_enabled():
        needs = tuple([t.requires_grad for t in inputs])
        if any(needs):  # (requires_grad may be any truthy value)
            gate.needs_input_grad = needs
            out.requires_grad = True
            out._gate, out._inputs, out._stamp = gate, inputs, versions.clock()
    return out


# --- functions for the gates that are not operators: shapes as the gates' docstrings say ---


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise max(a, b), broadcast. On a tie the gradient goes to b (see gates.Maximum)."""
    return apply(gates.Maximum(), a, b)


def affine(x: Any, W: Any, b: Any) -> Tensor:
    """x @ W.T + b in one gate. x: (N, D), W: (M, D), b: (M,) -> (N, M)."""
    return apply(fused.Affine(), x, W, b)


def affine_relu(x: Any, W: Any, b: Any) -> Tensor:
    """max(x @ W.T + b, 0) in one gate. x: (N, D), W: (M, D), b: (M,) -> (N, M)."""
    return apply(fused.AffineReLU(), x, W, b)


# Methods as functions of any operands (arrays and numbers too): relu(x) is x.relu(), matmul(a, b)
# is a @ b (1-D or 2-D operands, or stacks of matrices: (N, D) @ (D, M) -> (N, M)).
relu, sigmoid, tanh, exp, log = Tensor.relu, Tensor.sigmoid, Tensor.tanh, Tensor.exp, Tensor.log
matmul = Tensor.__matmul__
