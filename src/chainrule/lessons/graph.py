"""The circuit as a picture: every gate with its forward value and its gradient, left to right.

Drawn the way the lecture draws circuits: inputs on the left, a gate per node, and on each edge
the value flowing forward (above, green) and the gradient flowing back (below, red). Two
sources: ``from_circuit`` (a scalar expression, ``circuit.run``) and ``model_graph`` (one training
step of a small model: affine, ReLU, the loss gate, the L2 terms, the total loss).

``to_svg`` writes the SVG itself (a layered layout by topological depth), so no graphviz binary
is needed; ``to_dot`` writes plain DOT text for those who have one.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.engine.tensor import Tensor, topological_order
from chainrule.lessons.circuit import Circuit

VALUE_COLOUR = "#1b7f2a"  # forward values: green
GRAD_COLOUR = "#c62828"  # gradients: red
SYMBOLS = {"add": "+", "sub": "−", "mul": "*", "div": "/", "neg": "−x"}
SHORT = {
    "softmax_cross_entropy": "softmax CE",
    "multiclass_hinge": "SVM hinge",
    "sum_of_squares": "ΣW²",
    "affine_relu": "affine+ReLU",
}


@dataclass
class GraphNode:
    """One tensor of the graph: a leaf (input, parameter, constant) or a gate's output.

    label: drawn in the node (a gate's name, or a leaf's name). name: the output's name (q, f,
    scores...), drawn above a gate. value / grad: the texts drawn on the edges leaving the node.
    """

    id: str
    label: str
    kind: str  # "input", "param", "const" or "gate"
    inputs: list[str]
    value: str
    grad: str
    name: str = ""


@dataclass
class Graph:
    """Nodes in forward order (every node after its inputs)."""

    title: str
    nodes: list[GraphNode] = field(default_factory=list)
    leaves_left: bool = True  # all leaves in the first column, else next to their first use

    def consumers(self) -> dict[str, list[str]]:
        """id -> the ids of the nodes that take it as an input, in forward order."""
        out: dict[str, list[str]] = {n.id: [] for n in self.nodes}
        for n in self.nodes:
            for i in n.inputs:
                if n.id not in out[i]:
                    out[i].append(n.id)
        return out

    def output(self) -> GraphNode:
        """The last node: what the backward pass starts from."""
        return self.nodes[-1]


# --- building graphs ----------


def from_circuit(circuit: Circuit) -> Graph:
    """The graph of a scalar circuit: inputs x, y, ...; gates with their q / f names.

    A constant is drawn once per gate that uses it, next to that gate (the circuit names
    constants by value, so two 1s are one name there).
    """
    graph = Graph(f"f = {circuit.expression}")
    constants = {n.name: n for n in circuit.nodes if n.kind == "const"}
    for n in circuit.nodes:
        if n.kind == "const":
            continue
        inputs = []
        for i, name in enumerate(n.inputs):
            if name in constants:
                const_id = f"{name}@{n.name}.{i}"
                graph.nodes.append(
                    GraphNode(const_id, name, "const", [], _number(constants[name].value), "")
                )
                name = const_id
            inputs.append(name)
        gate = n.kind != "input"
        graph.nodes.append(
            GraphNode(
                id=n.name,
                label=SYMBOLS.get(n.kind, n.kind) if gate else n.name,
                kind="gate" if gate else "input",
                inputs=inputs,
                value=_number(n.value),
                grad=_number(n.grad),
                name=n.name if gate else "",
            )
        )
    return graph


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape) if shape else "scalar"


def _number(x: float) -> str:
    return f"{x:.4g}"


def model_graph(
    forward: Callable[[Tensor], Tensor],
    loss_fn: Callable[[Tensor, Any], Tensor],
    params: Sequence[tuple[str, Tensor]],
    X: np.ndarray,
    y: np.ndarray,
    reg: float,
    title: str,
) -> Graph:
    """The gates of one training step: forward(x) -> scores -> data loss, + reg * sum W^2.

    forward: the model's forward pass (Tensor (N, D) -> scores (N, K)); params: its (name,
    Tensor) pairs; X (N, D), y (N,). The graph is recorded BEFORE backward (backward frees it),
    then backward runs and each node's gradient is read. A node's value text is its shape (or
    its value, for a scalar); its grad text the gradient's norm (or value, for a scalar).
    """
    from chainrule.nn.losses import l2_penalty

    for _, p in params:
        p.grad = None
    x = Tensor(X)
    scores = forward(x)
    data_loss = loss_fn(scores, y)
    weights = [p for _, p in params if p.ndim >= 2]
    l2 = l2_penalty(weights, reg)
    loss = data_loss + l2
    order = topological_order(loss)
    names = {id(p): name for name, p in params}
    names.update(
        {
            id(x): "x",
            id(scores): "scores",
            id(data_loss): "data loss",
            id(l2): "L2",
            id(loss): "loss",
        }
    )
    ids = {id(t): f"n{i}" for i, t in enumerate(order)}
    recorded = [
        (t, t.gate.describe() if t.gate is not None else None, list(t.inputs)) for t in order
    ]
    loss.backward()

    graph = Graph(title, leaves_left=False)
    for t, gate, inputs in recorded:
        name = names.get(id(t)) or t.name or ""
        if gate is None:
            kind = "param" if id(t) in names and name != "x" else "input"
            if not t.requires_grad and name != "x":
                kind, name = "const", _number(float(t.data)) if t.size == 1 else "const"
            label = name
        else:
            kind, label = "gate", SYMBOLS.get(gate, SHORT.get(gate, gate))
        scalar = t.size == 1
        value = _number(float(t.data)) if scalar else _shape(t.shape)
        if t.grad is None:
            grad = ""
        elif scalar:
            grad = _number(float(t.grad))
        else:
            grad = f"‖∇‖ {float(np.linalg.norm(t.grad)):.3g}"
        graph.nodes.append(
            GraphNode(
                id=ids[id(t)],
                label=label,
                kind=kind,
                inputs=[ids[id(i)] for i in inputs],
                value=value,
                grad=grad,
                name=name if kind == "gate" else "",
            )
        )
    return graph


def table(graph: Graph) -> str:
    """Every node in forward order with its inputs, forward value and gradient, as text."""
    by_id = {n.id: n for n in graph.nodes}

    def show(n: GraphNode) -> str:
        return n.name or n.label if n.kind == "gate" else n.label

    rows = [(show(n), n.label if n.kind == "gate" else n.kind, n) for n in graph.nodes]
    width = max(4, *(len(r[0]) for r in rows))
    gate_width = max(4, *(len(r[1]) for r in rows))
    input_texts = [", ".join(show(by_id[i]) for i in n.inputs) for n in graph.nodes]
    input_width = max(6, *(len(s) for s in input_texts))
    lines = [
        graph.title,
        "",
        f"  {'node':<{width}}  {'gate':<{gate_width}}  {'inputs':<{input_width}}  "
        f"{'forward':>12}  {'backward':>14}",
    ]
    for (shown, gate, n), inputs in zip(rows, input_texts):
        lines.append(
            f"  {shown:<{width}}  {gate:<{gate_width}}  {inputs:<{input_width}}  "
            f"{n.value:>12}  {n.grad or '-':>14}"
        )
    return "\n".join(lines)


# --- layout ----------

CHAR_WIDTH = 7.2  # px per character at the 12 px font (an estimate: no font metrics here)
ROW_HEIGHT = 78
MARGIN = 24


@dataclass
class _Box:
    x: float  # centre
    y: float
    width: float
    height: float

    @property
    def left(self) -> float:
        return self.x - self.width / 2

    @property
    def right(self) -> float:
        return self.x + self.width / 2


def _text_width(text: str, size: float = 12) -> float:
    return len(text) * CHAR_WIDTH * size / 12


def layout(graph: Graph) -> dict[str, _Box]:
    """Node boxes: columns by topological depth, rows by the mean position of neighbours.

    Inputs stand in the first column (``leaves_left``) unless their straight edge would run
    through another node; constants, and every leaf when not ``leaves_left``, stand in the
    column just before their first use.
    """
    consumers = graph.consumers()
    near_use = {
        n.id for n in graph.nodes if not n.inputs and (n.kind == "const" or not graph.leaves_left)
    }
    for _ in range(3):
        depth, y = _place(graph, consumers, near_use)
        crossing = {
            n.id
            for n in graph.nodes
            if not n.inputs and n.id not in near_use and _runs_through(n.id, consumers, depth, y)
        }
        if not crossing:
            break
        near_use |= crossing
    _clear_long_edges(graph, consumers, depth, y)
    low = min(y.values())
    by_id = {n.id: n for n in graph.nodes}
    # Column width: the widest node plus room for the widest edge label after it.
    label_room = max((_stub_length(n) for n in graph.nodes), default=0)
    sizes = {nid: _node_size(by_id[nid]) for nid in y}
    node_room = max(w for w, _ in sizes.values())
    step = node_room + label_room + 50
    return {
        nid: _Box(
            MARGIN + node_room / 2 + depth[nid] * step,
            MARGIN + 40 + (y[nid] - low) * ROW_HEIGHT,
            *sizes[nid],
        )
        for nid in y
    }


def _place(
    graph: Graph, consumers: dict[str, list[str]], near_use: set[str]
) -> tuple[dict[str, int], dict[str, float]]:
    """(column, row) of every node, in layout units."""
    # Gates first, as if leaves cost nothing; then a leaf goes just before the LAST gate that
    # uses it (so W2 stands by the second affine, not by its L2 term) or, for inputs drawn on
    # the left, before everything; then the gates are pushed right of their inputs again, and
    # the leaves placed again, until nothing moves.
    depth: dict[str, int] = {}
    for n in graph.nodes:
        depth[n.id] = 1 + max((depth[i] for i in n.inputs if i not in near_use), default=-1)
    for _ in range(len(graph.nodes)):
        before = dict(depth)
        for n in graph.nodes:
            if n.inputs:
                depth[n.id] = 1 + max(depth[i] for i in n.inputs)
            elif n.id in near_use and consumers[n.id]:
                depth[n.id] = max(before[c] for c in consumers[n.id]) - 1
            else:
                depth[n.id] = -1
        if depth == before:
            break
    low_depth = min(depth.values())
    depth = {nid: d - low_depth for nid, d in depth.items()}
    columns: dict[int, list[str]] = {}
    for n in graph.nodes:
        columns.setdefault(depth[n.id], []).append(n.id)
    inputs = {n.id: n.inputs for n in graph.nodes}
    y = {nid: float(row) for col in columns.values() for row, nid in enumerate(col)}
    # A few sweeps: gates move to the mean of their inputs, leaves to the mean of their users,
    # then each column is put in that order with at least one row between neighbours.
    for _ in range(4):
        wanted = {}
        for nid in y:
            near = inputs[nid] or consumers[nid]
            wanted[nid] = float(np.mean([y[m] for m in near])) if near else y[nid]
        for col in columns.values():
            col.sort(key=lambda nid: wanted[nid])
            last = -np.inf
            for nid in col:
                y[nid] = max(wanted[nid], last + 1.0)
                last = y[nid]
    return depth, y


def _clear_long_edges(
    graph: Graph, consumers: dict[str, list[str]], depth: dict[str, int], y: dict[str, float]
) -> None:
    """Move nodes that sit on an edge spanning several columns down a row (with the nodes
    below them in their column), until no edge runs through a node or a few rounds have
    passed."""
    for _ in range(3 * len(graph.nodes)):
        blocked = _first_blocked(graph, consumers, depth, y)
        if blocked is None:
            return
        d, row = depth[blocked], y[blocked]
        for nid in y:
            if depth[nid] == d and y[nid] >= row:
                y[nid] += 1.0


def _first_blocked(
    graph: Graph, consumers: dict[str, list[str]], depth: dict[str, int], y: dict[str, float]
) -> str | None:
    for n in graph.nodes:
        for target in consumers[n.id]:
            d0, d1 = depth[n.id], depth[target]
            for other, d in depth.items():
                if d0 < d < d1:
                    at = y[n.id] + (y[target] - y[n.id]) * (d - d0) / (d1 - d0)
                    if abs(at - y[other]) < 0.6:
                        return other
    return None


def _runs_through(
    nid: str, consumers: dict[str, list[str]], depth: dict[str, int], y: dict[str, float]
) -> bool:
    """Whether a straight edge from ``nid`` to one of its users passes over another node."""
    for target in consumers[nid]:
        d0, d1 = depth[nid], depth[target]
        for other, d in depth.items():
            if d0 < d < d1:
                at = y[nid] + (y[target] - y[nid]) * (d - d0) / (d1 - d0)
                if abs(at - y[other]) < 0.6:
                    return True
    return False


def _node_size(node: GraphNode) -> tuple[float, float]:
    if node.kind == "gate":
        if len(node.label) <= 2:
            return 40.0, 40.0  # a circle, as the lecture draws + and *
        return _text_width(node.label) + 20, 30.0
    return _text_width(node.label, 13) + 12, 26.0


# --- SVG ----------


def to_svg(graph: Graph) -> str:
    """The graph as a standalone SVG document (text).

    Each node's forward value (green, above) and gradient (red, below) are written once, on a
    short straight stub leaving the node; the edges to the gates that use it fan out from the
    stub's end (where a value is shared, its gradients add up). The output's stub leads to its
    name on the right. Text elements carry a class (title, name, gate, value, grad, legend) and
    a data-node attribute, so a program can read the numbers back.
    """
    boxes = layout(graph)
    consumers = graph.consumers()
    out = graph.output()
    out_box = boxes[out.id]
    end_x = out_box.right + _stub_length(out) + 20
    width = max(end_x + MARGIN + 20, _text_width(graph.title, 15) + 2 * MARGIN, 520)
    height = max(b.y + b.height / 2 for b in boxes.values()) + 70
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" version="1.1" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/>'
        "</marker></defs>",
        '<rect width="100%" height="100%" fill="white"/>',
        _text(MARGIN, 26, graph.title, "title", size=15, weight="bold"),
    ]
    for n in graph.nodes:
        targets = consumers[n.id] or ([] if n is not out else [None])
        if not targets:
            continue
        a = boxes[n.id]
        x0, x1 = a.right, a.right + _stub_length(n)
        parts.append(_line(x0, a.y, x1, a.y, arrow=n is out))
        parts.append(_text(x0 + 8, a.y - 6, n.value, "value", node=n.id, fill=VALUE_COLOUR))
        if n.grad:
            parts.append(_text(x0 + 8, a.y + 16, n.grad, "grad", node=n.id, fill=GRAD_COLOUR))
        for target in targets:
            if target is not None:
                parts.append(_line(x1, a.y, *_boundary(boxes[target], x1, a.y), arrow=True))
    parts.append(
        _text(
            end_x + 6, out_box.y + 4, out.name or "out", "name", node=out.id, size=13, weight="bold"
        )
    )
    for n in graph.nodes:
        parts.append(_node_svg(n, boxes[n.id]))
    legend_y = height - 20
    legend = "forward value (above an edge"
    grad_legend = f"gradient of {out.name or 'the output'} with respect to it (below"
    if any(n.grad.startswith("‖∇‖") for n in graph.nodes):
        legend += "; the shape of an array"
        grad_legend += "; ‖∇‖: its norm, for an array"
    legend += ")"
    parts.append(_text(MARGIN, legend_y, legend, "legend", fill=VALUE_COLOUR))
    parts.append(
        _text(
            MARGIN + _text_width(legend) + 30,
            legend_y,
            grad_legend + ")",
            "legend",
            fill=GRAD_COLOUR,
        )
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _stub_length(node: GraphNode) -> float:
    return max(_text_width(node.value), _text_width(node.grad), 14) + 16


def _line(x1: float, y1: float, x2: float, y2: float, arrow: bool) -> str:
    marker = ' marker-end="url(#arrow)"' if arrow else ""
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#555" '
        f'stroke-width="1.3"{marker}/>'
    )


def _boundary(box: _Box, x: float, y: float) -> tuple[float, float]:
    """Where the segment from (x, y) to the box's centre crosses its outline (a circle or a
    rectangle), so arrows end on the node, not under it."""
    dx, dy = box.x - x, box.y - y
    length = float(np.hypot(dx, dy)) or 1.0
    if box.width == box.height:  # circle
        r = box.width / 2
        return box.x - dx / length * r, box.y - dy / length * r
    # rectangle: shrink the vector until it just touches the nearer side
    t = min(
        (box.width / 2) / abs(dx) if dx else np.inf, (box.height / 2) / abs(dy) if dy else np.inf
    )
    return box.x - dx * t, box.y - dy * t


def _text(
    x: float,
    y: float,
    text: str,
    cls: str,
    node: str | None = None,
    anchor: str = "start",
    size: float | None = None,
    weight: str | None = None,
    fill: str = "#222",
) -> str:
    attrs = [f'x="{x:.1f}"', f'y="{y:.1f}"', f'class="{cls}"', f'fill="{fill}"']
    if node is not None:
        attrs.append(f'data-node="{html.escape(node)}"')
    if anchor != "start":
        attrs.append(f'text-anchor="{anchor}"')
    if size is not None:
        attrs.append(f'font-size="{size:g}"')
    if weight is not None:
        attrs.append(f'font-weight="{weight}"')
    return f"<text {' '.join(attrs)}>{html.escape(text)}</text>"


def _node_svg(n: GraphNode, box: _Box) -> str:
    if n.kind == "gate":
        if box.width == box.height:
            shape = (
                f'<circle cx="{box.x:.1f}" cy="{box.y:.1f}" r="{box.width / 2:.1f}" '
                'fill="#eef3fb" stroke="#3a5a8c" stroke-width="1.5"/>'
            )
        else:
            shape = (
                f'<rect x="{box.left:.1f}" y="{box.y - box.height / 2:.1f}" '
                f'width="{box.width:.1f}" height="{box.height:.1f}" rx="8" fill="#eef3fb" '
                'stroke="#3a5a8c" stroke-width="1.5"/>'
            )
        size = 16 if len(n.label) <= 2 else 12
        label = _text(
            box.x,
            box.y + size / 3,
            n.label,
            "gate",
            node=n.id,
            anchor="middle",
            size=size,
            weight="bold",
        )
        name = (
            _text(
                box.x,
                box.y - box.height / 2 - 6,
                n.name,
                "name",
                node=n.id,
                anchor="middle",
                size=11,
                fill="#555",
            )
            if n.name
            else ""
        )
        return shape + label + name
    fill = {"param": "#fff4e0", "const": "#f2f2f2"}.get(n.kind, "white")
    shape = (
        f'<rect x="{box.left:.1f}" y="{box.y - box.height / 2:.1f}" width="{box.width:.1f}" '
        f'height="{box.height:.1f}" rx="3" fill="{fill}" stroke="#999" stroke-width="1"/>'
    )
    return shape + _text(
        box.x, box.y + 4.5, n.label, "name", node=n.id, anchor="middle", size=13, weight="bold"
    )


# --- DOT ----------


def to_dot(graph: Graph) -> str:
    """The graph as DOT text (render with graphviz: ``dot -Tsvg graph.dot -o graph.svg``)."""
    consumers = graph.consumers()
    by_id = {n.id: n for n in graph.nodes}

    def quote(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def edge_label(node: GraphNode) -> str:
        rows = [f'<font color="{VALUE_COLOUR}">{html.escape(node.value)}</font>']
        if node.grad:
            rows.append(f'<font color="{GRAD_COLOUR}">{html.escape(node.grad)}</font>')
        return "<" + "<br/>".join(rows) + ">"

    lines = [
        "digraph chainrule {",
        "  rankdir=LR;",
        f"  label={quote(graph.title)}; labelloc=t;",
        '  node [fontname="Helvetica"]; edge [fontname="Helvetica", fontsize=10];',
    ]
    for n in graph.nodes:
        if n.kind == "gate":
            shape = "circle" if len(n.label) <= 2 else "box, style=rounded"
            xlabel = f", xlabel={quote(n.name)}" if n.name else ""
            lines.append(f"  {quote(n.id)} [shape={shape}, label={quote(n.label)}{xlabel}];")
        else:
            lines.append(f"  {quote(n.id)} [shape=plaintext, label={quote(n.label)}];")
    for n in graph.nodes:
        for i, target in enumerate(consumers[n.id]):
            label = f" [label={edge_label(by_id[n.id])}]" if i == 0 else ""
            lines.append(f"  {quote(n.id)} -> {quote(target)}{label};")
    out = graph.output()
    sink = f"{out.id}__out"
    lines.append(f"  {quote(sink)} [shape=plaintext, label={quote(out.name or 'out')}];")
    lines.append(f"  {quote(out.id)} -> {quote(sink)} [label={edge_label(out)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def step_graph(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    loss_fn: Callable[[Tensor, Any], Tensor],
    reg: float,
    title: str,
    unfused: bool = False,
) -> Graph:
    """``model_graph`` for a chainrule model. X (N, D) in the model's dtype, y (N,).

    unfused: draw affine and the activation as two gates, as the lecture does, where the model
    runs one fused affine+ReLU gate (same numbers, one buffer fewer).
    """
    from chainrule import nn
    from chainrule.engine import tensor as T

    forward: Callable[[Tensor], Tensor] = model
    if isinstance(model, nn.MLP):
        # The model's own forward, spelled out so that each hidden layer's tensors get a name.
        def forward(x: Tensor) -> Tensor:
            for i in range(1, model.num_layers):
                W, b = model.layer(i)
                if unfused or not isinstance(model.activation, nn.ReLU):
                    z = T.affine(x, W, b)
                    z.name = f"z{i}"
                    x = model.activation(z)
                else:
                    x = T.affine_relu(x, W, b)
                x.name = f"h{i}"
            return T.affine(x, *model.layer(model.num_layers))

    return model_graph(forward, loss_fn, list(model.named_parameters()), X, y, reg, title)
