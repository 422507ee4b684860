"""Random computational graphs in which values are reused, for the fuzz tests.

A program is a list of steps ``(op, i, j)``: apply ``op`` to values ``i`` and ``j`` (``j`` unused
by one-input ops) of the list so far, which starts with the leaves and grows by one value per
step. Steps pick any earlier value, so a value may feed one, two or many later gates: the reuse
that makes gradients accumulate. The same program runs on chainrule's Tensors and on PyTorch's,
through ``OPS``, whose entries use only the operators and functions both libraries spell alike
(``lib`` is ``chainrule`` or ``torch``).

Ops with a restricted domain are given one where they are defined everywhere (log(1 + a*a),
a / (1 + b*b)), so a graph fails only by overflow, which the tests leave out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

OPS: dict[str, tuple[int, Callable[[Any, Any, Any], Any]]] = {
    "add": (2, lambda a, b, lib: a + b),
    "sub": (2, lambda a, b, lib: a - b),
    "mul": (2, lambda a, b, lib: a * b),
    "div": (2, lambda a, b, lib: a / (b * b + 1)),
    "max": (2, lambda a, b, lib: lib.maximum(a, b)),
    "neg": (1, lambda a, b, lib: -a),
    "tanh": (1, lambda a, b, lib: lib.tanh(a)),
    "sigmoid": (1, lambda a, b, lib: lib.sigmoid(a)),
    "relu": (1, lambda a, b, lib: lib.relu(a)),
    "exp": (1, lambda a, b, lib: lib.exp(a)),
    "log": (1, lambda a, b, lib: lib.log(a * a + 1)),
    "square": (1, lambda a, b, lib: a**2),
    "cube": (1, lambda a, b, lib: a**3),
    "sqrt": (1, lambda a, b, lib: (a * a + 1) ** 0.5),
    "pow0": (1, lambda a, b, lib: a**0),
    "pow1": (1, lambda a, b, lib: a**1),
    "sum": (1, lambda a, b, lib: a.sum()),
    "mean": (1, lambda a, b, lib: a.mean()),
}

# The shapes of a graph's values: scalars (as micrograd users write them), a one-element array
# and a matrix; leaves are either the graph's shape or 0-d, so scalars also meet arrays.
SHAPES = [(), (1,), (2, 3)]


@dataclass
class Program:
    """Leaves (their shapes) and steps; ``outputs`` are the values summed into the result."""

    leaf_shapes: list[tuple[int, ...]]
    steps: list[tuple[str, int, int]]
    outputs: list[int] = field(default_factory=list)

    def uses(self) -> list[int]:
        """How many times each value (leaves first) is read by a step or the result."""
        counts = [0] * (len(self.leaf_shapes) + len(self.steps))
        for op, i, j in self.steps:
            counts[i] += 1
            if OPS[op][0] == 2:
                counts[j] += 1
        for k in self.outputs:
            counts[k] += 1
        return counts


@st.composite
def programs(draw: Any, max_steps: int = 10) -> Program:
    """A random program of 1 to ``max_steps`` steps on 1 to 3 leaves."""
    shape = draw(st.sampled_from(SHAPES))
    n_leaves = draw(st.integers(1, 3))
    leaf_shapes = [draw(st.sampled_from([shape, ()])) for _ in range(n_leaves)]
    steps = []
    for k in range(draw(st.integers(1, max_steps))):
        available = n_leaves + k
        op = draw(st.sampled_from(sorted(OPS)))
        steps.append((op, draw(st.integers(0, available - 1)), draw(st.integers(0, available - 1))))
    total = n_leaves + len(steps)
    extra = draw(st.lists(st.integers(0, total - 1), max_size=3))
    return Program(leaf_shapes, steps, [total - 1, *extra])


@dataclass
class Trace:
    """What running a program saw: every value (float64 arrays), the smallest |input| of a relu
    and the smallest gap between the two different inputs of a max (their kinks)."""

    values: list[np.ndarray] = field(default_factory=list)
    relu_margin: float = np.inf
    max_gap: float = np.inf

    def finite_below(self, bound: float) -> bool:
        """Whether every value is finite and below ``bound`` in size."""
        return all(bool(np.all(np.abs(v) < bound)) for v in self.values)


def run(
    program: Program, leaves: list[Any], lib: Any, to_numpy: Callable[[Any], np.ndarray]
) -> tuple[Any, Trace]:
    """Run ``program`` on ``leaves`` (Tensors of ``lib``); returns the 0-d result and a Trace.

    The result is the sum of the output values, each summed to a scalar first.
    """
    values = list(leaves)
    trace = Trace(values=[to_numpy(v) for v in leaves])
    for op, i, j in program.steps:
        a, b = values[i], values[j]
        if op == "relu":
            trace.relu_margin = min(trace.relu_margin, float(np.min(np.abs(to_numpy(a)))))
        if op == "max" and i != j:  # max(h, h) is no tie: both sides are the same value
            gap = np.abs(to_numpy(a) - to_numpy(b))
            trace.max_gap = min(trace.max_gap, float(np.min(gap)))
        values.append(OPS[op][1](a, b, lib))
        trace.values.append(to_numpy(values[-1]))
    result = None
    for k in program.outputs:
        term = values[k].sum()
        result = term if result is None else result + term
    return result, trace
