"""The gate explorer: one forward and one backward pass to step through, gate by gate, in a
browser (a self-contained HTML file) or inline in Jupyter.

Three sources, one page: ``from_circuit`` (an expression such as ``(x+y)*z``), ``training_step``
(one step of a small model) and ``explore`` (any scalar Tensor, e.g. a loss, before its
backward pass). Each runs the engine's backward pass while ``trace.Recorder`` notes what every
gate received and sent; ``data`` turns that into the page's numbers and ``page`` into HTML.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.engine.tensor import Tensor
from chainrule.lessons import circuit
from chainrule.lessons.atomic import save_atomically
from chainrule.lessons.explorer.data import explorer_data
from chainrule.lessons.explorer.page import iframe, page
from chainrule.lessons.explorer.summary import collapse
from chainrule.lessons.explorer.trace import Recorder
from chainrule.lessons.graph import build

__all__ = ["Explorer", "explore", "from_circuit", "training_step"]


class Explorer:
    """A drawn graph with its recorded forward and backward passes, as a page.

    graph: the ``lessons.graph.Graph`` (values and gradients); data: ``explorer_data``'s dict;
    circuit: the ``circuit.Circuit`` it shows, for a circuit (else None); drawn: the graph the
    page draws (default ``graph``; a large model's is summarised). ``html()`` is the whole
    page, ``save(path)`` writes it, and Jupyter shows it inline (``_repr_html_``: the page in
    an iframe).
    """

    def __init__(
        self,
        graph: build.Graph,
        data: dict[str, Any],
        circuit: circuit.Circuit | None = None,
        drawn: build.Graph | None = None,
    ) -> None:
        self.graph = graph
        self.data = data
        self.circuit = circuit
        self.drawn = drawn or graph

    def html(self) -> str:
        """The self-contained page (UTF-8 text: inline script, style and SVG, no URL)."""
        return page(self.drawn, self.data)

    def save(self, path: str | Path) -> Path:
        """Write the page to ``path`` atomically (a temporary file, then a rename); returns the
        path. Raises OSError when the folder is missing or not writable."""
        document = self.html().encode("utf-8")
        return save_atomically(path, lambda f: f.write(document))

    def _repr_html_(self) -> str:
        return iframe(self.html())

    def _repr_svg_(self) -> str:
        return self.drawn._repr_svg_()


def from_circuit(expression: str, values: Mapping[str, float]) -> Explorer:
    """The explorer of the circuit ``expression`` at ``values`` (one number per variable), as
    ``chainrule circuit`` runs it: 0-d float64 tensors. Raises ExpressionError as
    ``circuit.run`` does (a bad expression or value, a failing forward or backward pass)."""
    recorder = Recorder()
    result = circuit.run(expression, values, watch=recorder.watch)
    graph = build.from_circuit(result)
    ids = [n.name for n in result.nodes]
    return Explorer(graph, explorer_data(graph, recorder, ids), result)


def training_step(model: Any, X: np.ndarray, y: np.ndarray, *args: Any, **kwargs: Any) -> Explorer:
    """The explorer of one training step of ``model`` (an ``nn.Module``): X (N, D) in the
    model's dtype, y (N,) int labels, then ``graph.step_graph``'s other arguments: loss_fn
    (scores (N, K), y) -> the data loss, reg (the L2 strength), title, unfused. Afterwards the
    parameters hold this step's gradients. Raises what the model, the loss and the engine raise
    (ShapeError)."""
    recorder = Recorder()
    graph = build.step_graph(model, X, y, *args, **kwargs, watch=recorder.watch)
    return _summarised(graph, recorder)


def explore(
    loss: Tensor, params: Any = None, title: str = "one forward and one backward pass"
) -> Explorer:
    """The explorer of ``loss`` (a scalar Tensor, e.g. a model's loss), running its backward
    pass: call it instead of ``loss.backward()`` (afterwards every ``.grad`` is filled as that
    would fill it).

    params: names for the drawing, a Module (its ``named_parameters()``) or a mapping name ->
    Tensor; other tensors are drawn by their ``name`` (``loss`` by "loss" if it has none), or
    their gate. Raises ChainruleError for a loss whose backward already ran or that needs no
    gradient, ShapeError for a loss that is not one number.
    """
    if hasattr(params, "named_parameters"):
        params = dict(params.named_parameters())
    names = {id(t): name for name, t in (params or {}).items()}
    names.setdefault(id(loss), loss.name or "loss")
    recorder = Recorder()
    graph = build.from_tensor(loss, names, title, watch=recorder.watch)
    return _summarised(graph, recorder)


def _summarised(graph: build.Graph, recorder: Recorder) -> Explorer:
    """The explorer of a model's graph (ids n0, n1... in forward order), its middle layers
    collapsed when it is too large to draw in full (``summary.collapse``)."""
    drawn, box_of, note = collapse(graph)
    ids = [n.id for n in graph.nodes]
    return Explorer(graph, explorer_data(graph, recorder, ids, drawn, box_of, note), drawn=drawn)
