"""The explorer's data and page (no browser: test_explorer_browser.py drives Chromium), the
--html option of circuit and graph, and the notebook displays (explore, _repr_html_/_svg_)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.app.cli import main
from chainrule.engine.errors import ChainruleError, ShapeError
from chainrule.engine.gradcheck import gradcheck
from chainrule.lessons import explorer
from chainrule.lessons.explorer import data as exdata
from chainrule.lessons.explorer import summary
from chainrule.lessons.explorer.page import _json_for_script
from chainrule.nn import losses
from chainrule.training.loop import EpochRecord, History


def page_data(html: str) -> dict:
    """The JSON the page's script reads."""
    found = re.search(r'<script type="application/json" id="chainrule-data">(.*?)</script>', html)
    assert found is not None
    return json.loads(found.group(1))


def sent(data: dict, gate: str) -> dict[str, float]:
    """input id -> the number the gate ``gate`` sent it in the backward pass (scalars)."""
    step = next(s for s in data["backward"] if s["node"] == gate and not s.get("seed"))
    return {i["id"]: i["sent"]["scalar"] for i in step["inputs"] if i["sent"]}


@pytest.mark.parametrize(
    ("values", "grads"),
    [({"x": -2, "y": 5, "z": -4}, (-4, -4, 3)), ({"x": 3, "y": -1, "z": 2}, (2, 2, 2))],
)
def test_circuit_steps_are_the_cheatsheets_rows(values, grads):
    shown = explorer.from_circuit("(x+y)*z", values)
    data = shown.data
    q, z = values["x"] + values["y"], values["z"]
    assert data["forward"] == ["q", "f"]
    assert [s["node"] for s in data["backward"]] == ["f", "f", "q"]  # the seed, then each gate
    mul = data["backward"][1]
    assert mul["upstream"]["scalar"] == 1.0
    # mul swaps its inputs: local gradients z and q; sent = upstream * local
    assert [i["local"]["scalar"] for i in mul["inputs"]] == [z, q]
    assert sent(data, "f") == {"q": z, "z": q}
    add = data["backward"][2]
    assert add["upstream"]["scalar"] == z and [i["local"]["scalar"] for i in add["inputs"]] == [
        1,
        1,
    ]
    assert sent(data, "q") == {"x": grads[0], "y": grads[1]}
    nodes = {n["id"]: n for n in data["nodes"]}
    assert [nodes[k]["grad"]["scalar"] for k in "xyz"] == list(grads)
    assert nodes["f"]["value"]["scalar"] == q * z
    assert "∂f/∂q = z" in nodes["f"]["formula"] and "∂q/∂x = 1" in nodes["q"]["formula"]


def test_a_value_used_twice_receives_two_gradients_that_add_up():
    data = explorer.from_circuit("x*x + x", {"x": 3}).data
    received = [
        i["sent"]["scalar"] for s in data["backward"] for i in s["inputs"] if i["id"] == "x"
    ]
    assert sorted(received) == [1.0, 3.0, 3.0]  # x*x sends x twice, + sends 1
    x = next(n for n in data["nodes"] if n["id"] == "x")
    assert x["grad"]["scalar"] == 7.0 == sum(received)


def test_constants_and_failing_gates_as_the_circuit_command():
    data = explorer.from_circuit("2*x", {"x": 1.5}).data
    mul = data["backward"][1]
    assert mul["inputs"][0]["sent"] is None  # a constant needs no gradient
    assert mul["inputs"][1]["sent"]["scalar"] == 2.0
    with pytest.raises(cr.ExpressionError, match="log of zero"):
        explorer.from_circuit("log(x)", {"x": 0})


def two_layer():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((6, 5)).astype(np.float32), rng.integers(0, 3, 6)
    return nn.TwoLayerNet(5, 4, 3, np.random.default_rng(1)), X, y


