"""The worked circuit: an expression such as ``(x+y)*z`` built as gates, run forward and backward.

``run`` parses the expression (``expression.parse``: an allow-list, never ``eval``), builds one
gate per operation on 0-d float64 tensors, runs the forward pass, then the backward pass from
the output, and returns every node's value and gradient as a ``Circuit`` (a table, or JSON).
"""

from __future__ import annotations

import ast
import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.engine.errors import ExpressionError
from chainrule.engine.tensor import Tensor, topological_order
from chainrule.lessons.circuit_errors import backward_cause, forward_cause
from chainrule.lessons.expression import FUNCTIONS, fmt, parse, variables

__all__ = ["Circuit", "Node", "fmt", "parse", "parse_assignments", "run", "variables"]

_BINARY: dict[type, tuple[str, Callable[[Any, Any], Tensor]]] = {
    ast.Add: ("add", lambda a, b: a + b),
    ast.Sub: ("sub", lambda a, b: a - b),
    ast.Mult: ("mul", lambda a, b: a * b),
    ast.Div: ("div", lambda a, b: a / b),
}


@dataclass
class Node:
    """One row of the circuit: a variable, a constant or a gate's output, all scalars.

    name: x, y (variables), q, q1, q2... (intermediate gates), f (the output), or a constant's
    value. kind: "input", "const" or the gate's label (``Gate.describe()``: add, mul, pow 2,
    exp...). inputs: the names of the gate's inputs. value: the forward value; grad: df/dnode
    (0 for a constant)."""

    name: str
    kind: str
    inputs: list[str]
    value: float
    grad: float = 0.0


