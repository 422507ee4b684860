"""Parameter: a Tensor a model learns, and whether weight decay applies to it.

The L2 convention (``nn.losses``, README): reg * sum(W**2) over the weights, not the biases. The
layer that makes a parameter knows which it is and says so on the parameter (``decay``), so an
optimizer's ``weight_decay``, ``Module.weights()`` and ``losses.l2_penalty`` over those weights
all agree without a list of names or parameter groups.
"""

from __future__ import annotations

from typing import Any

from chainrule.engine.tensor import Tensor


class Parameter(Tensor):
    """A Tensor that requires a gradient and says whether weight decay applies to it.

    data: any shape, as ``Tensor`` takes it. decay: True for a weight (W: (out, in)), False for a
    bias (b: (out,)). nn's layers set it; a plain ``Tensor`` given to an optimizer counts as
    decayed (``decays``), as every parameter does in PyTorch's ``weight_decay``.
    """

    __slots__ = ("decay",)

    def __init__(self, data: Any, decay: bool = True, name: str | None = None) -> None:
        super().__init__(data, requires_grad=True, name=name)
        self.decay = decay


def decays(p: Tensor) -> bool:
    """Whether weight decay (the L2 term) applies to ``p``: its ``decay`` flag for a Parameter,
    True for any other Tensor."""
    return not isinstance(p, Parameter) or p.decay
