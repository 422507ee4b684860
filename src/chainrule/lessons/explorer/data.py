"""The explorer's data: a drawn graph and a recorded backward pass -> one JSON-ready dict.

The page (``page``) steps through this dict and computes nothing: every number in it is the
engine's, converted to float64 exactly (Python's float repr round-trips, and JSON keeps it).
Arrays are summarised: shape, norm, min, max, a heatmap downsampled to at most ``HEAT_CELLS``
cells a side, and the values themselves when there are at most ``LISTED`` of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.lessons.explorer.trace import BackwardStep, Recorder
from chainrule.lessons.graph.build import Graph
from chainrule.lessons.graph.layout import layout

HEAT_CELLS = 64  # a heatmap's cells per side at most: a (10, 64) W1 of the digits stays whole
LISTED = 12  # arrays with at most this many elements are listed in full

# The local gradient of each gate in the cheatsheet's words, with the names of its output
# ({out}) and inputs ({a}, {b}, {c}): shown beside the numbers, and in place of them for a gate
# with an array output (its Jacobian is too large to show).
FORMULAS = {
    "add": "∂{out}/∂{a} = 1, ∂{out}/∂{b} = 1: add routes the gradient unchanged to both inputs",
    "sub": "∂{out}/∂{a} = 1, ∂{out}/∂{b} = −1",
    "mul": "∂{out}/∂{a} = {b}, ∂{out}/∂{b} = {a}: mul swaps its inputs",
    "div": "∂{out}/∂{a} = 1/{b}, ∂{out}/∂{b} = −{a}/{b}²",
    "max": "1 for the larger input, 0 for the other: max routes the gradient to the winner",
    "neg": "∂{out}/∂{a} = −1",
    "exp": "∂{out}/∂{a} = exp({a}) = {out}",
    "log": "∂{out}/∂{a} = 1/{a}",
    "relu": "1 where {a} > 0, else 0: ReLU passes the gradient where its input was positive",
    "sigmoid": "∂{out}/∂{a} = σ({a})(1 − σ({a}))",
    "tanh": "∂{out}/∂{a} = 1 − tanh²({a})",
    "sum": "1 for every element: sum copies the gradient to each element",
    "mean": "1/n for every element",
    "sum_of_squares": "∂(Σ{a}²)/∂{a} = 2·{a}",
    "matmul": "d{a} = dout · {b}ᵀ, d{b} = {a}ᵀ · dout",
    "affine": "{out} = {a}·{b}ᵀ + {c}: d{a} = dout·{b}, d{b} = doutᵀ·{a}, d{c} = Σₙ dout",
    "affine_relu": (
        "{out} = max({a}·{b}ᵀ + {c}, 0): dout is first zeroed where {out} = 0 (the ReLU), then "
        "as affine: d{a} = dout·{b}, d{b} = doutᵀ·{a}, d{c} = Σₙ dout"
    ),
    "softmax_cross_entropy": "∂L/∂{a} = (softmax({a}) − onehot(y)) / N",
    "multiclass_hinge": "∂L/∂{a}_j = 1/N per positive margin (j ≠ y); ∂L/∂{a}_y = −(their count)/N",
}


def formula(gate: str | None, out: str = "out", inputs: Sequence[str] = ()) -> str:
    """The local gradient of the gate named ``gate`` (``Gate.describe()``) in words, with its
    output's name ``out`` and its inputs' names; "" for a leaf or a gate not listed."""
    if gate is None:
        return ""
    # a name of several terms ("ΣW1² + … + ΣW5²") in brackets, as the maths would write it
    inputs, out = [f"({t})" if " " in t else t for t in inputs], f"({out})" if " " in out else out
    names = dict(zip("abc", [*inputs[:3], *"abc"[len(inputs) :]]), out=out)
    if gate.startswith("pow "):
        p = float(gate.split()[1])
        return f"∂{out}/∂{names['a']} = {p:g}·{names['a']}^{p - 1:g}"
    return FORMULAS.get(gate, "").format(**names)


def summary(a: np.ndarray | None) -> dict[str, Any] | None:
    """An array as the page shows it: {"shape", "scalar"} for one number, else {"shape",
    "norm" (the L2 norm of all elements, in float64), "min", "max", "heat" (``heatmap``) and
    "values" (the flat list, only for at most ``LISTED`` elements)}. None stays None."""
    if a is None:
        return None
    a = np.asarray(a)
    out: dict[str, Any] = {"shape": list(a.shape)}
    if a.size == 1:
        out["scalar"] = _float(a.reshape(()))
        return out
    wide = a.astype(np.float64)
    out.update(
        norm=_float(np.linalg.norm(wide)),
        min=_float(wide.min()),
        max=_float(wide.max()),
        heat=heatmap(wide),
    )
    if a.size <= LISTED:
        out["values"] = [_float(v) for v in wide.reshape(-1)]
    return out


def heatmap(a: np.ndarray) -> dict[str, Any]:
    """A (rows, cols) grid of block means of ``a`` (any shape: 1-D as one row, more dimensions
    flattened after the first), each side at most ``HEAT_CELLS``, row-major, to 4 significant
    digits; a block holding a NaN or an infinity is None (the page leaves it white). "scale":
    the largest finite magnitude, by which the page scales the colours."""
    grid = a.reshape(1, -1) if a.ndim < 2 else a.reshape(a.shape[0], -1)
    rows, cols = grid.shape
    br, bc = math.ceil(rows / HEAT_CELLS), math.ceil(cols / HEAT_CELLS)
    out_rows, out_cols = math.ceil(rows / br), math.ceil(cols / bc)
    # blocks at the edges may be smaller: pad with zeros and divide by the true counts
    padded = np.zeros((out_rows * br, out_cols * bc))
    counts = np.zeros_like(padded)
    padded[:rows, :cols], counts[:rows, :cols] = grid, 1.0
    with np.errstate(invalid="ignore", over="ignore"):
        sums = padded.reshape(out_rows, br, out_cols, bc).sum(axis=(1, 3))
        means = sums / counts.reshape(out_rows, br, out_cols, bc).sum(axis=(1, 3))
    finite = np.isfinite(means)
    return {
        "rows": out_rows,
        "cols": out_cols,
        "block": [br, bc],
        "scale": float(np.abs(means[finite]).max()) if finite.any() else 0.0,
        "cells": [float(f"{v:.4g}") if ok else None for v, ok in zip(means.flat, finite.flat)],
    }


def _float(x: Any) -> float | str:
    """A float64 number for JSON; NaN and infinities (which JSON lacks) as strings."""
    value = float(x)
    return value if math.isfinite(value) else str(value)


def explorer_data(
    graph: Graph,
    recorder: Recorder,
    ids: list[str],
    drawn: Graph | None = None,
    box_of: dict[str, str] | None = None,
    note: str = "",
) -> dict[str, Any]:
    """The page's data for ``graph`` (made by ``build``) and ``recorder`` (its backward pass).

    ids: the graph id of each tensor of ``recorder.order`` (the same forward order). drawn:
    the graph the page draws (default ``graph``; ``summary.collapse`` draws boxes for some of
    its nodes), box_of: member id -> its box's id there. note: a line the page shows under the
    title (how a large model was summarised). Returns {"title", "note", "output", "nodes",
    "forward", "backward"}: every node of both graphs with its box (px; None for a member of a
    box, which has "in": the box's id), value and gradient summaries and formula; forward: the
    gates' ids in forward order; backward: the seed, then one entry per gate's backward call
    in the engine's order, each with its upstream gradient and, per input, the local gradient
    (one-number outputs) and the product sent.
    """
    drawn = drawn or graph
    box_of = box_of or {}
    boxes = layout(drawn)
    shown = shown_names(graph)
    by_id = {n.id: n for n in graph.nodes}
    extra = [n for n in drawn.nodes if n.id not in by_id]  # the boxes
    nodes = []
    for n in [*graph.nodes, *extra]:
        box = boxes.get(n.id)
        names = [shown.get(i, i) for i in n.inputs]
        nodes.append(
            {
                "id": n.id,
                "label": n.label,
                "kind": n.kind,
                "name": n.name,
                "shown": shown.get(n.id, n.label),
                "gate": n.gate,
                "inputs": n.inputs,
                "box": None if box is None else [box.x, box.y, box.width, box.height, box.shape],
                "in": box_of.get(n.id),
                "value": summary(n.forward),
                "grad": summary(n.backward),
                "formula": formula(n.gate, shown.get(n.id, n.label), names),
            }
        )
    out = graph.output()
    seed = {"node": out.id, "seed": True, "upstream": summary(out.backward), "inputs": []}
    backward = [seed] + [_step(by_id[ids[s.node]], s) for s in recorder.steps]
    return {
        "title": graph.title,
        "note": note,
        "output": out.id,
        "nodes": nodes,
        "forward": [n.id for n in graph.nodes if n.kind == "gate"],
        "backward": backward,
    }


def shown_names(graph: Graph) -> dict[str, str]:
    """id -> the name the page writes for each node: a leaf's label, a gate's output name, or
    for an unnamed gate one made of its inputs' ("ΣW1²", "ΣW1² + ΣW2²"), so that two gates of
    the same kind can be told apart."""
    shown: dict[str, str] = {}
    for n in graph.nodes:
        args = [shown[i] for i in n.inputs]
        if n.kind != "gate":
            shown[n.id] = n.label
        elif n.name:
            shown[n.id] = n.name
        elif n.gate == "sum_of_squares" and len(args) == 1:
            shown[n.id] = f"Σ{args[0]}²"
        elif len(n.label) == 1 and len(args) == 2:
            # a chain of sums reads "ΣW1² + … + ΣW5²" past three terms
            terms = [t for a in args for t in a.split(f" {n.label} ")]
            many = len(terms) > 3
            shown[n.id] = f" {n.label} ".join([terms[0], "…", terms[-1]] if many else terms)
        else:
            shown[n.id] = f"{n.label}({', '.join(args)})"
    return shown


def _step(gate: Any, step: BackwardStep) -> dict[str, Any]:
    """One backward call: the gate's graph id, its upstream gradient, and per input (the
    gate's graph node's inputs, in argument order) the local gradient and the product sent."""
    inputs = []
    for pos, input_id in enumerate(gate.inputs):
        local = step.local[pos] if step.local is not None else None
        inputs.append({"id": input_id, "local": summary(local), "sent": summary(step.sent[pos])})
    return {"node": gate.id, "upstream": summary(step.upstream), "inputs": inputs}
