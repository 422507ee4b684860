"""chainrule: backpropagation from first principles, on NumPy.

The public surface. A computational graph of local gates (``gates``, ``shaping``, ``fused``),
the Tensor that records it and its reverse walk (``Tensor``), gradient checking (``gradcheck``),
models, losses and optimizers (``nn``, ``losses``, ``optim``), training (``fit``) and data.
"""

from chainrule import data, nn
from chainrule.engine import fused, gates, shaping
from chainrule.engine.errors import (
    ChainruleError,
    ChecksumError,
    ConfigError,
    DataError,
    DataNotFoundError,
    DivergenceError,
    ExpressionError,
    ShapeError,
)
from chainrule.engine.gradcheck import GradcheckReport, gradcheck, numerical_gradient, rel_error
from chainrule.engine.tensor import (
    Tensor,
    affine,
    affine_relu,
    exp,
    is_grad_enabled,
    log,
    matmul,
    maximum,
    no_grad,
    relu,
    sigmoid,
    tanh,
)
from chainrule.nn import losses, optim
from chainrule.training.loop import History, evaluate, fit

__version__ = "0.1.0"

__all__ = [
    "ChainruleError",
    "ChecksumError",
    "ConfigError",
    "DataError",
    "DataNotFoundError",
    "DivergenceError",
    "ExpressionError",
    "GradcheckReport",
    "History",
    "ShapeError",
    "Tensor",
    "affine",
    "affine_relu",
    "data",
    "evaluate",
    "exp",
    "fit",
    "fused",
    "gates",
    "gradcheck",
    "is_grad_enabled",
    "log",
    "losses",
    "matmul",
    "maximum",
    "nn",
    "no_grad",
    "numerical_gradient",
    "optim",
    "rel_error",
    "relu",
    "shaping",
    "sigmoid",
    "tanh",
]
