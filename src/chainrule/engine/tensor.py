"""Tensor: an array that remembers the gate that made it, and backward(), the reverse walk.

A Tensor made by a gate keeps that gate and the gate's input Tensors. ``backward()`` sorts the graph
once (iteratively, so a chain of any depth works) and walks it in reverse: each gate gets the
gradient of its output and hands one gradient to each input. Gradients add up where a tensor feeds
more than one gate.

In-place changes: a gate keeps its input arrays for backward (mul keeps both factors), so a tensor
changed in place between the forward pass and ``backward()`` would give the gradient at the new
values, silently. Every in-place change chainrule makes (an optimizer step, ``load_state_dict``)
calls ``Tensor.mark_modified``, which ticks a global clock and stamps the tensor with it; ``apply``
stamps each gate it records with the clock; ``backward()`` first checks every gate whose inputs
changed after its stamp and refuses with a ChainruleError naming the tensor and what changed it.
(One stamp per gate, not one version per input: the same answer, at no cost per input.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from chainrule.engine import gates
from chainrule.engine.errors import ChainruleError, ShapeError

_grad_enabled = True

# Ticks at every in-place change made through ``Tensor.mark_modified`` (see the module docstring).
_clock = 0


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Inside this block operations compute values only: no graph, no caches kept."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled() -> bool:
    """Whether operations record the graph now (False inside ``no_grad()``)."""
    return _grad_enabled


_defer_weight_grads = False


@contextlib.contextmanager
def defer_weight_grads() -> Iterator[None]:
    """Inside this block backward leaves a dense layer's weight gradient unformed.

    The gradient dᵀx stays as its two factors (``Tensor.raw_grad`` is a ``gates.OuterProduct``)
    until read, so an optimizer step can add ``-lr * dᵀx`` into the weights inside one matrix
    product. The factors are the arrays of the forward pass: the batch must not be overwritten
    between ``backward()`` and ``step()``. ``fit`` trains inside this block; outside it, backward
    forms every gradient at once.
    """
    global _defer_weight_grads
    previous, _defer_weight_grads = _defer_weight_grads, True
    try:
        yield
    finally:
        _defer_weight_grads = previous


def _as_array(value: Any, like: np.ndarray | None = None) -> np.ndarray:
    """An array for a constant operand; numbers take the dtype of the tensor they meet."""
    array = np.asarray(value)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
    ):
        raise TypeError(f"cannot use a value of type {type(value).__name__} in a Tensor operation")
    if like is not None and np.issubdtype(like.dtype, np.floating):
        # A constant adopts the tensor's float dtype: float32 training stays float32.
        return array.astype(like.dtype, copy=False)
    if not np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float64)
    return array


class _Version:
    """A tensor's in-place changes: how many, the clock at the last one, and what made it."""

    __slots__ = ("by", "count", "last")

    def __init__(self) -> None:
        self.count, self.last, self.by = 0, 0, ""


