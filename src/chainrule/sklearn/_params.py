"""The one table of the estimators' parameters: each one's default, its rule (scikit-learn's
``_parameter_constraints``, which ``fit`` checks) and its words for the class docstring.

scikit-learn reads an estimator's parameters from the signature of its ``__init__`` (``get_params``,
``clone``, ``repr``) and asks that ``__init__`` only store them. The four estimators share a dozen
training parameters: ``estimator_init`` writes that ``__init__`` from the table, with a signature
that lists every parameter, so there is one place to change a default or a rule, not four
hand-written copies that could drift apart.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from sklearn.utils._param_validation import Interval, StrOptions

from chainrule.nn import ACTIVATIONS
from chainrule.nn.losses import LOSSES
from chainrule.nn.optim import OPTIMIZERS


@dataclass(frozen=True)
class Param:
    """One parameter: its default, its constraints (scikit-learn's), its type and meaning in
    words (numpydoc's ``name : kind, default=...`` line and the text below it)."""

    default: Any
    rule: list[Any]
    kind: str
    doc: str


_POSITIVE_REAL = Interval(Real, 0, None, closed="neither")
_POSITIVE_INT = Interval(Integral, 1, None, closed="left")
_NON_NEGATIVE = Interval(Real, 0, None, closed="left")


TRAINING: dict[str, Param] = {
    "optimizer": Param(
        "adam",
        [StrOptions(set(OPTIMIZERS))],
        "{" + ", ".join(map(repr, OPTIMIZERS)) + "}",
        "The update rule (chainrule.nn.optim): plain SGD, SGD with momentum 0.9 (or Nesterov's), "
        "or Adam with beta1 0.9, beta2 0.999.",
    ),
    "learning_rate": Param(
        1e-3,
        [_POSITIVE_REAL],
        "float",
        "The step size of every update, a number (lr in w <- w - lr * g for SGD, Adam's alpha), "
        "constant over the epochs. scikit-learn's MLPClassifier calls this learning_rate_init and "
        "uses learning_rate for the name of a schedule; here it is the step size, as in the track.",
    ),
    "weight_decay": Param(
        1e-4,
        [_NON_NEGATIVE],
        "float",
        "L2 strength λ on the weights, not the biases: each update adds λ·W to the gradient, "
        "the gradient of (λ/2)·sum(W**2), a term loss_curve_ includes (fit's reg = λ/2).",
    ),
    "batch_size": Param(
        200,
        [_POSITIVE_INT],
        "int",
        "Rows per mini-batch (all the rows when there are fewer).",
    ),
    "max_iter": Param(
        200,
        [_POSITIVE_INT],
        "int",
        "Epochs at most; each visits every training row once, in a fresh random order.",
    ),
    "tol": Param(
        1e-4,
        [_NON_NEGATIVE],
        "float",
        "Without early stopping, training stops once n_iter_no_change epochs in a row have not "
        "brought the training loss tol below its best (a ConvergenceWarning says when max_iter "
        "came first).",
    ),
    "n_iter_no_change": Param(
        10,
        [_POSITIVE_INT],
        "int",
        "The epochs without progress that stop training: of the training loss (see tol), or with "
        "early stopping of the validation accuracy (chainrule.fit's patience).",
    ),
    "early_stopping": Param(
        False,
        ["boolean"],
        "bool",
        "Hold out validation_fraction of the rows (stratified), stop once the validation accuracy "
        "has not improved for n_iter_no_change epochs, and keep the weights of the best epoch.",
    ),
    "validation_fraction": Param(
        0.1,
        [Interval(Real, 0, 1, closed="neither")],
        "float",
        "The fraction of the rows held out with early_stopping.",
    ),
    "random_state": Param(
        None,
        ["random_state"],
        "int, RandomState instance or None",
        "Seeds the initial weights, the order of the rows in each epoch and the validation split: "
        "an int gives the same model bit for bit on one machine. An int seeds "
        "numpy.random.default_rng; a RandomState gives a seed drawn from it; None a fresh one.",
    ),
    "warm_start": Param(
        False,
        ["boolean"],
        "bool",
        "fit continues from the weights of the previous fit (with a fresh optimizer, as "
        "scikit-learn does) instead of new random ones; the labels must be among classes_.",
    ),
    "dtype": Param(
        "float32",
        [StrOptions({"float32", "float64"})],
        "{'float32', 'float64'}",
        "The floating-point type of the weights and of the training data (converted once; "
        "scikit-learn's float64 input becomes float32 by default, the speed the track trains at).",
    ),
}

ACTIVATION = Param(
    "relu",
    [StrOptions(set(ACTIVATIONS))],
    "{" + ", ".join(map(repr, ACTIVATIONS)) + "}",
    "The non-linearity after each hidden layer (chainrule.nn.ACTIVATIONS).",
)
LOSS = Param(
    "softmax",
    [StrOptions(set(LOSSES))],
    "{" + ", ".join(map(repr, LOSSES)) + "}",
    "softmax: cross-entropy of the softmax of the scores (predict_proba is there); svm: the "
    "multiclass hinge with margin 1 (no probabilities).",
)


def estimator_init(parameters: dict[str, Param]) -> Callable[..., None]:
    """An ``__init__`` that stores each of ``parameters`` (keyword-only, its default when not
    given) and does nothing else, with a signature listing them for scikit-learn to read.

    Raises TypeError for a keyword that is not a parameter, as a written ``__init__`` would."""

    def __init__(self: Any, **given: Any) -> None:
        unknown = sorted(set(given) - set(parameters))
        if unknown:
            raise TypeError(
                f"{type(self).__name__}() got an unexpected keyword argument {unknown[0]!r}"
            )
        for name, param in parameters.items():
            setattr(self, name, given.get(name, param.default))

    self_arg = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    keywords = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=param.default)
        for name, param in parameters.items()
    ]
    __init__.__signature__ = inspect.Signature([self_arg, *keywords])  # type: ignore[attr-defined]
    return __init__


def parameters_doc(parameters: dict[str, Param]) -> str:
    """The numpydoc "Parameters" section for a class docstring (four-space indented)."""
    lines = ["", "    Parameters", "    ----------"]
    for name, param in parameters.items():
        lines.append(f"    {name} : {param.kind}, default={param.default!r}")
        lines.extend(
            textwrap.wrap(param.doc, 96, initial_indent=" " * 8, subsequent_indent=" " * 8)
        )
    return "\n".join(lines) + "\n"
