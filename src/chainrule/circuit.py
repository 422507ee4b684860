"""The worked circuit: an expression such as ``(x+y)*z`` built as gates, run forward and backward.

The expression is parsed with ``ast`` and only an allow-list of nodes is turned into gates:
numbers, variable names, ``+ - * / **``, unary minus and calls of exp, log, relu, sigmoid, tanh and
max. Nothing is ever passed to ``eval``.
"""

from __future__ import annotations

import ast
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule import tensor as T
from chainrule.errors import ExpressionError
from chainrule.tensor import Tensor, topological_order

FUNCTIONS: dict[str, tuple[int, Callable[..., Tensor]]] = {
    "exp": (1, T.exp),
    "log": (1, T.log),
    "relu": (1, T.relu),
    "sigmoid": (1, T.sigmoid),
    "tanh": (1, T.tanh),
    "max": (2, T.maximum),
}
_BINARY: dict[type, Callable[[Any, Any], Tensor]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}
_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_NAMES_OF_NODES = {
    ast.BitXor: "^ (use ** for powers)",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.Attribute: "attribute access",
    ast.Subscript: "indexing",
    ast.Lambda: "lambda",
    ast.Compare: "comparisons",
    ast.BoolOp: "and/or",
    ast.IfExp: "if/else",
    ast.Tuple: "tuples",
    ast.List: "lists",
}


def _not_allowed(node: ast.AST) -> ExpressionError:
    what = _NAMES_OF_NODES.get(type(node), type(node).__name__)
    allowed = "numbers, names, + - * / **, unary minus, " + ", ".join(FUNCTIONS) + " calls"
    return ExpressionError(f"'{what}' is not allowed in an expression (allowed: {allowed})")


def parse(expression: str) -> ast.expr:
    """Parse and check ``expression`` against the allow-list. Returns the checked AST body."""
    if not expression.strip():
        raise ExpressionError("the expression is empty")
    try:
        with warnings.catch_warnings():  # e.g. "invalid decimal literal": the error says it
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as e:
        where = f" at column {e.offset}" if e.offset else ""
        raise ExpressionError(f"cannot parse {expression!r}: {e.msg}{where}") from None
    called = {id(n.func) for n in ast.walk(tree.body) if isinstance(n, ast.Call)}
    for node in ast.walk(tree.body):
        if id(node) in called and isinstance(node, ast.Name):
            continue  # checked with its Call below
        if isinstance(node, (ast.operator, ast.unaryop, ast.expr_context)):
            continue
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise ExpressionError(f"only numbers may appear as constants, got {node.value!r}")
        elif isinstance(node, ast.Name):
            if node.id in FUNCTIONS:
                raise ExpressionError(f"'{node.id}' is a function: call it, e.g. {node.id}(x)")
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _SYMBOLS:
                raise _not_allowed(node.op)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd)):
                raise _not_allowed(node.op)
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                name = node.func.id if isinstance(node.func, ast.Name) else "that call"
                raise ExpressionError(
                    f"'{name}' is not an allowed function (allowed: {', '.join(FUNCTIONS)})"
                )
            arity = FUNCTIONS[node.func.id][0]
            if node.keywords or len(node.args) != arity:
                raise ExpressionError(
                    f"{node.func.id}() takes {arity} argument{'s' * (arity > 1)}, "
                    f"got {len(node.args) + len(node.keywords)}"
                )
        else:
            raise _not_allowed(node)
    return tree.body


def variables(body: ast.expr) -> list[str]:
    """The variable names of a checked expression, in order of first appearance."""
    called = {id(n.func) for n in ast.walk(body) if isinstance(n, ast.Call)}
    found = [n for n in ast.walk(body) if isinstance(n, ast.Name) and id(n) not in called]
    found.sort(key=lambda n: (n.lineno, n.col_offset))
    return list(dict.fromkeys(n.id for n in found))


@dataclass
class Node:
    """One row of the circuit: a variable, a constant or a gate's output."""

    name: str
    kind: str  # "input", "const" or the gate's label
    inputs: list[str]
    value: float
    grad: float = 0.0