def test_a_training_step_shows_the_engines_gradients():
    model, X, y = two_layer()
    shown = explorer.training_step(model, X, y, losses.softmax_loss, 0.1, "step")
    nodes = {n["shown"]: n for n in shown.data["nodes"]}
    # the engine alone, without the explorer
    reference, _, _ = two_layer()
    total = losses.softmax_loss(reference(X), y) + losses.l2_penalty(reference.weights(), 0.1)
    total.backward()
    for name, p in reference.named_parameters():
        exact = float(np.linalg.norm(p.grad.astype(np.float64)))
        assert nodes[name]["grad"]["norm"] == exact, name
        assert nodes[name]["grad"]["shape"] == list(p.shape)
    assert nodes["loss"]["value"]["scalar"] == float(total.data)
    # W1 feeds the affine+ReLU gate and its L2 term: the two products add up to its gradient
    W1 = nodes["W1"]["id"]
    parts = [i["sent"] for s in shown.data["backward"] for i in s["inputs"] if i["id"] == W1]
    assert len(parts) == 2 and "ΣW1²" in nodes
    local = next(
        i["local"]
        for s in shown.data["backward"]
        for i in s["inputs"]
        if s["node"] == nodes["ΣW1²"]["id"]
    )
    assert local["norm"] == pytest.approx(2 * np.linalg.norm(model.W1.data), rel=1e-6)  # 2W
    assert shown.data["note"] == ""


def test_arrays_are_summarised_with_a_downsampled_heatmap():
    a = np.arange(200.0).reshape(100, 2)
    s = exdata.summary(a)
    assert s["shape"] == [100, 2] and s["norm"] == float(np.linalg.norm(a))
    assert (s["min"], s["max"]) == (0.0, 199.0) and "values" not in s
    heat = s["heat"]
    assert (heat["rows"], heat["cols"], heat["block"]) == (50, 2, [2, 1])
    assert heat["cells"][:2] == [1.0, 2.0]  # means of rows 0-1: (0+2)/2, (1+3)/2
    small = exdata.summary(np.array([1.5, -2.0], dtype=np.float32))
    assert small["values"] == [1.5, -2.0]
    assert exdata.summary(np.float32(0.1))["scalar"] == float(np.float32(0.1))  # exact
    odd = exdata.summary(np.array([np.inf, 1.0, np.nan, -2.0]))
    assert odd["max"] == odd["norm"] == "nan"  # JSON has no NaN and no infinity
    assert exdata.summary(np.array([np.inf, 1.0]))["max"] == "inf"
    assert odd["heat"]["cells"] == [None, 1.0, None, -2.0] and odd["heat"]["scale"] == 2.0
    json.dumps(odd, allow_nan=False)
    edge = exdata.heatmap(np.arange(65.0))  # 65 columns: blocks of 2, the last one of 1
    assert edge["cols"] == 33 and edge["cells"][-2:] == [62.5, 64.0]


def test_a_deep_model_is_summarised_with_a_note():
    rng = np.random.default_rng(0)
    model = nn.MLP([5, *[3] * 12, 2], rng)
    X, y = rng.standard_normal((4, 5)).astype(np.float32), rng.integers(0, 2, 4)
    shown = explorer.training_step(model, X, y, losses.softmax_loss, 0.1, "deep")
    assert "hidden layers 3 to 10 are drawn as one box" in shown.data["note"]
    drawn = {n.id for n in shown.drawn.nodes}
    assert "layers 3–10" in drawn and summary.L2_BOX in drawn and len(drawn) < 40
    nodes = {n["shown"]: n for n in shown.data["nodes"]}
    assert nodes["W5"]["in"] == "layers 3–10" and nodes["W5"]["box"] is None
    assert nodes["W1"]["in"] is None and nodes["W1"]["box"] is not None
    # every parameter's gradient is still in the data, and every gate is still stepped through
    for name, p in model.named_parameters():
        assert nodes[name]["grad"]["norm"] == float(np.linalg.norm(p.grad.astype(np.float64)))
    gates = [n for n in shown.graph.nodes if n.kind == "gate"]
    assert len(shown.data["backward"]) == 1 + len(gates)
    assert "This model has" in shown.html()


def test_the_page_is_self_contained():
    html = explorer.from_circuit("(x+y)*z", {"x": -2, "y": 5, "z": -4}).html()
    assert "default-src 'none'" in html
    # no attribute or CSS that could fetch anything; the only URL is the SVG namespace
    assert not re.search(r"\b(src|href)\s*=", html)
    assert set(re.findall(r"url\(([^)]*)\)", html)) == {"#arrow"}  # the SVG's own marker
    assert "@import" not in html
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}
    assert page_data(html)["title"] == "f = (x+y)*z"
    assert _json_for_script({"a": "</script><!--"}) == '{"a":"\\u003c/script>\\u003c!--"}'


