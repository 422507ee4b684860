"""Placing a graph: a box per node, left to right by topological depth, in pixels.

Columns are topological depths (every gate right of its inputs); rows come from a few sweeps
that move each node towards the mean row of its neighbours. Edges are straight lines, so a
node that sits on an edge spanning several columns is moved out of its way. The result is
plain data (``Box`` per node id) that any renderer can draw; ``render`` draws SVG from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chainrule.lessons.graph.build import Graph, GraphNode

CHAR_WIDTH = 7.2  # px per character at the 12 px font (an estimate: no font metrics here)
ROW_HEIGHT = 78  # px between rows: room for a value above and a gradient below an edge
MARGIN = 24  # px around the drawing
CLEARANCE = 0.6  # rows: an edge passing nearer than this to a node's centre runs through it


@dataclass
class Box:
    """Where a node stands, in px from the top left: its centre (x, y) and size. shape:
    "circle" (a gate with a one- or two-character symbol, as the lecture draws + and *; then
    width == height is the diameter) or "rect" (other gates and the leaves)."""

    x: float
    y: float
    width: float
    height: float
    shape: str = "rect"

    @property
    def left(self) -> float:
        """x of the left edge, px."""
        return self.x - self.width / 2

    @property
    def right(self) -> float:
        """x of the right edge, px."""
        return self.x + self.width / 2

    @property
    def top(self) -> float:
        """y of the top edge, px (y grows downwards, as in SVG)."""
        return self.y - self.height / 2


def text_width(text: str, size: float = 12) -> float:
    """The estimated width in px of ``text`` at a font ``size`` in px."""
    return len(text) * CHAR_WIDTH * size / 12


def stub_length(node: GraphNode) -> float:
    """Length in px of the straight stub leaving ``node``, on which its value (above) and its
    gradient (below) are written: the longer text plus a margin."""
    return max(text_width(node.value), text_width(node.grad), 14) + 16


def node_size(node: GraphNode) -> tuple[float, float, str]:
    """A node's box (width px, height px, shape): a circle for a gate with a short symbol, a
    rounded box for other gates, a label-sized box for a leaf."""
    if node.kind == "gate":
        if len(node.label) <= 2:
            return 40.0, 40.0, "circle"
        return text_width(node.label) + 20, 30.0, "rect"
    return text_width(node.label, 13) + 12, 26.0, "rect"


def layout(graph: Graph) -> dict[str, Box]:
    """Node id -> Box: columns by topological depth, rows by the mean position of neighbours.

    Inputs stand in the first column (``leaves_left``) unless their straight edge would run
    through another node; constants, and every leaf when not ``leaves_left``, stand in the
    column just before their first use. A column is as wide as the widest node plus the
    longest stub, so that no edge label runs into the next column.
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
    label_room = max((stub_length(n) for n in graph.nodes), default=0)
    sizes = {nid: node_size(by_id[nid]) for nid in y}
    node_room = max(w for w, _, _ in sizes.values())
    step = node_room + label_room + 50
    return {
        nid: Box(
            MARGIN + node_room / 2 + depth[nid] * step,
            MARGIN + 40 + (y[nid] - low) * ROW_HEIGHT,
            *sizes[nid],
        )
        for nid in y
    }


def _place(
    graph: Graph, consumers: dict[str, list[str]], near_use: set[str]
) -> tuple[dict[str, int], dict[str, float]]:
    """(column, row) of every node, in layout units (rows may be fractional)."""
    depth = _columns(graph, consumers, near_use)
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


def _columns(graph: Graph, consumers: dict[str, list[str]], near_use: set[str]) -> dict[str, int]:
    """The column of every node, the first 0."""
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
    return {nid: d - low_depth for nid, d in depth.items()}


def _clear_long_edges(
    graph: Graph, consumers: dict[str, list[str]], depth: dict[str, int], y: dict[str, float]
) -> None:
    """Move nodes that sit on an edge spanning several columns down a row (with the nodes
    below them in their column), until no edge runs through a node or a few rounds have
    passed."""
    for _ in range(3 * len(graph.nodes)):
        blocked = next(
            (
                other
                for n in graph.nodes
                for target in consumers[n.id]
                if (other := _in_the_way(n.id, target, depth, y)) is not None
            ),
            None,
        )
        if blocked is None:
            return
        d, row = depth[blocked], y[blocked]
        for nid in y:
            if depth[nid] == d and y[nid] >= row:
                y[nid] += 1.0


def _runs_through(
    nid: str, consumers: dict[str, list[str]], depth: dict[str, int], y: dict[str, float]
) -> bool:
    """Whether a straight edge from ``nid`` to one of its users passes over another node."""
    return any(_in_the_way(nid, target, depth, y) is not None for target in consumers[nid])


def _in_the_way(source: str, target: str, depth: dict[str, int], y: dict[str, float]) -> str | None:
    """The first node in a column between ``source`` and ``target`` that the straight edge
    between them passes over, or None."""
    d0, d1 = depth[source], depth[target]
    for other, d in depth.items():
        if d0 < d < d1:
            at = y[source] + (y[target] - y[source]) * (d - d0) / (d1 - d0)
            if abs(at - y[other]) < CLEARANCE:
                return other
    return None