@dataclass
class Circuit:
    """The outcome of running an expression forward and backward."""

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
            "gates": [
                {"name": n.name, "op": n.kind, "inputs": n.inputs, "value": n.value, "grad": n.grad}
                for n in self.nodes
                if n.kind not in ("input", "const")
            ],
            "nodes": [
                {"name": n.name, "op": n.kind, "inputs": n.inputs, "value": n.value, "grad": n.grad}
                for n in self.nodes
            ],
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


def fmt(value: float) -> str:
    """A number as short as it can be without losing digits (3.0 prints as 3)."""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.10g}"


def run(expression: str, values: Mapping[str, float]) -> Circuit:
    """Build the gates of ``expression``, run them forward with ``values``, then backward.

    values: one number per variable of the expression. Returns a Circuit with every node's value
    and gradient, in forward order, and the order backprop visits them.
    """
    body = parse(expression)
    names = variables(body)
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
    leaves = {n: Tensor(np.float64(values[n]), requires_grad=True, name=n) for n in names}
    labels: dict[int, str] = {}

    def build(node: ast.expr) -> Tensor:
        if isinstance(node, ast.Name):
            return leaves[node.id]
        if isinstance(node, ast.Constant):
            return Tensor(np.float64(node.value), name=fmt(float(node.value)))
        if isinstance(node, ast.UnaryOp):
            operand = build(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp):
            left, right = build(node.left), build(node.right)
            if isinstance(node.op, ast.Pow):
                if right.requires_grad:
                    raise ExpressionError("** needs a constant number as exponent, e.g. x**2")
                return left ** float(right.data)
            return _BINARY[type(node.op)](left, right)
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        _, fn = FUNCTIONS[node.func.id]
        return fn(*(build(a) for a in node.args))

    # Overflow, 0/0 and the like stop the circuit with a message; underflow does not: a result
    # that rounds to 0 (or a subnormal), as exp(-800) or a sigmoid's far tail, is the right value.
    with np.errstate(all="raise", under="ignore"):
        try:
            out = build(body)
        except FloatingPointError as e:
            raise ExpressionError(
                f"the forward pass failed: {e} (e.g. log of a number <= 0)"
            ) from None
    if not out.requires_grad:
        raise ExpressionError("the expression has no variables to differentiate")
    order = topological_order(out)
    gate_labels = {id(t): t.gate.describe() for t in order if t.gate is not None}
    inputs_of = {id(t): list(t.inputs) for t in order}
    intermediates = [t for t in order if t.gate is not None and t is not out]
    for i, t in enumerate(intermediates):
        labels[id(t)] = "q" if len(intermediates) == 1 else f"q{i + 1}"
    labels[id(out)] = "f"
    for t in order:
        if id(t) not in labels:
            labels[id(t)] = t.name or "c"

    with np.errstate(all="raise", under="ignore"):
        try:
            out.backward()
        except FloatingPointError as e:
            raise ExpressionError(
                f"the backward pass failed: {e} (a derivative is infinite or undefined at these "
                "values, e.g. x**0.5 at x=0)"
            ) from None

    circuit = Circuit(expression=expression.strip(), output=float(out.data))
    for t in order:
        kind = gate_labels.get(id(t), "input" if t.requires_grad else "const")
        circuit.nodes.append(
            Node(
                name=labels[id(t)],
                kind=kind,
                inputs=[labels[id(p)] for p in inputs_of[id(t)]],
                value=float(t.data),
                grad=float(t.grad) if t.grad is not None else 0.0,
            )
        )
    circuit.backward_order = [labels[id(t)] for t in reversed(order) if t.requires_grad]
    circuit.grads = {n: float(leaves[n].grad) for n in names}
    return circuit


def parse_assignments(items: list[str]) -> dict[str, float]:
    """``["x=-2", "y=5"]`` -> ``{"x": -2.0, "y": 5.0}``, with a clear error for a bad item."""
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
