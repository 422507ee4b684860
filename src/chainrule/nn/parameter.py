"""Parameter: a Tensor a model learns, and whether weight decay applies to it; the initial
weights and biases (``init_weight``, ``init_bias``).

The L2 convention (``nn.losses``, README): reg * sum(W**2) over the weights, not the biases. The
layer that makes a parameter knows which it is and says so on the parameter (``decay``), so an
optimizer's ``weight_decay``, ``Module.weights()`` and ``losses.l2_penalty`` over those weights
all agree without a list of names or parameter groups.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.engine.errors import ConfigError
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


def init_weight(
    rng: np.random.Generator,
    out_size: int,
    in_size: int,
    scale: float | None,
    gain: float,
    dtype: np.dtype | type,
) -> Parameter:
    """A weight (out_size, in_size) drawn from N(0, std^2), std = scale or sqrt(gain / in_size),
    as a decayed Parameter of ``dtype``. Raises ConfigError for a size below 1.

    gain 2 is He's choice for ReLU (it keeps the variance of activations steady through layers),
    gain 1 LeCun's for tanh, sigmoid and linear outputs.
    """
    if out_size < 1 or in_size < 1:
        raise ConfigError(f"layer sizes must be positive, got {out_size} x {in_size}")
    std = scale if scale is not None else np.sqrt(gain / in_size)
    W = rng.standard_normal((out_size, in_size), dtype=np.float64) * std
    return Parameter(W.astype(dtype), decay=True)


def init_bias(out_size: int, dtype: np.dtype | type) -> Parameter:
    """A bias (out_size,) of zeros, as a Parameter that weight decay leaves alone."""
    return Parameter(np.zeros(out_size, dtype=dtype), decay=False)
