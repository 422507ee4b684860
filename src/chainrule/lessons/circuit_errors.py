"""Why a circuit's forward or backward pass failed, in words that name the gate and the cause.

The circuit runs under ``np.errstate(all="raise", under="ignore")``: overflow, division by zero
and invalid operations raise FloatingPointError at the gate. These functions turn that error
into the end of one line for the user, e.g. "log of zero (log(0) is minus infinity); log needs
a number > 0", or "at log(x) (log): its local gradient 1 / x at x = 0 is infinite".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from chainrule.engine import gates
from chainrule.engine.tensor import Tensor
from chainrule.lessons.expression import fmt

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
    found: tuple[Any, Any] = (None, None)
    tb = err.__traceback__
    while tb is not None:
        local = tb.tb_frame.f_locals
        if isinstance(local.get("self"), gates.Gate):
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