def test_explore_a_loss_tensor_runs_its_backward():
    model, X, y = two_layer()
    loss = losses.softmax_loss(model(X), y)
    shown = cr.explore(loss, model)
    assert model.W1.grad is not None  # as loss.backward() would have left it
    nodes = {n["shown"]: n for n in shown.data["nodes"]}
    assert nodes["W2"]["grad"]["norm"] == float(np.linalg.norm(model.W2.grad.astype(np.float64)))
    assert nodes["loss"]["grad"]["scalar"] == 1.0
    html = shown._repr_html_()
    assert (
        html.startswith("<iframe srcdoc=")
        and "&lt;script" in html
        and 'sandbox="allow-scripts"' in html
    )
    ET.fromstring(shown._repr_svg_())
    with pytest.raises(ChainruleError, match="already back-propagated"):
        cr.explore(loss)
    with pytest.raises(ShapeError, match="scalar"):
        cr.explore(model(X))


def test_graph_history_and_gradcheck_display_themselves():
    graph = explorer.from_circuit("(x+y)*z", {"x": -2, "y": 5, "z": -4}).graph
    svg = ET.fromstring(graph._repr_svg_())
    assert svg.tag.endswith("svg")
    history = History(
        [EpochRecord(1, 2.25, 0.5, 0.4, 0.1, 1.0), EpochRecord(2, 1.125, 0.75, 0.625, 0.1, 1.5)],
        best_epoch=2,
        best_val_accuracy=0.625,
    )
    html = history._repr_html_()
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", html)
    cells = [re.findall(r"<td>(.*?)</td>", r) for r in rows[1:]]
    assert cells == [
        ["1", "2.2500", "0.5000", "0.4000", "0.1", "1.00"],
        ["2", "1.1250", "0.7500", "0.6250", "0.1", "1.50"],
    ]
    assert "kept: epoch 2 (validation accuracy 0.6250)" in html
    assert html.count("<polyline") == 3  # the loss, the training and the validation accuracy
    ET.fromstring(re.search(r"<svg.*</svg>", html).group(0))
    report = gradcheck(lambda a: (a * a).sum(), [np.array([1.0, -2.0])])
    html = report._repr_html_()
    assert "<td>2</td>" in html and "gradient check: pass" in html


def test_nothing_imports_ipython():
    code = (
        "import sys, chainrule, chainrule.lessons.explorer, chainrule.engine.display, "
        "chainrule.training.display, chainrule.app.commands.circuit\n"
        "chainrule.explore\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('IPython', 'ipykernel')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_circuit_and_graph_write_the_page(tmp_path, capsys):
    page = tmp_path / "circuit.html"
    assert main(["circuit", "(x+y)*z", "x=-2", "y=5", "z=-4", "--html", str(page)]) == 0
    assert f"drawing: {page}" in capsys.readouterr().out
    assert sent(page_data(page.read_text("utf-8")), "q") == {"x": -4.0, "y": -4.0}
    step = tmp_path / "step.html"
    assert main(["graph", "--model", "two-layer", "--html", str(step), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["drawings"] == [str(step)]
    data = page_data(step.read_text("utf-8"))
    norms = {n["shown"]: n["grad"]["norm"] for n in data["nodes"] if n["kind"] == "param"}
    assert set(norms) == {"W1", "b1", "W2", "b2"} and all(v > 0 for v in norms.values())


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["circuit", "(x+", "x=1"], 2, "chainrule circuit: error:"),
        (["circuit", "x*y", "x=1", "--html", "{missing}/c.html"], 2, "--html"),
        (["graph", "--html", "{missing}/s.html"], 2, "--html"),
        (["circuit", "x*y", "x=1", "y=2", "--html", "{folder}"], 1, "chainrule circuit: error:"),
    ],
)
def test_cli_bad_input_is_one_line(args, status, message, tmp_path, capsys):
    args = [a.format(missing=tmp_path / "nope", folder=tmp_path) for a in args]
    assert main(args) == status
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
