"""chainrule: backpropagation from first principles, on NumPy.

The public surface. A computational graph of local gates (``gates``, ``shaping``, ``fused``),
the Tensor that records it and its reverse walk (``Tensor``), gradient checking (``gradcheck``),
models, losses and optimizers (``nn``, ``losses``, ``optim``), training (``fit``) and data.

Each name is imported when it is first used (a module ``__getattr__``, PEP 562), not by
``import chainrule`` itself: Python imports this package before any other code of chainrule's
runs, the command line's included, and a Ctrl-C that lands in an import outside the command's
``try`` would end in a traceback (see ``app/cli.py``). ``from chainrule import Tensor``,
``cr.fit`` and ``dir(chainrule)`` work as with plain imports.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# The submodules the package re-exports under a short name.
_MODULES = {
    "data": "chainrule.data",
    "nn": "chainrule.nn",
    "gates": "chainrule.engine.gates",
    "shaping": "chainrule.engine.shaping",
    "fused": "chainrule.engine.fused",
    "losses": "chainrule.nn.losses",
    "optim": "chainrule.nn.optim",
    "sklearn": "chainrule.sklearn",
}
# The module each other public name is defined in.
_SOURCES = {
    "chainrule.engine.errors": (
        "ChainruleError",
        "ChecksumError",
        "ConfigError",
        "DataError",
        "DataNotFoundError",
        "DivergenceError",
        "ExpressionError",
        "ShapeError",
    ),
    "chainrule.engine.gradcheck": (
        "GradcheckReport",
        "gradcheck",
        "numerical_gradient",
        "rel_error",
    ),
    "chainrule.engine.tensor": (
        "Tensor",
        "affine",
        "affine_relu",
        "exp",
        "is_grad_enabled",
        "log",
        "matmul",
        "maximum",
        "no_grad",
        "relu",
        "sigmoid",
        "tanh",
    ),
    "chainrule.training.loop": ("History", "evaluate", "fit"),
    "chainrule.app.sweep": ("sweep",),
    "chainrule.lessons.explorer": ("explore",),
}
_SOURCE = {name: module for module, names in _SOURCES.items() for name in names}

__all__ = sorted([*_MODULES, *_SOURCE])


def __getattr__(name: str) -> object:
    """Import a public name on first use and keep it as a module attribute (later uses do not
    come here). Raises AttributeError for a name that is not public, as a plain module does."""
    if name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    elif name in _SOURCE:
        value = getattr(importlib.import_module(_SOURCE[name]), name)
    else:
        raise AttributeError(f"module 'chainrule' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's own names and every public name, imported or not."""
    return sorted({*globals(), *__all__})
