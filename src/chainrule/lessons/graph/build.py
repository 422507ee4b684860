"""Building a drawing's graph: nodes (tensors) and their edges, with values and gradients.

Two sources: ``from_circuit`` (a scalar expression, run by ``circuit.run``) and ``model_graph``
/ ``step_graph`` (one training step of a small model: affine, ReLU, the loss gate, the L2
terms, the total loss). The result, a ``Graph``, is plain data that knows nothing of pixels:
``layout`` places it and ``render`` draws it, and any other renderer can consume it the same way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule import nn
from chainrule.engine import tensor as T
from chainrule.engine.tensor import Tensor, topological_order
from chainrule.lessons.circuit import Circuit
from chainrule.nn.losses import l2_penalty

# How a gate is labelled in its node: arithmetic by its symbol, long gate names shortened.
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

    id: unique in its graph. label: drawn in the node (a gate's symbol or short name, or a
    leaf's name). kind: "input", "param", "const" or "gate". inputs: the ids of the nodes the
    gate takes, in argument order (a node used twice appears twice). name: the output's name
    (q, f, scores...), drawn above a gate; "" for a leaf. value / grad: the texts drawn on the
    edges leaving the node: the value (a scalar's number, or an array's shape such as "4×5")
    and the gradient of the graph's output with respect to it (a scalar's number, an array's
    norm as "‖∇‖ 0.123", or "" where none flows). gate: the engine's name of the gate
    (``Gate.describe()``: "add", "affine_relu", "pow 2"...), None for a leaf. shape: the
    tensor's shape, () for a scalar. forward / backward: the value and the gradient as arrays
    of that shape (backward None where no gradient flows), for renderers that show more than
    the texts.
    """

    id: str
    label: str
    kind: str
    inputs: list[str]
    value: str
    grad: str
    name: str = ""
    gate: str | None = None
    shape: tuple[int, ...] = ()
    forward: np.ndarray | None = field(default=None, repr=False, compare=False)
    backward: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass
class Graph:
    """A drawing's graph: nodes in forward order (every node after its inputs), the last one
    the output the backward pass starts from. leaves_left: all leaves drawn in the first column
    (a circuit), else each next to its first use (a model)."""

    title: str
    nodes: list[GraphNode] = field(default_factory=list)
    leaves_left: bool = True

    def consumers(self) -> dict[str, list[str]]:
        """id -> the ids of the nodes that take it as an input, in forward order, each once."""
        out: dict[str, list[str]] = {n.id: [] for n in self.nodes}
        for n in self.nodes:
            for i in n.inputs:
                if n.id not in out[i]:
                    out[i].append(n.id)
        return out

    def edges(self) -> list[tuple[str, str]]:
        """The drawn edges as (source id, target id) pairs: one per node and consumer, sources
        in forward order (a gate taking a node twice, as in x*x, gets one edge from it)."""
        return [(source, target) for source, ts in self.consumers().items() for target in ts]

    def output(self) -> GraphNode:
        """The last node: what the backward pass starts from."""
        return self.nodes[-1]

    def _repr_svg_(self) -> str:
        """Jupyter's rich display: the drawing (``render.to_svg``)."""
        from chainrule.lessons.graph.render import to_svg  # (render imports this module)

        return to_svg(self)


def number(x: float) -> str:
    """A value or gradient as drawn: 4 significant digits ("0.7311", "-12", "1e+10")."""
    return f"{x:.4g}"


def shape_text(shape: tuple[int, ...]) -> str:
    """An array's shape as drawn: (4, 5) -> "4×5", () -> "scalar"."""
    return "×".join(str(s) for s in shape) if shape else "scalar"


# --- from a circuit ----------


