"""Drawing a graph: a standalone SVG (from ``layout``), DOT text for graphviz, a text table.

Drawn the way the lecture draws circuits: inputs on the left, a gate per node, and on each edge
the value flowing forward (above, green) and the gradient flowing back (below, red). The SVG is
written here, so no graphviz binary is needed; ``to_dot`` is for those who have one.
"""

from __future__ import annotations

import html

import numpy as np

from chainrule.lessons.graph.build import Graph, GraphNode
from chainrule.lessons.graph.layout import MARGIN, Box, layout, stub_length, text_width

VALUE_COLOUR = "#1b7f2a"  # forward values: green
GRAD_COLOUR = "#c62828"  # gradients: red
EDGE_COLOUR = "#555"


# --- SVG ----------


def to_svg(graph: Graph) -> str:
    """The graph as a standalone SVG document (text), in px.

    Each node's forward value (green, above) and gradient (red, below) are written once, on a
    short straight stub leaving the node; the edges to the gates that use it fan out from the
    stub's end (where a value is shared, its gradients add up). The output's stub leads to its
    name on the right. Text elements carry a class (title, name, gate, value, grad, legend) and
    a data-node attribute (the node's id), so a program can read the numbers back.
    """
    boxes = layout(graph)
    out = graph.output()
    out_box = boxes[out.id]
    end_x = out_box.right + stub_length(out) + 20
    width = max(end_x + MARGIN + 20, text_width(graph.title, 15) + 2 * MARGIN, 520)
    height = max(b.y + b.height / 2 for b in boxes.values()) + 70
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" version="1.1" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto"><path d="M 0 0 L 10 5 L 0 10 z" fill="{EDGE_COLOUR}"/>'
        "</marker></defs>",
        '<rect width="100%" height="100%" fill="white"/>',
        _text(MARGIN, 26, graph.title, "title", size=15, weight="bold"),
        *_edges_svg(graph, boxes),
        _text(
            end_x + 6, out_box.y + 4, out.name or "out", "name", node=out.id, size=13, weight="bold"
        ),
        *(_node_svg(n, boxes[n.id]) for n in graph.nodes),
        *_legend_svg(graph, height - 20),
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def _edges_svg(graph: Graph, boxes: dict[str, Box]) -> list[str]:
    """Per node with users (or the output): its stub with the value and gradient texts, then an
    arrow from the stub's end to each user."""
    consumers = graph.consumers()
    out = graph.output()
    parts = []
    for n in graph.nodes:
        targets = consumers[n.id] or ([] if n is not out else [None])
        if not targets:
            continue
        a = boxes[n.id]
        x0, x1 = a.right, a.right + stub_length(n)
        parts.append(_line(x0, a.y, x1, a.y, arrow=n is out))
        parts.append(_text(x0 + 8, a.y - 6, n.value, "value", node=n.id, fill=VALUE_COLOUR))
        if n.grad:
            parts.append(_text(x0 + 8, a.y + 16, n.grad, "grad", node=n.id, fill=GRAD_COLOUR))
        for target in targets:
            if target is not None:
                parts.append(_line(x1, a.y, *_boundary(boxes[target], x1, a.y), arrow=True))
    return parts


def _legend_svg(graph: Graph, y: float) -> list[str]:
    """The two legend lines at height ``y``: what the green and the red texts are."""
    out = graph.output()
    legend = "forward value (above an edge"
    grad_legend = f"gradient of {out.name or 'the output'} with respect to it (below"
    if any(n.grad.startswith("‖∇‖") for n in graph.nodes):
        legend += "; the shape of an array"
        grad_legend += "; ‖∇‖: its norm, for an array"
    legend += ")"
    return [
        _text(MARGIN, y, legend, "legend", fill=VALUE_COLOUR),
        _text(MARGIN + text_width(legend) + 30, y, grad_legend + ")", "legend", fill=GRAD_COLOUR),
    ]


def _line(x1: float, y1: float, x2: float, y2: float, arrow: bool) -> str:
    marker = ' marker-end="url(#arrow)"' if arrow else ""
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{EDGE_COLOUR}" '
        f'stroke-width="1.3"{marker}/>'
    )


