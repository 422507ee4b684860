"""Models, losses and optimizers: the layer that stands on the engine.

``modules`` (Module, the layers, the classifiers of the track and ``build_model``, all re-exported
here, so ``chainrule.nn.TwoLayerNet`` is the public name), ``losses`` and ``optim``. Imports only
``chainrule.engine``; ``chainrule.data`` is its independent sibling.
"""

from chainrule.nn.modules import (
    ACTIVATIONS,
    MLP,
    Identity,
    Linear,
    LinearClassifier,
    Module,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
    TwoLayerNet,
    activation_from_name,
    build_model,
    init_weight,
)

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "Identity",
    "Linear",
    "LinearClassifier",
    "Module",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "TwoLayerNet",
    "activation_from_name",
    "build_model",
    "init_weight",
]