def from_circuit(circuit: Circuit) -> Graph:
    """The graph of a scalar circuit: inputs x, y, ...; gates with their q / f names.

    A constant is drawn once per gate that uses it, next to that gate, with the id
    ``<value>@<gate>.<argument index>`` (the circuit names constants by value, so two 1s are
    one name there). Every node is a scalar: shape (), forward and backward 0-d float64 arrays.
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
                graph.nodes.append(_circuit_constant(const_id, constants[name]))
                name = const_id
            inputs.append(name)
        gate = n.kind != "input"
        graph.nodes.append(
            GraphNode(
                id=n.name,
                label=SYMBOLS.get(n.kind, n.kind) if gate else n.name,
                kind="gate" if gate else "input",
                inputs=inputs,
                value=number(n.value),
                grad=number(n.grad),
                name=n.name if gate else "",
                gate=n.kind if gate else None,
                forward=np.float64(n.value),
                backward=np.float64(n.grad),
            )
        )
    return graph


def _circuit_constant(node_id: str, const: Any) -> GraphNode:
    """A constant of the circuit (a ``circuit.Node``): no gradient flows into it."""
    value = np.float64(const.value)
    return GraphNode(node_id, const.name, "const", [], number(const.value), "", forward=value)


# --- from one training step of a model ----------


def model_graph(
    forward: Callable[[Tensor], Tensor],
    loss_fn: Callable[[Tensor, Any], Tensor],
    params: Sequence[tuple[str, Tensor]],
    X: np.ndarray,
    y: np.ndarray,
    reg: float,
    title: str,
    watch: Callable[[Tensor], contextlib.AbstractContextManager[Any]] | None = None,
) -> Graph:
    """The gates of one training step: forward(x) -> scores -> data loss, + reg * sum W^2.

    forward: the model's forward pass (Tensor (N, D) -> scores (N, K)); loss_fn: (scores,
    y) -> the data loss (a scalar Tensor); params: the model's (name, Tensor) pairs, weights
    being those with 2 or more dimensions; X (N, D), y (N,) int labels; reg: the L2 strength;
    watch: as ``from_tensor``'s. The graph is recorded BEFORE backward (backward frees it),
    then backward runs and each node's gradient is read. The parameters' gradients are reset
    first and hold this step's after. Errors are those of the model, the loss and the engine
    (e.g. ShapeError).
    """
    for _, p in params:
        p.grad = None
    x = Tensor(X)
    scores = forward(x)
    data_loss = loss_fn(scores, y)
    l2 = l2_penalty([p for _, p in params if p.ndim >= 2], reg)
    loss = data_loss + l2
    names = {id(p): name for name, p in params}
    named = {"x": x, "scores": scores, "data loss": data_loss, "L2": l2, "loss": loss}
    names.update({id(t): name for name, t in named.items()})
    return from_tensor(loss, names, title, watch)


def from_tensor(
    loss: Tensor,
    names: dict[int, str],
    title: str,
    watch: Callable[[Tensor], contextlib.AbstractContextManager[Any]] | None = None,
) -> Graph:
    """The graph of ``loss`` (a scalar Tensor whose backward has not run yet), after running
    its backward pass: node ``n<i>`` is the i-th tensor in forward order.

    names: id of a tensor -> its drawn name (parameters, the input "x", named results); other
    tensors use their own ``name``. watch: called with ``loss`` before the backward pass, which
    runs inside the context it returns (see ``circuit.run``). The graph is recorded BEFORE
    backward (backward frees it). Raises what ``loss.backward()`` raises (ShapeError for a loss
    that is not a scalar, ChainruleError for a graph already walked).
    """
    order = topological_order(loss)
    ids = {id(t): f"n{i}" for i, t in enumerate(order)}
    recorded = [
        (t, t.gate.describe() if t.gate is not None else None, list(t.inputs)) for t in order
    ]
    with watch(loss) if watch is not None else contextlib.nullcontext():
        loss.backward()
    graph = Graph(title, leaves_left=False)
    for t, gate, inputs in recorded:
        node = _step_node(t, gate, names)
        node.id, node.inputs = ids[id(t)], [ids[id(i)] for i in inputs]
        graph.nodes.append(node)
    return graph


def _step_node(t: Tensor, gate: str | None, names: dict[int, str]) -> GraphNode:
    """The node of tensor ``t`` after backward (its id and inputs are the caller's to set).

    A leaf is the input "x", a parameter (named in ``names``), or a constant (no gradient:
    drawn by its value when it is a single number). A gate's node is labelled by its symbol."""
    name = names.get(id(t)) or t.name or ""
    if gate is None:
        kind = "param" if id(t) in names and name != "x" else "input"
        if not t.requires_grad and name != "x":
            kind, name = "const", number(float(t.data)) if t.size == 1 else "const"
        label = name
    else:
        kind, label = "gate", SYMBOLS.get(gate, SHORT.get(gate, gate))
    scalar = t.size == 1
    grad = None if t.grad is None else np.array(t.grad)
    if grad is None:
        grad_text = ""
    elif scalar:
        grad_text = number(float(grad))
    else:
        grad_text = f"‖∇‖ {float(np.linalg.norm(grad)):.3g}"
    return GraphNode(
        id="",
        label=label,
        kind=kind,
        inputs=[],
        value=number(float(t.data)) if scalar else shape_text(t.shape),
        grad=grad_text,
        name=name if kind == "gate" else "",
        gate=gate,
        shape=tuple(t.shape),
        forward=np.array(t.data),
        backward=grad,
    )


def step_graph(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    loss_fn: Callable[[Tensor, Any], Tensor],
    reg: float,
    title: str,
    unfused: bool = False,
    watch: Callable[[Tensor], contextlib.AbstractContextManager[Any]] | None = None,
) -> Graph:
    """``model_graph`` for a chainrule model (an ``nn.Module``). X (N, D) in the model's dtype,
    y (N,) int labels; reg: the L2 strength; title: drawn at the top.

    An MLP's hidden layers are drawn with their tensors named (z1 before the activation, h1
    after). unfused: draw affine and the activation as two gates, as the lecture does, where
    the model runs one fused affine+ReLU gate (same numbers, one buffer fewer). watch: as
    ``from_tensor``'s.
    """
    forward: Callable[[Tensor], Tensor] = model
    if isinstance(model, nn.MLP):
        # The model's own forward, spelled out so that each hidden layer's tensors get a name.
        def forward(x: Tensor) -> Tensor:
            for i in range(1, model.num_layers):
                W, b = model.layer(i)
                if unfused or not nn.runs_fused(model.activation):
                    z = T.affine(x, W, b)
                    z.name = f"z{i}"
                    x = model.activation(z)
                else:
                    x = T.affine_relu(x, W, b)
                x.name = f"h{i}"
            return T.affine(x, *model.layer(model.num_layers))

    params = list(model.named_parameters())
    return model_graph(forward, loss_fn, params, X, y, reg, title, watch)