def _boundary(box: Box, x: float, y: float) -> tuple[float, float]:
    """Where the segment from (x, y) to the box's centre crosses its outline (a circle or a
    rectangle), so arrows end on the node, not under it."""
    dx, dy = box.x - x, box.y - y
    length = float(np.hypot(dx, dy)) or 1.0
    if box.shape == "circle":
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


def _rect(box: Box, rx: float, fill: str, stroke: str, stroke_width: float) -> str:
    return (
        f'<rect x="{box.left:.1f}" y="{box.top:.1f}" width="{box.width:.1f}" '
        f'height="{box.height:.1f}" rx="{rx:g}" fill="{fill}" stroke="{stroke}" '
        f'stroke-width="{stroke_width:g}"/>'
    )


def _node_svg(n: GraphNode, box: Box) -> str:
    """A gate: a circle or a rounded box with its symbol, and its output's name above. A leaf:
    a box with its name (parameters orange, constants grey, inputs white)."""
    if n.kind != "gate":
        fill = {"param": "#fff4e0", "const": "#f2f2f2"}.get(n.kind, "white")
        return _rect(box, 3, fill, "#999", 1) + _text(
            box.x, box.y + 4.5, n.label, "name", node=n.id, anchor="middle", size=13, weight="bold"
        )
    if box.shape == "circle":
        shape = (
            f'<circle cx="{box.x:.1f}" cy="{box.y:.1f}" r="{box.width / 2:.1f}" '
            'fill="#eef3fb" stroke="#3a5a8c" stroke-width="1.5"/>'
        )
    else:
        shape = _rect(box, 8, "#eef3fb", "#3a5a8c", 1.5)
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
    if not n.name:
        return shape + label
    return (
        shape
        + label
        + _text(
            box.x, box.top - 6, n.name, "name", node=n.id, anchor="middle", size=11, fill="#555"
        )
    )


# --- DOT ----------


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _edge_label(node: GraphNode) -> str:
    """The value (green) over the gradient (red), as a graphviz HTML-like label."""
    rows = [f'<font color="{VALUE_COLOUR}">{html.escape(node.value)}</font>']
    if node.grad:
        rows.append(f'<font color="{GRAD_COLOUR}">{html.escape(node.grad)}</font>')
    return "<" + "<br/>".join(rows) + ">"


def to_dot(graph: Graph) -> str:
    """The graph as DOT text (render with graphviz: ``dot -Tsvg graph.dot -o graph.svg``).

    Each node's value and gradient label its first outgoing edge; the output gets an edge to a
    plain-text node ``<output id>__out`` with its name."""
    by_id = {n.id: n for n in graph.nodes}
    lines = [
        "digraph chainrule {",
        "  rankdir=LR;",
        f"  label={_quote(graph.title)}; labelloc=t;",
        '  node [fontname="Helvetica"]; edge [fontname="Helvetica", fontsize=10];',
    ]
    for n in graph.nodes:
        if n.kind == "gate":
            shape = "circle" if len(n.label) <= 2 else "box, style=rounded"
            xlabel = f", xlabel={_quote(n.name)}" if n.name else ""
            lines.append(f"  {_quote(n.id)} [shape={shape}, label={_quote(n.label)}{xlabel}];")
        else:
            lines.append(f"  {_quote(n.id)} [shape=plaintext, label={_quote(n.label)}];")
    for source, targets in graph.consumers().items():
        for i, target in enumerate(targets):
            label = f" [label={_edge_label(by_id[source])}]" if i == 0 else ""
            lines.append(f"  {_quote(source)} -> {_quote(target)}{label};")
    out = graph.output()
    sink = f"{out.id}__out"
    lines.append(f"  {_quote(sink)} [shape=plaintext, label={_quote(out.name or 'out')}];")
    lines.append(f"  {_quote(out.id)} -> {_quote(sink)} [label={_edge_label(out)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- text ----------


def table(graph: Graph) -> str:
    """Every node in forward order with its gate, inputs, forward value and gradient (the
    drawn texts), as a fixed-width text table under the graph's title."""
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