class Tensor:
    """An array with a gradient, and the gate (and inputs) that made it.

    data: the values, any shape (a scalar is 0-d). grad: same shape, filled in by ``backward()``.
    requires_grad: whether gradients flow to this tensor. Integer and boolean data become float64;
    float32 and float64 stay as they are.

    In-place changes: ``backward()`` refuses (ChainruleError) when a tensor that a gate kept for
    its gradient was changed in place after the forward pass, by an optimizer step or
    ``load_state_dict``, or by anything that called ``mark_modified()``. What chainrule cannot see
    is a write into the NumPy array by hand (``t.data[...] = v``, ``t.data += 1``, ``out=t.data``):
    call ``t.mark_modified()`` after one, or run the forward pass again. ``Tensor(t)`` and
    ``t.detach()`` share t's array and its record of changes; ``Tensor(t.data)`` shares only the
    array. Rebinding (``t.data = new_array``) changes nothing a gate kept, and ``t += 1`` makes a
    new tensor (there are no in-place operators), so both are safe.
    """

    __slots__ = (
        "_gate",
        "_grad",
        "_inputs",
        "_stamp",
        "_version",
        "data",
        "name",
        "requires_grad",
    )
    __array_priority__ = 100  # so ndarray + Tensor calls Tensor.__radd__

    def __init__(self, data: Any, requires_grad: bool = False, name: str | None = None) -> None:
        version = None
        if isinstance(data, Tensor):  # the same array: the same record of in-place changes
            version = data._shared_version()
            data = data.data
        # Most tensors are a gate's float output: skip the checks (a few µs each, every step).
        if not (type(data) is np.ndarray and data.dtype.kind == "f"):
            data = _as_array(data)
        self.data: np.ndarray = data
        self._grad: np.ndarray | gates.OuterProduct | None = None
        self.requires_grad = requires_grad
        self.name = name
        self._gate: gates.Gate | None = None
        self._inputs: tuple[Tensor, ...] = ()
        self._version: _Version | None = version  # made on the first in-place change
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
        global _clock
        _clock += 1
        version = self._shared_version()
        version.count += 1
        version.last, version.by = _clock, by

    def _shared_version(self) -> _Version:
        if self._version is None:
            self._version = _Version()
        return self._version

    def _describe(self) -> str:
        """The tensor for a message: its name if it has one, and its shape and dtype."""
        what = f"tensor {self.name!r}" if self.name else "a tensor"
        return f"{what} of shape {self.shape} {self.dtype}"

    # --- the gradient ---
    @property
    def grad(self) -> np.ndarray | None:
        """d(result)/d(this tensor) after ``backward()``, same shape as data; None before."""
        g = self._grad
        if type(g) is gates.OuterProduct:  # left unformed by backward: form it on first look
            g = self._grad = g.form()
        return g

    @grad.setter
    def grad(self, value: np.ndarray | None) -> None:
        self._grad = value

    @property
    def raw_grad(self) -> np.ndarray | gates.OuterProduct | None:
        """The gradient as backward left it: an array, or for a dense layer's weight an
        ``OuterProduct`` not yet formed (optimizers apply that with one BLAS call)."""
        return self._grad

    # --- plain facts ---
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
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
        """The value of a one-element tensor as a Python float."""
        return float(self.data.item())

    def numpy(self) -> np.ndarray:
        """The underlying array (not a copy)."""
        return self.data

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
        return f"Tensor({np.array2string(self.data, precision=4)}{grad}{made_by})"

    # --- operators build the graph ---
    def __add__(self, other: Any) -> Tensor:
        return apply(gates.Add(), self, other)

    def __radd__(self, other: Any) -> Tensor:
        return apply(gates.Add(), other, self)

    def __sub__(self, other: Any) -> Tensor:
        return apply(gates.Sub(), self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return apply(gates.Sub(), other, self)

    def __mul__(self, other: Any) -> Tensor:
        return apply(gates.Mul(), self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return apply(gates.Mul(), other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return apply(gates.Div(), self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return apply(gates.Div(), other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return apply(gates.MatMul(), self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return apply(gates.MatMul(), other, self)

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
        return apply(gates.Sum(axis, keepdims), self)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        """The mean over ``axis`` (all axes by default): (N, D).mean(axis=0) -> (D,)."""
        return apply(gates.Mean(axis, keepdims), self)

    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        """The same elements in a new shape, e.g. (N, H, W) -> reshape(N, -1) -> (N, H*W)."""
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])  # type: ignore[arg-type]
        return apply(gates.Reshape(tuple(shape)), self)  # type: ignore[arg-type]

    def transpose(self, *axes: int) -> Tensor:
        """Axes permuted as given (reversed by default): (N, D) -> (D, N)."""
        return apply(gates.Transpose(axes or None), self)

    @property
    def T(self) -> Tensor:
        """The axes reversed: (N, D) -> (D, N)."""
        return apply(gates.Transpose(), self)

    # --- the reverse walk ---
    def backward(self, grad: Any = None) -> None:
        """Fill ``.grad`` of every tensor in this one's graph that requires a gradient.

        grad: the seed, d(something)/d(self), same shape as self. It may be left out only for a
        scalar (one element), where it is 1. Each gate's cache is freed once its backward ran.
        """
        if grad is None:
            if self.data.size != 1:
                raise ShapeError(
                    f"backward: this tensor has shape {self.shape}; backward() without a seed "
                    "gradient needs a scalar. Reduce it first (e.g. .sum() or .mean()) or pass "
                    "backward(grad) with the same shape"
                )
            seed = np.ones_like(self.data)
        else:
            seed = np.array(_as_array(grad, self.data))  # a copy: never the caller's array
            if seed.shape != self.shape:
                raise ShapeError(
                    f"backward: the seed gradient has shape {seed.shape}, expected {self.shape}"
                )
        order = topological_order(self)
        check_saved_inputs(order)  # before any gradient is touched
        # np.asarray: a sum of two 0-d arrays is a NumPy scalar, and gradients stay arrays.
        self.grad = seed if self.grad is None else np.asarray(self.grad + seed)
        owned: set[int] = set()  # tensors whose grad array only they hold: add into it in place
        # Arrays the optimizer will change in place: an unformed gradient must not depend on them.
        # Listed when the first unformed gradient arrives (most graphs have none).
        params: list[np.ndarray] | None = None
        for node in reversed(order):
            gate = node._gate
            if gate is None:
                continue
            if node._grad is None:  # nothing reached it: it does not affect the result
                gate.release()
                node._gate, node._inputs = _SPENT, ()
                continue
            input_grads = gate.backward(node.grad)
            for parent, g in zip(node._inputs, input_grads):
                if g is None or not parent.requires_grad:
                    continue
                if type(g) is not np.ndarray:
                    if (
                        _defer_weight_grads
                        and type(g) is gates.OuterProduct
                        and parent._gate is None
                        and parent._grad is None
                    ):
                        if params is None:
                            params = [t.data for t in order if t._gate is None and t.requires_grad]
                        if not any(np.may_share_memory(g.x, p) for p in params):
                            # A leaf's only gradient so far: left as factors for the optimizer.
                            parent._grad = g
                            continue
                    g = np.asarray(g)  # forms an OuterProduct; makes NumPy scalars 0-d arrays
                held = parent._grad
                if type(held) is gates.OuterProduct:  # a second gradient arrives: form the first
                    held = parent._grad = held.form()
                    owned.add(id(parent))
                if held is None:
                    if not gate.fresh_grads and parent._gate is None:
                        # A leaf keeps its gradient: give it its own writable array, not a view
                        # shared with a neighbour (add) or a read-only broadcast (sum).
                        g = np.array(g)
                    parent._grad = g
                    if gate.fresh_grads or parent._gate is None:
                        owned.add(id(parent))
                elif id(parent) in owned:
                    np.add(held, g, out=held)
                else:
                    # Out of place: this array may be shared (add hands one dout to both of
                    # its inputs), and adding into it would corrupt a neighbour's gradient.
                    # np.asarray: two 0-d arrays add up to a NumPy scalar, which the next
                    # contribution could not be added into (a scalar used three times).
                    parent._grad = np.asarray(held + g)
                    owned.add(id(parent))
            gate.release()
            node._gate, node._inputs = _SPENT, ()


class _Spent(gates.Gate):
    """Stands in for a gate whose cache was freed by backward, to refuse a second backward."""

    name = "spent"

    def backward(self, dout: np.ndarray) -> tuple[np.ndarray | None, ...]:
        raise ChainruleError(
            "backward: this graph was already back-propagated and its caches freed; "
            "run the forward pass again"
        )

    def release(self) -> None:
        pass


_SPENT = _Spent()


def check_saved_inputs(order: Sequence[Tensor]) -> None:
    """Refuse a graph in which a tensor a gate kept for backward was changed in place since.

    order: tensors as ``topological_order`` gives them. Raises ChainruleError naming the first
    such tensor, the gate and what changed it. Costs one comparison per gate when nothing was
    changed in place since the graph was recorded (a training step: step() comes after backward).
    """
    clock = _clock
    for node in order:
        gate = node._gate
        if gate is None or node._stamp == clock:
            continue
        saved = gate.saved_inputs
        for i, t in enumerate(node._inputs):
            version = t._version
            if version is None or version.last <= node._stamp:
                continue
            if saved is not None and i not in saved:
                continue  # the gate kept only its shape, or nothing of it
            raise ChainruleError(
                f"backward: {_changed(t)}, kept by the {gate.describe()} gate for its "
                f"gradient, was changed in place by {version.by} after the forward pass, so the "
                "gradient would be taken at the new values; run the forward pass again after "
                "the change (in a training loop: forward, backward, then step)"
            )


def _changed(t: Tensor) -> str:
    """``t`` for the message of check_saved_inputs: a view is named by the tensor it shows."""
    source = t
    while source._gate is not None and source._gate.view_of is not None and source._inputs:
        source = source._inputs[source._gate.view_of]
    if source is t:
        return t._describe()
    return f"{source._describe()} (seen through a {t._gate.describe()} view of it)"  # type: ignore[union-attr]


def topological_order(root: Tensor) -> list[Tensor]:
    """Every tensor that ``root`` depends on through gates, inputs before the tensors they feed.

    An explicit stack instead of recursion, so depth is limited only by memory. Leaves and
    constants are included; ``root`` is last.
    """
    order: list[Tensor] = []
    seen: set[int] = {id(root)}
    # Each stack entry holds an iterator over a node's inputs, which resumes where it stopped;
    # leaves go straight to the order. (This walk runs every training step.)
    stack: list[tuple[Tensor, Iterator[Tensor]]] = [(root, iter(root._inputs))]
    while stack:
        node, children = stack[-1]
        for child in children:
            if id(child) not in seen:
                seen.add(id(child))
                if child._inputs:
                    stack.append((child, iter(child._inputs)))
                    break
                order.append(child)
        else:
            stack.pop()
            order.append(node)
    return order


def as_tensor(value: Any, like: Tensor | None = None) -> Tensor:
    """``value`` if it is a Tensor, else a constant leaf (numbers take ``like``'s float dtype)."""
    if isinstance(value, Tensor):
        return value
    return Tensor(_as_array(value, like.data if like is not None else None))


def apply(gate: gates.Gate, *operands: Any) -> Tensor:
    """Run ``gate`` forward on the operands and, when a gradient is needed, record it in the graph.

    Operands may be Tensors, arrays or numbers; the non-Tensors become constants with the dtype of
    the first Tensor operand.
    """
    if all(type(x) is Tensor for x in operands):  # the common case, every step: no conversions
        inputs: tuple[Tensor, ...] = operands
    else:
        like = next((x for x in operands if isinstance(x, Tensor)), None)
        inputs = tuple(as_tensor(x, like) for x in operands)
    out = Tensor(gate.forward(*[t.data for t in inputs]))
    if gate.view_of is not None and np.may_share_memory(out.data, inputs[gate.view_of].data):
        # A view changes with its input's array: it shares the input's record of changes.
        out._version = inputs[gate.view_of]._shared_version()
    if _grad_enabled:
        needs = tuple([t.requires_grad for t in inputs])
        if any(needs):  # (requires_grad may be any truthy value)
            gate.needs_input_grad = needs
            out.requires_grad = True
            out._gate, out._inputs, out._stamp = gate, inputs, _clock
    return out


# --- functions for the gates that are not operators ----------


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise max(a, b), broadcast. On a tie the gradient goes to b (see gates.Maximum)."""
    return apply(gates.Maximum(), a, b)


def matmul(a: Any, b: Any) -> Tensor:
    """a @ b for 1-D or 2-D operands (or stacks of matrices). a: (N, D), b: (D, M) -> (N, M)."""
    return apply(gates.MatMul(), a, b)


def affine(x: Any, W: Any, b: Any) -> Tensor:
    """x @ W.T + b in one gate. x: (N, D), W: (M, D), b: (M,) -> (N, M)."""
    return apply(gates.Affine(), x, W, b)


def affine_relu(x: Any, W: Any, b: Any) -> Tensor:
    """max(x @ W.T + b, 0) in one gate. x: (N, D), W: (M, D), b: (M,) -> (N, M)."""
    return apply(gates.AffineReLU(), x, W, b)


def relu(x: Any) -> Tensor:
    """max(x, 0) elementwise; derivative 0 at x = 0."""
    return apply(gates.ReLU(), x)


def sigmoid(x: Any) -> Tensor:
    """1 / (1 + e**-x) elementwise."""
    return apply(gates.Sigmoid(), x)


def tanh(x: Any) -> Tensor:
    """tanh(x) elementwise."""
    return apply(gates.Tanh(), x)


def exp(x: Any) -> Tensor:
    """e**x elementwise."""
    return apply(gates.Exp(), x)


def log(x: Any) -> Tensor:
    """Natural logarithm elementwise."""
    return apply(gates.Log(), x)
