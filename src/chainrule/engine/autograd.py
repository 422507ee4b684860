"""The pieces of the reverse walk around ``Tensor.backward``'s loop: the order it walks in, the one
helper that writes a gradient, the seed it starts from, the stand-in for a freed gate, and
``no_grad``.

They need a Tensor's attributes (``grad``, ``_gate``, ``_inputs``) but not the class, so
``tensor`` imports them and not the other way round.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from chainrule.engine.arrays import as_array, zero_d
from chainrule.engine.backend import namespace
from chainrule.engine.errors import ChainruleError, ShapeError
from chainrule.engine.gates import Gate

if TYPE_CHECKING:
    from chainrule.engine.tensor import Tensor

_grad_enabled = True


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


def topological_order(root: Tensor) -> list[Tensor]:
    """Every tensor that ``root`` depends on through gates, inputs before the tensors they feed.

    An explicit stack instead of recursion, so depth is limited only by memory. Leaves and
    constants are included, each tensor once; ``root`` is last. O(tensors + edges).
    """
    order: list[Tensor] = []
    seen: set[int] = {id(root)}
    # Each stack entry holds an iterator over a node's inputs, which resumes where it stopped;
    # leaves go straight to the order.
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


def seed_gradient(root: Tensor, grad: Any) -> np.ndarray:
    """The gradient a walk from ``root`` starts from: ``grad`` as a new array of root's shape and
    dtype (never the caller's array), or 1 for a one-element root when ``grad`` is None.

    Raises ShapeError for a missing seed of a non-scalar root or a seed of another shape.
    """
    if grad is None:
        if root.data.size != 1:
            raise ShapeError(
                f"backward: this tensor has shape {root.shape}; backward() without a seed "
                "gradient needs a scalar. Reduce it first (e.g. .sum() or .mean()) or pass "
                "backward(grad) with the same shape"
            )
        return namespace(root.data).ones_like(root.data)
    seed = as_array(grad, root.data)
    seed = (
        np.array(seed) if isinstance(seed, np.ndarray) else namespace(seed).asarray(seed, copy=True)
    )
    # (a copy: never the caller's array)
    if seed.shape != root.shape:
        raise ShapeError(
            f"backward: the seed gradient has shape {seed.shape}, expected {root.shape}"
        )
    return seed


def accumulate(t: Tensor, g: np.ndarray, dout: np.ndarray | None) -> None:
    """Add one gradient ``g`` (t's shape) into ``t.grad``: the engine's only write of a gradient.

    dout: the upstream gradient of the gate that returned ``g`` (None for the seed). The first
    gradient is stored as it is, except that a leaf stores a copy of dout, of a view or of a
    read-only array, so its ``.grad`` is its own writable array. Later ones are added out of
    place: ``t.grad`` may be shared with a neighbour (add hands one dout to both inputs).
    """
    if t.grad is None:
        if t._gate is None and (g is dout or _shared(g)):
            g = np.array(g) if isinstance(g, np.ndarray) else namespace(g).asarray(g, copy=True)
        t.grad = g
    else:
        t.grad = zero_d(t.grad + g)  # (two 0-d arrays add up to a NumPy scalar)


def _shared(g: np.ndarray) -> bool:
    """Whether ``g`` is a view or read-only (NumPy's flags; CuPy's ``base``; array API modules
    without either cannot tell, and their gates return views only of dout, caught above)."""
    if isinstance(g, np.ndarray):
        return g.base is not None or not g.flags.writeable
    return getattr(g, "base", None) is not None


class Spent(Gate):
    """Stands in for a gate whose cache was freed by backward, to refuse a second backward."""

    name = "spent"

    def backward(self, dout: np.ndarray) -> tuple[np.ndarray | None, ...]:
        """Raises ChainruleError: the graph was already walked and its caches freed."""
        raise ChainruleError(
            "backward: this graph was already back-propagated and its caches freed; "
            "run the forward pass again"
        )

    def release(self) -> None:
        """Nothing to free: one instance stands in for every spent gate."""


SPENT = Spent()
