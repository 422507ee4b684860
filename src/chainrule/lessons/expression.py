"""The circuit's expressions: parsed with ``ast`` and checked against an allow-list.

Only these become gates: numbers, variable names, ``+ - * / **``, unary minus and calls of exp,
log, relu, sigmoid, tanh and max. Nothing is ever passed to ``eval``. Anything else is an
ExpressionError naming what is not allowed and what is.
"""

from __future__ import annotations

import ast
import math
import warnings
from collections.abc import Callable

from chainrule.engine import tensor as T
from chainrule.engine.errors import ExpressionError
from chainrule.engine.tensor import Tensor

# name -> (number of arguments, the gate's function)
FUNCTIONS: dict[str, tuple[int, Callable[..., Tensor]]] = {
    "exp": (1, T.exp),
    "log": (1, T.log),
    "relu": (1, T.relu),
    "sigmoid": (1, T.sigmoid),
    "tanh": (1, T.tanh),
    "max": (2, T.maximum),
}
_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
# How an error names what is not allowed (a Python user may try any of these).
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


def fmt(value: float) -> str:
    """A number as short as it can be without losing digits (3.0 prints as 3; nan, inf as
    Python writes them; otherwise up to 10 significant digits)."""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.10g}"


def _not_allowed(node: ast.AST) -> ExpressionError:
    what = _NAMES_OF_NODES.get(type(node), type(node).__name__)
    allowed = "numbers, names, + - * / **, unary minus, " + ", ".join(FUNCTIONS) + " calls"
    return ExpressionError(f"'{what}' is not allowed in an expression (allowed: {allowed})")


def parse(expression: str) -> ast.expr:
    """Parse and check ``expression`` against the allow-list. Returns the checked AST body.

    Raises ExpressionError for an empty or unparsable expression (with the column), a node
    outside the allow-list, a constant that is not a finite number, a function named but not
    called, or a call with the wrong number of arguments.
    """
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
            continue  # checked with its Call
        if not isinstance(node, (ast.operator, ast.unaryop, ast.expr_context)):
            _check(node, expression.strip())
    return tree.body


def _check(node: ast.AST, source: str) -> None:
    """Raise ExpressionError unless ``node`` (of the expression ``source``) is allowed."""
    if isinstance(node, ast.Constant):
        _check_constant(node, source)
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
        _check_call(node)
    else:
        raise _not_allowed(node)


def _check_constant(node: ast.Constant, source: str) -> None:
    if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
        raise ExpressionError(f"only numbers may appear as constants, got {node.value!r}")
    try:
        finite = math.isfinite(float(node.value))
    except OverflowError:
        finite = False
    if not finite:  # 1e309 parses as inf: then inf - inf and the like could follow
        raise ExpressionError(
            f"the constant {ast.get_source_segment(source, node) or node.value}"
            " is beyond float64's range (about 1.8e308); expected a finite number"
        )


def _check_call(node: ast.Call) -> None:
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


def variables(body: ast.expr) -> list[str]:
    """The variable names of a checked expression (``parse``'s result), in order of first
    appearance, each once."""
    called = {id(n.func) for n in ast.walk(body) if isinstance(n, ast.Call)}
    found = [n for n in ast.walk(body) if isinstance(n, ast.Name) and id(n) not in called]
    found.sort(key=lambda n: (n.lineno, n.col_offset))
    return list(dict.fromkeys(n.id for n in found))
