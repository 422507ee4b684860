"""The gates of a circuit or of a training step, drawn with every value and gradient.

Three steps, each plain data for the next, so that other renderers (an interactive page) can
reuse the first two:

- ``build``: a circuit (``from_circuit``) or one training step of a model (``step_graph``,
  ``model_graph``) -> a ``Graph`` of ``GraphNode``s (gate, label, value and gradient as texts
  and arrays, shape) whose inputs are the edges;
- ``layout``: a ``Graph`` -> a ``Box`` (centre, size, shape, in px) per node, left to right;
- ``render``: SVG (``to_svg``), DOT (``to_dot``) and a text table (``table``).
"""

from chainrule.lessons.graph.build import (
    Graph,
    GraphNode,
    from_circuit,
    model_graph,
    step_graph,
)
from chainrule.lessons.graph.layout import Box, layout
from chainrule.lessons.graph.render import GRAD_COLOUR, VALUE_COLOUR, table, to_dot, to_svg

__all__ = [
    "GRAD_COLOUR",
    "VALUE_COLOUR",
    "Box",
    "Graph",
    "GraphNode",
    "from_circuit",
    "layout",
    "model_graph",
    "step_graph",
    "table",
    "to_dot",
    "to_svg",
]