@dataclass
class Circuit:
    """The outcome of running an expression forward and backward: every node in forward order,
    the names in the order backprop visits them, f, and df/d(each variable)."""

    expression: str
    nodes: list[Node] = field(default_factory=list)  # forward order
    backward_order: list[str] = field(default_factory=list)
    output: float = 0.0
    grads: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A plain dict: output, grads of the variables, gates with value and gradient."""
        return {
            "expression": self.expression,
            "output": self.output,
            "grads": self.grads,
            "gates": [_node_json(n) for n in self.nodes if n.kind not in ("input", "const")],
            "nodes": [_node_json(n) for n in self.nodes],
            "backward_order": self.backward_order,
        }

    def table(self) -> str:
        """The forward pass, the backward pass in the order backprop visits, and the result."""
        by_name = {n.name: n for n in self.nodes}
        width = max(4, *(len(n.name) for n in self.nodes))
        lines = [f"f = {self.expression}", "", "forward pass (inputs first, in order):"]
        lines.append(f"  {'node':<{width}}  {'gate':<10} {'inputs':<14} {'value':>12}")
        for n in self.nodes:
            lines.append(
                f"  {n.name:<{width}}  {n.kind:<10} {', '.join(n.inputs):<14} {fmt(n.value):>12}"
            )
        lines += ["", "backward pass (reverse order, gradient of f with respect to each node):"]
        lines.append(f"  {'node':<{width}}  {'df/dnode':>12}")
        for name in self.backward_order:
            lines.append(f"  {name:<{width}}  {fmt(by_name[name].grad):>12}")
        lines += ["", "f = " + fmt(self.output)]
        lines.append("   ".join(f"df/d{k} = {fmt(v)}" for k, v in self.grads.items()))
        return "\n".join(lines)


def _node_json(n: Node) -> dict[str, Any]:
    return {"name": n.name, "op": n.kind, "inputs": n.inputs, "value": n.value, "grad": n.grad}


def run(
    expression: str,
    values: Mapping[str, float],
    watch: Callable[[Tensor], contextlib.AbstractContextManager[Any]] | None = None,
) -> Circuit:
    """Build the gates of ``expression``, run them forward with ``values``, then backward.

    values: one number per variable of the expression. watch: called with the output before
    the backward pass, which runs inside the context it returns (the explorer records each
    gate's backward there: ``explorer.trace.Recorder.watch``). Returns a Circuit with every
    node's value and gradient (float64 scalars), in forward order, and the order backprop
    visits them.
    Raises ExpressionError for an expression ``parse`` refuses, a missing or unknown variable,
    an expression without variables, and a forward or backward pass that overflows, divides by
    zero or leaves the real numbers (the message names the gate and the cause).
    """
    body = parse(expression)
    names = variables(body)
    _check_values(expression, names, values)
    leaves = {n: Tensor(np.float64(values[n]), requires_grad=True, name=n) for n in names}
    builder = _Builder(leaves)
    out = _forward(builder, body)
    order = topological_order(out)
    labels = _labels(order, out)
    # Read before backward, which frees each gate and its inputs once it has run.
    nodes = [
        Node(labels[id(t)], _kind(t), [labels[id(p)] for p in t.inputs], float(t.data))
        for t in order
    ]
    text_of = {id(t): builder.texts.get(id(t), labels[id(t)]) for t in order}
    text_of.update({id(t.gate): text_of[id(t)] for t in order if t.gate is not None})
    with watch(out) if watch is not None else contextlib.nullcontext():
        _backward(out, text_of)
    for node, t in zip(nodes, order):
        node.grad = float(t.grad) if t.grad is not None else 0.0
    return Circuit(
        expression=expression.strip(),
        nodes=nodes,
        backward_order=[labels[id(t)] for t in reversed(order) if t.requires_grad],
        output=float(out.data),
        grads={n: float(leaves[n].grad) for n in names},
    )


def _forward(builder: _Builder, body: ast.expr) -> Tensor:
    """The output of the checked expression ``body``, its gates built and run."""
    # Overflow, division by zero and invalid operations stop the circuit with the gate named;
    # an underflow is not an error: 0 (or a subnormal) is float64's correctly rounded result.
    with np.errstate(all="raise", under="ignore"):
        out = builder.build(body)
    if not out.requires_grad:
        raise ExpressionError("the expression has no variables to differentiate")
    return out


def _backward(out: Tensor, text_of: Mapping[int, str]) -> None:
    """Backprop from ``out``; a floating-point failure becomes one line naming the gate.
    text_of: the id of each gate and tensor -> the part of the expression it computes."""
    with np.errstate(all="raise", under="ignore"):
        try:
            out.backward()
        except FloatingPointError as err:
            raise ExpressionError(
                "the backward pass failed " + backward_cause(err, text_of)
            ) from None


def _check_values(expression: str, names: list[str], values: Mapping[str, float]) -> None:
    """Every variable of the expression has a value, and every value a variable."""
    missing = [n for n in names if n not in values]
    if missing:
        raise ExpressionError(
            f"no value for {', '.join(missing)}: give one as NAME=NUMBER, e.g. {missing[0]}=1.5"
        )
    unknown = [n for n in values if n not in names]
    if unknown:
        raise ExpressionError(
            f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not in the expression "
            f"{expression!r} (its variables: {', '.join(names) or 'none'})"
        )


class _Builder:
    """Turns a checked expression into gates on the variables' tensors (``leaves``), noting in
    ``texts`` which part of the expression each gate's output computes (for error lines)."""

    def __init__(self, leaves: dict[str, Tensor]) -> None:
        self.leaves = leaves
        self.texts: dict[int, str] = {}  # id of a gate's output -> its part of the expression

    def build(self, node: ast.expr) -> Tensor:
        """The tensor of ``node``: a variable's leaf, a constant, or a new gate's output."""
        if isinstance(node, ast.Name):
            return self.leaves[node.id]
        if isinstance(node, ast.Constant):
            return Tensor(np.float64(node.value), name=fmt(float(node.value)))
        if isinstance(node, ast.UnaryOp):
            operand = self.build(node.operand)
            if isinstance(node.op, ast.USub):
                return self._gate(node, "neg", Tensor.__neg__, operand)
            return operand
        if isinstance(node, ast.BinOp):
            left, right = self.build(node.left), self.build(node.right)
            if isinstance(node.op, ast.Pow):
                if right.requires_grad:
                    raise ExpressionError("** needs a constant number as exponent, e.g. x**2")
                return self._gate(node, "pow", Tensor.__pow__, left, float(right.data))
            return self._gate(node, *_BINARY[type(node.op)], left, right)
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        _, fn = FUNCTIONS[node.func.id]
        return self._gate(node, node.func.id, fn, *(self.build(a) for a in node.args))

    def _gate(self, node: ast.expr, op: str, fn: Callable[..., Tensor], *operands: Any) -> Tensor:
        try:
            out = fn(*operands)
        except FloatingPointError as err:
            numbers = [float(o.data) if isinstance(o, Tensor) else float(o) for o in operands]
            raise ExpressionError(
                f"the forward pass failed at {ast.unparse(node)}: {forward_cause(op, numbers, err)}"
            ) from None
        self.texts[id(out)] = ast.unparse(node)
        return out


def _labels(order: list[Tensor], out: Tensor) -> dict[int, str]:
    """id of each tensor -> its name in the table: q (or q1, q2...) for the intermediate gates'
    outputs, f for the output, a variable's or constant's own name ("c" if it has none)."""
    labels: dict[int, str] = {}
    intermediates = [t for t in order if t.gate is not None and t is not out]
    for i, t in enumerate(intermediates):
        labels[id(t)] = "q" if len(intermediates) == 1 else f"q{i + 1}"
    labels[id(out)] = "f"
    for t in order:
        if id(t) not in labels:
            labels[id(t)] = t.name or "c"
    return labels


def _kind(t: Tensor) -> str:
    """A node's kind for the table: its gate's label, or "input" / "const" for a leaf."""
    if t.gate is not None:
        return t.gate.describe()
    return "input" if t.requires_grad else "const"


def parse_assignments(items: list[str]) -> dict[str, float]:
    """``["x=-2", "y=5"]`` -> ``{"x": -2.0, "y": 5.0}``.

    Raises ExpressionError for an item that is not NAME=NUMBER, a value that is not a number,
    or one that is not finite."""
    values: dict[str, float] = {}
    for item in items:
        name, sep, number = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise ExpressionError(f"expected NAME=NUMBER, got {item!r}")
        try:
            values[name] = float(number)
        except ValueError:
            raise ExpressionError(f"the value of {name} is not a number: {number!r}") from None
        if not math.isfinite(values[name]):
            raise ExpressionError(f"the value of {name} must be finite, got {number!r}")
    return values
