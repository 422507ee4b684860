"""Models, losses and optimizers: the layer that stands on the engine.

``modules`` (Module, the activations, Linear, Sequential and ``fused_forward``, the one rule that
runs a dense layer fused with its ReLU), ``models`` (the classifiers of the track and
``build_model``), ``parameter`` (Parameter: whether weight decay applies), all re-exported here,
so ``chainrule.nn.TwoLayerNet`` is the public name; and ``losses`` and ``optim``. Imports only
``chainrule.engine``; ``chainrule.data`` is its independent sibling.
"""

from chainrule.nn.models import MLP, LinearClassifier, TwoLayerNet, build_model
from chainrule.nn.modules import (
    ACTIVATIONS,
    Identity,
    Linear,
    Module,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
    activation_from_name,
    fused_forward,
    init_bias,
    init_weight,
    runs_fused,
)
from chainrule.nn.parameter import Parameter, decays

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "Identity",
    "Linear",
    "LinearClassifier",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "TwoLayerNet",
    "activation_from_name",
    "build_model",
    "decays",
    "fused_forward",
    "init_bias",
    "init_weight",
    "runs_fused",
]
