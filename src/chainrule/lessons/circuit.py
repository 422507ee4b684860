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

from chainrule.engine import tensor as T
from chainrule.engine.errors import ExpressionError
from chainrule.engine.tensor import Tensor, topological_order

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
            try:
                finite = math.isfinite(float(node.value))
            except OverflowError:
                finite = False
            if not finite:  # 1e309 parses as inf: then inf - inf and the like could follow
                raise ExpressionError(
                    f"the constant {ast.get_source_segment(expression.strip(), node) or node.value}"
                    " is beyond float64's range (about 1.8e308); expected a finite number"
                )
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
    texts: dict[int, str] = {}  # id of a gate's output -> its part of the expression

    def gate(node: ast.expr, op: str, fn: Callable[..., Tensor], *operands: Any) -> Tensor:
        try:
            out = fn(*operands)
        except FloatingPointError as err:
            numbers = [float(o.data) if isinstance(o, Tensor) else float(o) for o in operands]
            raise ExpressionError(
                f"the forward pass failed at {ast.unparse(node)}: {forward_cause(op, numbers, err)}"
            ) from None
        texts[id(out)] = ast.unparse(node)
        return out

    def build(node: ast.expr) -> Tensor:
        if isinstance(node, ast.Name):
            return leaves[node.id]
        if isinstance(node, ast.Constant):
            return Tensor(np.float64(node.value), name=fmt(float(node.value)))
        if isinstance(node, ast.UnaryOp):
            operand = build(node.operand)
            return (
                gate(node, "neg", Tensor.__neg__, operand)
                if isinstance(node.op, ast.USub)
                else operand
            )
        if isinstance(node, ast.BinOp):
            left, right = build(node.left), build(node.right)
            if isinstance(node.op, ast.Pow):
                if right.requires_grad:
                    raise ExpressionError("** needs a constant number as exponent, e.g. x**2")
                return gate(node, "pow", Tensor.__pow__, left, float(right.data))
            return gate(node, _OP_NAMES[type(node.op)], _BINARY[type(node.op)], left, right)
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        _, fn = FUNCTIONS[node.func.id]
        return gate(node, node.func.id, fn, *(build(a) for a in node.args))

    # Overflow, division by zero and invalid operations stop the circuit with the gate named;
    # an underflow is not an error: 0 (or a subnormal) is float64's correctly rounded result.
    with np.errstate(all="raise", under="ignore"):
        out = build(body)
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

    text_of = {id(t): texts.get(id(t), labels[id(t)]) for t in order}
    text_of.update({id(t.gate): text_of[id(t)] for t in order if t.gate is not None})
    with np.errstate(all="raise", under="ignore"):
        try:
            out.backward()
        except FloatingPointError as err:
            raise ExpressionError(
                "the backward pass failed " + backward_cause(err, text_of)
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


_OP_NAMES = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div"}
_FORMULAS = {"add": "{} + {}", "sub": "{} - {}", "mul": "{} * {}", "div": "{} / {}"}
TOO_LARGE = "beyond float64's largest number (about 1.8e308)"


def _operand(x: float) -> str:
    """A number as an operand in a formula: negative ones in brackets, (-2) ** 0.5."""
    return f"({fmt(x)})" if x < 0 else fmt(x)


def forward_cause(op: str, numbers: list[float], err: FloatingPointError) -> str:
    """Why gate ``op`` (add, sub, mul, div, pow, exp, log...) failed on its inputs ``numbers``
    (for pow: the base and the exponent), as a phrase for the error line."""
    what = str(err)  # NumPy's words, e.g. "divide by zero encountered in log"
    if op == "log":
        x = numbers[0]
        if x == 0:
            return "log of zero (log(0) is minus infinity); log needs a number > 0"
        if x < 0:
            return f"log of a negative number ({fmt(x)}); log needs a number > 0"
    if op == "div" and numbers[1] == 0:
        a = numbers[0]
        return "0 / 0 in div (undefined)" if a == 0 else f"division by zero in div ({fmt(a)} / 0)"
    if op == "pow":
        x, p = numbers
        if x == 0 and p < 0:
            return f"0 ** {fmt(p)} in pow: zero to a negative power divides by zero"
        if x < 0 and p != int(p):
            return (
                f"{_operand(x)} ** {fmt(p)} in pow: a negative number to a fractional power is not "
                "a real number"
            )
        if "overflow" in what:
            return f"overflow in pow: {_operand(x)} ** {fmt(p)} is {TOO_LARGE}"
    if op == "exp" and "overflow" in what:
        return f"overflow in exp: exp({fmt(numbers[0])}) is {TOO_LARGE}; exp overflows above 709.78"
    if op in _FORMULAS and "overflow" in what:
        return f"overflow in {op}: {_FORMULAS[op].format(*map(_operand, numbers))} is {TOO_LARGE}"
    return f"{what} (gate {op})"


def _failing_frame(err: BaseException) -> tuple[Any, Any]:
    """(gate, dout) of the gate whose backward raised ``err``: the innermost frame whose
    ``self`` is a Gate. Its cache is intact (a gate is released after its backward returns)."""
    from chainrule.engine.gates import Gate

    found: tuple[Any, Any] = (None, None)
    tb = err.__traceback__
    while tb is not None:
        local = tb.tb_frame.f_locals
        if isinstance(local.get("self"), Gate):
            found = (local["self"], local.get("dout"))
        tb = tb.tb_next
    return found


def _accumulating(err: BaseException) -> Any:
    """The tensor whose gradients the engine was adding up when ``err`` was raised, if any."""
    tb = err.__traceback__
    while tb is not None:
        if isinstance(parent := tb.tb_frame.f_locals.get("parent"), Tensor):
            return parent
        tb = tb.tb_next
    return None


def _local_gradient(g: Any) -> tuple[str, str, Callable[[], float]] | None:
    """For a gate that can overflow in backward: its local gradient as a formula, the point,
    and a function giving the gradient's size there (Python floats: may raise)."""
    from chainrule.engine import gates

    if isinstance(g, gates.Pow):
        x, p = float(g.x), g.exponent
        return f"{fmt(p)} * x ** {fmt(p - 1)}", f"x = {fmt(x)}", lambda: abs(p * x ** (p - 1))
    if isinstance(g, gates.Log):
        x = float(g.x)
        return "1 / x", f"x = {fmt(x)}", lambda: abs(1 / x)
    if isinstance(g, gates.Div):
        a, b = float(g.a), float(g.b)
        return (
            "1 / b and -a / b ** 2",
            f"a = {fmt(a)}, b = {fmt(b)}",
            lambda: max(abs(1 / b), abs(a / b**2)),
        )
    if isinstance(g, gates.Exp):
        out = float(g.out)
        return "exp(x)", f"exp(x) = {fmt(out)}", lambda: out
    if isinstance(g, gates.Mul):
        a, b = float(g.a), float(g.b)
        return "b and a", f"a = {fmt(a)}, b = {fmt(b)}", lambda: max(abs(a), abs(b))
    return None


def backward_cause(err: FloatingPointError, text_of: Mapping[int, str]) -> str:
    """Where and why the backward pass failed, as the end of the error line ("at log(x): ...").

    text_of: the id of each gate and of each tensor -> the part of the expression it computes.
    """
    g, dout = _failing_frame(err)
    if g is None:  # outside any gate: the gradients of a node used twice added up past the range
        node = _accumulating(err)
        name = text_of.get(id(node), "a node") if node is not None else "a node"
        return f"at {name}: the sum of the gradients that reach it is {TOO_LARGE}"
    where = f"at {text_of.get(id(g), g.describe())} ({g.describe()})"
    local = _local_gradient(g)
    if local is None:
        return f"{where}: {err}"
    formula, point, size = local
    try:
        value = size()
    except (ZeroDivisionError, OverflowError):
        value = math.inf
    if value == math.inf:
        infinite = "infinite" if "divide by zero" in str(err) else TOO_LARGE
        return f"{where}: its local gradient {formula} at {point} is {infinite}"
    arriving = fmt(float(np.max(np.abs(dout)))) if dout is not None else "?"
    return (
        f"{where}: overflow: the arriving gradient ({arriving}) times the local gradient "
        f"{formula} at {point} is {TOO_LARGE}"
    )


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
