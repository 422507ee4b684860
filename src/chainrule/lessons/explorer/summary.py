"""Summarising a training step too large to draw in full: hidden layers collapsed into a box.

A deep MLP's step has about six nodes per layer (W, b, the layer's gate, its ΣW² term and an add
of the L2 sum), and the layout's cost grows with the cube of the node count. Past ``MAX_NODES``
nodes the drawing keeps the first and last ``KEEP`` hidden layers and draws the ones between as
one box, and every ΣW² term with the adds that sum them as a second box. Nothing is dropped from
the data: the page still steps through every gate (a gate inside a box lights the box up) and
lists every parameter's gradient.
"""

from __future__ import annotations

import re
from dataclasses import replace

from chainrule.lessons.graph.build import Graph, GraphNode

MAX_NODES = 60  # more nodes than this are summarised: about 9 hidden layers
KEEP = 2  # hidden layers drawn in full at each end

L2_BOX = "ΣW² of every weight"  # the box of the L2 terms: drawn without its many input edges
_LAYER = re.compile(r"^[Wbhz](\d+)$")  # W3, b3 (parameters), h3, z3 (a hidden layer's outputs)


def _layer(n: GraphNode) -> int | None:
    """The hidden layer a node belongs to (1, 2...) by its name, or None."""
    match = _LAYER.match(n.name if n.kind == "gate" else n.label)
    return int(match.group(1)) if match else None


def collapse(graph: Graph) -> tuple[Graph, dict[str, str], str]:
    """The drawing of ``graph``: itself when it has at most ``MAX_NODES`` nodes or fewer than
    2 * KEEP + 2 hidden layers, else a copy with the middle hidden layers and the L2 terms each
    drawn as one box (a "gate" node whose inputs are the nodes that feed its members; none for
    the L2 terms' box, which every weight feeds).

    Returns (the graph to draw, member id -> its box's id, a note for the page: "" when
    nothing was collapsed).
    """
    hidden = {k for n in graph.nodes if n.kind == "gate" and (k := _layer(n)) is not None}
    if len(graph.nodes) <= MAX_NODES or len(hidden) < 2 * KEEP + 2:
        return graph, {}, ""
    low, high = min(hidden) + KEEP, max(hidden) - KEEP
    layers_box, l2_box = f"layers {low}–{high}", L2_BOX
    box_of: dict[str, str] = {}
    for n in graph.nodes:
        layer = _layer(n)
        if layer is not None and low <= layer <= high:
            box_of[n.id] = layers_box
        elif n.gate == "sum_of_squares" or (
            n.kind == "gate" and not n.name and all(box_of.get(i) == l2_box for i in n.inputs)
        ):
            box_of[n.id] = l2_box
    terms = sum(n.gate == "sum_of_squares" for n in graph.nodes)
    note = (
        f"This model has {len(graph.nodes)} nodes, too many to draw in full: hidden layers "
        f"{low} to {high} are drawn as one box, and the {terms} "
        "ΣW² terms of the L2 penalty with the additions that sum them as another. Stepping "
        "through still visits every gate (a gate inside a box lights the box up), and the table "
        "lists every weight's gradient."
    )
    return _drawn(graph, box_of), box_of, note


def _drawn(graph: Graph, box_of: dict[str, str]) -> Graph:
    """``graph`` with the members of each box replaced by the box, placed where its last member
    was (so that every node still comes after its inputs)."""
    drawn = Graph(graph.title, leaves_left=graph.leaves_left)
    boxes: dict[str, GraphNode] = {}
    last = {box: n.id for n in graph.nodes if (box := box_of.get(n.id))}
    for n in graph.nodes:
        box = box_of.get(n.id)
        inputs = list(dict.fromkeys(box_of.get(i, i) for i in n.inputs))
        if box is None:
            drawn.nodes.append(replace(n, inputs=inputs))
            continue
        node = boxes.setdefault(box, GraphNode(box, box, "gate", [], "", "", name="collapsed"))
        if box != L2_BOX:  # (an edge from every weight to the L2 box would cross everything)
            node.inputs += [i for i in inputs if i != box and i not in node.inputs]
        if last[box] == n.id:
            drawn.nodes.append(node)
    return drawn
