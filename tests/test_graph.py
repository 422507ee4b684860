"""The circuit as a picture: every node's value and gradient in the SVG; DOT; a training step."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from chainrule import nn
from chainrule.app.cli import main
from chainrule.lessons import circuit, graph
from chainrule.nn import losses

SVG = "{http://www.w3.org/2000/svg}"


def texts(svg: str) -> dict[str, dict[str, str]]:
    """class -> {data-node: text} for the text elements of an SVG document."""
    root = ET.fromstring(svg)
    found: dict[str, dict[str, str]] = {}
    for t in root.iter(f"{SVG}text"):
        node = t.get("data-node")
        if node is not None:
            found.setdefault(t.get("class"), {})[node] = t.text
    return found


@pytest.fixture
def cheatsheet() -> graph.Graph:
    return graph.from_circuit(circuit.run("(x+y)*z", {"x": -2, "y": 5, "z": -4}))


def test_svg_has_every_value_and_gradient_of_the_cheatsheet_circuit(cheatsheet):
    found = texts(graph.to_svg(cheatsheet))
    assert found["value"] == {"x": "-2", "y": "5", "z": "-4", "q": "3", "f": "-12"}
    assert found["grad"] == {"x": "-4", "y": "-4", "z": "3", "q": "-4", "f": "1"}
    assert found["gate"] == {"q": "+", "f": "*"}  # gate names in the nodes
    assert {"x", "y", "z", "q", "f"} <= set(found["name"])


def test_svg_draws_values_above_in_green_and_gradients_below_in_red(cheatsheet):
    root = ET.fromstring(graph.to_svg(cheatsheet))
    by_class: dict[tuple[str, str], ET.Element] = {
        (t.get("class"), t.get("data-node")): t for t in root.iter(f"{SVG}text")
    }
    for node in "xyzqf":
        value, grad = by_class[("value", node)], by_class[("grad", node)]
        assert value.get("fill") == graph.VALUE_COLOUR and grad.get("fill") == graph.GRAD_COLOUR
        assert float(value.get("y")) < float(grad.get("y"))


def test_inputs_stand_left_of_the_gates(cheatsheet):
    boxes = graph.layout(cheatsheet)
    assert boxes["x"].x == boxes["y"].x == boxes["z"].x < boxes["q"].x < boxes["f"].x


def test_nodes_do_not_overlap():
    result = circuit.run("1/(1+exp(-(w0*x0+w1*x1+w2)))", dict(w0=2, x0=-1, w1=-3, x1=-2, w2=-3))
    drawn = graph.from_circuit(result)
    boxes = list(graph.layout(drawn).values())
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            apart_x = a.right <= b.left or b.right <= a.left
            apart_y = abs(a.y - b.y) >= (a.height + b.height) / 2
            assert apart_x or apart_y
    found = texts(graph.to_svg(drawn))
    assert found["value"]["f"] == "0.7311" and found["grad"]["w0"] == "-0.1966"
    assert sum(1 for k in found["value"] if k.startswith("1@")) == 2  # a 1 by each gate using it


def test_dot_is_well_formed(cheatsheet):
    dot = graph.to_dot(cheatsheet)
    assert dot.startswith("digraph chainrule {") and dot.rstrip().endswith("}")
    assert dot.count("{") == dot.count("}")
    declared = set(re.findall(r'^\s+"([^"]+)" \[', dot, re.M))
    edges = re.findall(r'^\s+"([^"]+)" -> "([^"]+)"', dot, re.M)
    assert declared == {"x", "y", "z", "q", "f", "f__out"}
    assert len(edges) == 5 and all(a in declared and b in declared for a, b in edges)
    for label in re.findall(r"label=<(.*)>\]", dot):
        assert label.count("<font") == label.count("</font>")
    assert '<font color="#1b7f2a">-2</font><br/><font color="#c62828">-4</font>' in dot


def test_table_lists_forward_values_and_gradients(cheatsheet):
    rows = [line.split() for line in graph.table(cheatsheet).splitlines()[3:]]
    assert rows[2] == ["q", "+", "x,", "y", "3", "-4"]
    assert rows[-1] == ["f", "*", "q,", "z", "-12", "1"]


def two_layer_step(unfused: bool) -> tuple[graph.Graph, nn.TwoLayerNet, float, np.ndarray]:
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    model = nn.TwoLayerNet(5, 4, 3, rng, dtype=np.float64)
    drawn = graph.step_graph(model, X, y, losses.softmax_loss, 0.1, "step", unfused=unfused)
    # the same loss and gradient, by the engine without the drawing
    model.zero_grad()
    total = losses.softmax_loss(model(X), y) + losses.l2_penalty(model.weights(), 0.1)
    total.backward()
    return drawn, model, float(total.data), model.W1.grad


@pytest.mark.parametrize("unfused", [False, True])
def test_a_training_step_graph(unfused):
    drawn, _, loss, dW1 = two_layer_step(unfused)
    by_name = {n.name or n.label: n for n in drawn.nodes}
    assert {"x", "W1", "b1", "W2", "b2", "scores", "data loss", "L2", "loss"} <= set(by_name)
    assert by_name["W1"].value == "4×5" and by_name["x"].grad == ""
    assert by_name["W1"].grad == f"‖∇‖ {np.linalg.norm(dW1):.3g}"
    assert by_name["loss"].value == f"{loss:.4g}" and by_name["loss"].grad == "1"
    gates = [n.label for n in drawn.nodes if n.kind == "gate"]
    if unfused:
        assert gates[:3] == ["affine", "relu", "affine"]
    else:
        assert gates[:2] == ["affine+ReLU", "affine"]
    assert gates.count("ΣW²") == 2 and "softmax CE" in gates
    assert drawn.output().name == "loss"
    found = texts(graph.to_svg(drawn))
    assert len(found["value"]) == len(drawn.nodes)


def test_the_built_graph_is_data_a_renderer_can_use(cheatsheet):
    assert cheatsheet.edges() == [("x", "q"), ("y", "q"), ("q", "f"), ("z", "f")]
    by_id = {n.id: n for n in cheatsheet.nodes}
    assert [by_id[k].gate for k in "xyzqf"] == [None, None, None, "add", "mul"]
    assert float(by_id["q"].forward) == 3 and float(by_id["q"].backward) == -4
    assert float(by_id["z"].backward) == 3 and by_id["z"].shape == ()
    boxes = graph.layout(cheatsheet)
    assert [boxes[k].shape for k in "xqf"] == ["rect", "circle", "circle"]
    assert boxes["q"].width == boxes["q"].height == 40


def test_a_step_graph_carries_the_arrays():
    drawn, model, loss, dW1 = two_layer_step(unfused=False)
    by_name = {n.name or n.label: n for n in drawn.nodes}
    W1 = by_name["W1"]
    assert W1.shape == (4, 5) and W1.kind == "param" and W1.gate is None
    np.testing.assert_array_equal(W1.forward, model.W1.data)
    np.testing.assert_array_equal(W1.backward, dW1)
    assert by_name["x"].backward is None and by_name["x"].shape == (6, 5)
    assert by_name["h1"].gate == "affine_relu" and by_name["h1"].label == "affine+ReLU"
    assert float(by_name["loss"].forward) == loss and float(by_name["loss"].backward) == 1
    assert len(drawn.edges()) == sum(len(set(n.inputs)) for n in drawn.nodes)


def test_cli_circuit_writes_svg_and_dot(tmp_path, capsys):
    svg, dot = tmp_path / "c.svg", tmp_path / "c.dot"
    assert (
        main(["circuit", "(x+y)*z", "x=-2", "y=5", "z=-4", "--svg", str(svg), "--dot", str(dot)])
        == 0
    )
    out = capsys.readouterr().out
    assert f"drawing: {svg}" in out and "df/dx = -4" in out
    assert texts(svg.read_text())["value"]["f"] == "-12"
    assert dot.read_text().startswith("digraph")


@pytest.mark.parametrize("model", ["linear-svm", "softmax", "two-layer", "mlp"])
def test_cli_graph_every_model(model, tmp_path, capsys):
    assert main(["graph", "--model", model, "--out", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["drawings"] == [str(tmp_path / f"{model}.svg"), str(tmp_path / f"{model}.dot")]
    names = {n["name"] or n["label"] for n in out["nodes"]}
    assert {"x", "scores", "data loss", "loss"} <= names
    assert ("W" in names) if model in ("linear-svm", "softmax") else ("W2" in names)
    ET.fromstring((tmp_path / f"{model}.svg").read_text())  # parses


def test_cli_graph_table(capsys):
    assert main(["graph", "--unfused"]) == 0
    text = capsys.readouterr().out
    assert "relu" in text and "softmax CE" in text and "‖∇‖" in text


@pytest.mark.parametrize(
    ("args", "message"), [(["--batch", "0"], "--batch"), (["--reg", "-1"], "--reg")]
)
def test_cli_graph_refuses_bad_settings(args, message, capsys):
    assert main(["graph", *args]) == 2
    assert message in capsys.readouterr().err
