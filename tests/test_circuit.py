"""The worked circuit: the cheatsheet's numbers exactly, as a table and as JSON; bad input named."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from chainrule.app.cli import main
from chainrule.engine.errors import ExpressionError
from chainrule.lessons import circuit

ROWS = [
    ({"x": -2, "y": 5, "z": -4}, 3, -12, {"x": -4, "y": -4, "z": 3}),
    ({"x": 3, "y": -1, "z": 2}, 2, 4, {"x": 2, "y": 2, "z": 2}),
]


@pytest.mark.parametrize(("values", "q", "f", "grads"), ROWS)
def test_cheatsheet_rows_exactly(values, q, f, grads):
    result = circuit.run("(x+y)*z", values)
    nodes = {n.name: n for n in result.nodes}
    assert nodes["q"].value == q and nodes["q"].kind == "add"
    assert result.output == f and nodes["f"].kind == "mul"
    assert result.grads == grads
    assert nodes["q"].grad == values["z"]  # df/dq = z
    assert nodes["z"].grad == q  # df/dz = q


@pytest.mark.parametrize(("values", "q", "f", "grads"), ROWS)
def test_cli_json(values, q, f, grads, capsys):
    args = ["circuit", "(x+y)*z", *(f"{k}={v}" for k, v in values.items()), "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["output"] == f
    assert out["grads"] == grads
    assert [g["op"] for g in out["gates"]] == ["add", "mul"]
    assert out["gates"][0]["value"] == q
    assert out["backward_order"][0] == "f"


def test_cli_table(capsys):
    assert main(["circuit", "(x+y)*z", "x=-2", "y=5", "z=-4"]) == 0
    text = capsys.readouterr().out
    forward, backward = text.split("backward pass")
    lines = [line.split() for line in forward.splitlines()]
    assert ["q", "add", "x,", "y", "3"] in lines
    assert ["f", "mul", "q,", "z", "-12"] in lines
    rows = [line.split() for line in backward.splitlines() if line.startswith("  ")][1:]
    assert rows == [["f", "1"], ["z", "3"], ["q", "-4"], ["y", "-4"], ["x", "-4"]]
    assert "df/dx = -4   df/dy = -4   df/dz = 3" in text


def test_every_function_and_operator():
    result = circuit.run(
        "x*x + exp(y) - max(x, 0)**2 / 2 + 2*x - -log(z) + sigmoid(y) + tanh(y) + relu(-x)",
        {"x": 3, "y": 0, "z": 1},
    )
    assert result.output == pytest.approx(9 + 1 - 4.5 + 6 + 0 + 0.5 + 0 + 0)
    assert result.grads["x"] == pytest.approx(2 * 3 - 3 + 2)
    assert result.grads["y"] == pytest.approx(1 + 0.25 + 1)
    assert result.grads["z"] == pytest.approx(1.0)


def test_a_variable_used_twice_accumulates():
    assert circuit.run("x*x", {"x": 3}).grads == {"x": 6}


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('echo hi')", "not an allowed function"),
        ("x.real", "'attribute access' is not allowed"),
        ("x[0]", "'indexing' is not allowed"),
        ("x ^ y", r"'\^ \(use \*\* for powers\)' is not allowed"),
        ("x // y", "'//' is not allowed"),
        ("lambda: 1", "'lambda' is not allowed"),
        ("x if y else z", "'if/else' is not allowed"),
        ("'a' + x", "only numbers may appear as constants"),
        ("True + x", "only numbers may appear as constants"),
        ("exp(x, y)", r"exp\(\) takes 1 argument, got 2"),
        ("max(x)", r"max\(\) takes 2 arguments, got 1"),
        ("exp + x", "'exp' is a function"),
        ("x ** y", "needs a constant number as exponent"),
        ("(x + ", "cannot parse"),
        ("", "the expression is empty"),
        ("1 + 2", "no variables"),
    ],
)
def test_bad_expressions_are_named(expression, message):
    try:  # give a value to each variable the expression has, so the error is about the syntax
        names = circuit.variables(circuit.parse(expression))
    except ExpressionError:
        names = []
    with pytest.raises(ExpressionError, match=message):
        circuit.run(expression, {n: 1.5 for n in names})


def test_missing_and_unknown_values():
    with pytest.raises(ExpressionError, match="no value for z"):
        circuit.run("(x+y)*z", {"x": 1, "y": 2})
    with pytest.raises(ExpressionError, match="w is not in the expression"):
        circuit.run("x+y", {"x": 1, "y": 2, "w": 3})
    with pytest.raises(ExpressionError, match="expected NAME=NUMBER"):
        circuit.parse_assignments(["x:1"])
    with pytest.raises(ExpressionError, match="not a number"):
        circuit.parse_assignments(["x=abc"])


# Each failure names the part of the expression (the gate) and the cause, in one line.
FAILURES = [
    # forward pass
    ("log(x)", {"x": 0}, r"forward pass failed at log\(x\): log of zero"),
    ("log(x - y)", {"x": 1, "y": 3}, r"at log\(x - y\): log of a negative number \(-2\)"),
    ("1 / x", {"x": 0}, r"at 1 / x: division by zero in div \(1 / 0\)"),
    ("x / y", {"x": 0, "y": 0}, r"at x / y: 0 / 0 in div \(undefined\)"),
    ("exp(x)", {"x": 710}, r"at exp\(x\): overflow in exp: exp\(710\) is beyond float64"),
    ("x ** -1", {"x": 0}, r"0 \*\* -1 in pow: zero to a negative power divides by zero"),
    ("x ** 0.5", {"x": -2}, r"\(-2\) \*\* 0.5 in pow: a negative number to a fractional power"),
    ("x ** -2", {"x": 1e-160}, r"overflow in pow: 1e-160 \*\* -2 is beyond float64"),
    ("x * y", {"x": 1e200, "y": 1e200}, r"at x \* y: overflow in mul: 1e\+200 \* 1e\+200"),
    ("x + y", {"x": 1e308, "y": 1e308}, r"overflow in add: 1e\+308 \+ 1e\+308"),
    ("x - y", {"x": 1e308, "y": -1e308}, r"overflow in sub: 1e\+308 - \(-1e\+308\)"),
    # backward pass: the forward values are fine, a gradient is not
    (
        "x ** 0.5",
        {"x": 0},
        r"backward pass failed at x \*\* 0.5 \(pow 0.5\): its local "
        r"gradient 0.5 \* x \*\* -0.5 at x = 0 is infinite",
    ),
    (
        "log(x)",
        {"x": 1e-310},
        r"at log\(x\) \(log\): its local gradient 1 / x at x = 1e-310 "
        "is beyond float64",
    ),
    (
        "1 / x",
        {"x": 1e-200},
        r"at 1 / x \(div\): its local gradient 1 / b and -a / b \*\* 2 at "
        r"a = 1, b = 1e-200 is beyond",
    ),
    (
        "log(x) * 1e300",
        {"x": 1e-10},
        r"at log\(x\) \(log\): overflow: the arriving gradient "
        r"\(1e\+300\) times the local gradient 1 / x at x = 1e-10",
    ),
    (
        "x * 1e308 + x * 1e308",
        {"x": 1e-10},
        "at x: the sum of the gradients that reach it is beyond float64",
    ),
]


@pytest.mark.parametrize(("expression", "values", "message"), FAILURES)
def test_a_failure_names_the_gate_and_the_cause(expression, values, message):
    with pytest.raises(ExpressionError, match=message) as info:
        circuit.run(expression, values)
    assert "\n" not in str(info.value) and "e.g." not in str(info.value)


def test_an_underflow_is_not_a_failure():
    # exp(-800) is 0 in float64, correctly rounded; its gradient is 0 too
    result = circuit.run("exp(x) + y * 1e-200 * 1e-200", {"x": -800, "y": 1})
    assert result.output == 0.0 and result.grads == {"x": 0.0, "y": 0.0}


@pytest.mark.parametrize("constant", ["1e309", "-1e400", "1" + "0" * 400])
def test_a_constant_beyond_float64_is_refused(constant):
    # inf - inf (NaN) could otherwise follow from an infinite constant
    with pytest.raises(ExpressionError, match="beyond float64's range"):
        circuit.run(f"x + {constant}", {"x": 1})


def test_the_command_line_names_the_gate(capsys):
    assert main(["circuit", "exp(x) / y", "x=1", "y=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "chainrule circuit: error: the forward pass failed at exp(x) / y: division by zero in "
        "div (2.718281828 / 0)"
    )


@pytest.mark.parametrize("entry", [["chainrule"], [sys.executable, "-m", "chainrule"]])
def test_command_line_entry_points(entry):
    if entry == ["chainrule"]:
        entry = [str(__import__("pathlib").Path(sys.executable).with_name("chainrule"))]
    done = subprocess.run(
        [*entry, "circuit", "(x+y)*z", "x=3", "y=-1", "z=2", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(done.stdout)
    assert out["output"] == 4 and out["grads"] == {"x": 2, "y": 2, "z": 2}


def test_command_line_errors_are_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "chainrule", "circuit", "open('f')", "x=1"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "not an allowed function" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("expression", "x", "output", "grad"),
    [
        ("x**0", 0, 1, 0),
        ("x**0", -3, 1, 0),
        ("x**1", 0, 0, 1),
        ("x**2", 0, 0, 0),
        ("x**3", -2, -8, 12),
        ("x**-1", -2, -0.5, -0.25),
        ("x**1.5", 0, 0, 0),
    ],
)
def test_powers_at_zero_and_negative_bases(expression, x, output, grad):
    result = circuit.run(expression, {"x": x})
    assert (result.output, result.grads["x"]) == (output, grad)


def test_an_infinite_derivative_is_named():
    with pytest.raises(
        ExpressionError,
        match=r"the backward pass failed at x \*\* 0.5 .*local gradient .* is infinite",
    ):
        circuit.run("x**0.5", {"x": 0})


def test_underflow_is_a_value_not_an_error():
    # exp(-800) and sigmoid's far tail round to 0 (or a subnormal): right values, not failures
    assert circuit.run("exp(x)", {"x": -800}).grads["x"] == 0
    result = circuit.run("log(sigmoid(x))", {"x": -40})
    assert result.output == pytest.approx(-40 - 4.248354255291589e-18, rel=1e-15)
    assert result.grads["x"] == pytest.approx(1.0, rel=1e-15)
    assert circuit.run("sigmoid(x)", {"x": -800}).output == 0
    assert circuit.run("tanh(x)*1e-200*1e-200", {"x": 1}).output == 0
