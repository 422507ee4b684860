"""Recording one backward pass gate by gate: what each gate received and what it sent.

The engine's walk (``Tensor.backward``) keeps only each tensor's total gradient. The explorer
also shows, for every gate, the upstream gradient it received, its local gradient and the
product it sent to each input, which the total hides where a tensor feeds two gates (W1 feeds
the affine gate and the L2 term: the two products add up). ``Recorder.watch`` records exactly
those arrays while the engine itself runs the walk, so every number shown is the engine's.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from chainrule.engine.autograd import Spent
from chainrule.engine.errors import ChainruleError
from chainrule.engine.tensor import Tensor, topological_order


@dataclass
class BackwardStep:
    """One gate's backward call, in the order the engine made them.

    node: the index of the gate's output in the forward order. upstream: the dout it received
    (the output's shape). sent: one array per input (that input's shape), None where the gate
    sent nothing (an input that needs no gradient, such as the data batch or a constant).
    local: the local gradient d(output)/d(input) per input, for a gate whose output is one number
    (then sent = upstream * local); None for an array output, whose local gradient is a
    Jacobian too large to show (the page shows its formula instead).
    """

    node: int
    upstream: np.ndarray
    sent: list[np.ndarray | None]
    local: list[np.ndarray | None] | None


class Recorder:
    """Collects the forward order and the ``BackwardStep``s of one backward pass.

    Use: ``with recorder.watch(loss): loss.backward()`` (or any function that runs it, such as
    the circuit's). Afterwards ``order`` holds every tensor of the graph in forward order (a
    tensor's ``data`` and ``grad`` are the engine's) and ``steps`` the gates' calls.
    """

    def __init__(self) -> None:
        self.order: list[Tensor] = []
        self.steps: list[BackwardStep] = []

    @contextlib.contextmanager
    def watch(self, out: Tensor) -> Iterator[None]:
        """Record the graph of ``out`` before the walk and each gate's backward during it.

        Raises ChainruleError when ``out``'s graph was already walked (its gates are spent:
        record before calling ``backward()``) or ``out`` does not depend on anything that
        requires a gradient.
        """
        if isinstance(out.gate, Spent):
            raise ChainruleError(
                "explore: this tensor's graph was already back-propagated (backward() frees it); "
                "run the forward pass again and pass the result before calling backward()"
            )
        if not out.requires_grad:
            raise ChainruleError("explore: the tensor does not depend on anything with a gradient")
        self.order = topological_order(out)
        self.steps = []
        for index, t in enumerate(self.order):
            if t.gate is not None:
                # An instance attribute shadows the class's method for this one gate only; the
                # engine calls it and then releases the gate, which drops the attribute too.
                t.gate.backward = self._recording(index, t.gate.backward, t.gate)  # type: ignore[method-assign]
        yield

    def _recording(
        self, index: int, backward: Callable[[np.ndarray], tuple], gate: object
    ) -> Callable[[np.ndarray], tuple]:
        def record(dout: np.ndarray) -> tuple:
            # A gate may reuse its cache in backward (softmax cross-entropy does), and serves one
            # call: a copy made before the real call computes the local gradient (dout = 1).
            twin = copy.deepcopy(gate) if dout.size == 1 else None
            grads = backward(dout)
            local = None
            if twin is not None:
                del twin.__dict__["backward"]  # the copy's own class method, not this recorder
                ones = twin.backward(np.ones_like(dout))
                local = [None if g is None else np.array(g) for g in ones]
            sent = [None if g is None else np.array(g) for g in grads]
            self.steps.append(BackwardStep(index, np.array(dout), sent, local))
            return grads

        return record
