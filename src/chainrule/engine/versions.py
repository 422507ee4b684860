"""In-place changes between a forward pass and ``backward()``: recorded, and refused.

A gate keeps its input arrays for backward (mul keeps both factors), so a tensor changed in place
between the forward pass and ``backward()`` would give the gradient at the new values, silently.
Every in-place change chainrule makes (an optimizer step, ``load_state_dict``) calls
``Tensor.mark_modified``, which ticks the clock here and records the change in the tensor's
``Version``; ``tensor.apply`` stamps each gate it records with the clock; ``backward()`` first
runs ``check_saved_inputs``, which looks only at gates whose inputs changed after their stamp and
refuses with a ChainruleError naming the tensor and what changed it. (One stamp per gate, not one
version per input: the same answer, at no cost per input.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from chainrule.engine.errors import ChainruleError

if TYPE_CHECKING:
    from chainrule.engine.tensor import Tensor

_clock = 0  # ticks at every in-place change recorded through Version.record


def clock() -> int:
    """The number of in-place changes recorded so far, in this process (a gate's stamp)."""
    return _clock


class Version:
    """A tensor's in-place changes: how many, the clock at the last one, and what made it.

    Shared by every tensor that shows the same array (a view, ``detach()``, ``Tensor(t)``).
    """

    __slots__ = ("by", "count", "last")

    def __init__(self) -> None:
        self.count, self.last, self.by = 0, 0, ""

    def record(self, by: str) -> None:
        """One more in-place change, made by ``by`` (e.g. ``"SGD.step()"``): ticks the clock."""
        global _clock
        _clock += 1
        self.count += 1
        self.last, self.by = _clock, by


def check_saved_inputs(order: Sequence[Tensor]) -> None:
    """Refuse a graph in which a tensor a gate kept for backward was changed in place since.

    order: tensors as ``tensor.topological_order`` gives them. Raises ChainruleError naming the
    first such tensor, the gate and what changed it. Costs one comparison per gate when nothing
    was changed in place since the graph was recorded (a training step: step() comes after
    backward).
    """
    now = _clock
    for node in order:
        gate = node._gate
        if gate is None or node._stamp == now:
            continue
        saved = gate.saved_inputs
        for i, t in enumerate(node._inputs):
            version = t._version
            if version is None or version.last <= node._stamp:
                continue
            if saved is not None and i not in saved:
                continue  # the gate kept only its shape, or nothing of it
            raise ChainruleError(
                f"backward: {_changed(t)}, kept by the {gate.describe()} gate for its "
                f"gradient, was changed in place by {version.by} after the forward pass, so the "
                "gradient would be taken at the new values; run the forward pass again after "
                "the change (in a training loop: forward, backward, then step)"
            )


def _changed(t: Tensor) -> str:
    """``t`` for the message of check_saved_inputs: a view is named by the tensor it shows."""
    source = t
    while source._gate is not None and source._gate.view_of is not None and source._inputs:
        source = source._inputs[source._gate.view_of]
    if source is t:
        return _describe(t)
    return f"{_describe(source)} (seen through a {t._gate.describe()} view of it)"  # type: ignore[union-attr]


def _describe(t: Tensor) -> str:
    """The tensor for a message: its name if it has one, and its shape and dtype."""
    what = f"tensor {t.name!r}" if t.name else "a tensor"
    return f"{what} of shape {t.shape} {t.dtype}"
