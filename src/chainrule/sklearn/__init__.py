"""chainrule's classifiers as scikit-learn estimators: they drop into pipelines,
cross-validation, grid search and metrics.

``LinearSVMClassifier`` and ``SoftmaxClassifier`` (one template per class),
``TwoLayerNetClassifier`` (s = W2 f(W1 x + b1) + b2) and ``MLPClassifier`` (any number of
hidden layers, named as scikit-learn's MLPClassifier names them), each trained by
``chainrule.fit``. They follow scikit-learn's rules: constructors only store their arguments,
``fit`` checks them against ``_parameter_constraints`` and the data with ``validate_data``,
fitted state ends in ``_``.

Pickling a fitted estimator works, as for any scikit-learn estimator, but unpickling runs code:
load pickles only from sources you trust. To share a model, save its weights as safetensors
(``safetensors.numpy.save_file(est.model_.state_dict(), path)``) with ``est.model_.config()``
and ``classes_`` beside them: ``chainrule.nn.build_model(config)`` and ``load_state_dict`` read
them back without running any code.

This module imports scikit-learn; ``import chainrule`` does not (``chainrule.sklearn`` is
imported on first use).
"""

from chainrule.sklearn._base import NetClassifier
from chainrule.sklearn._estimators import (
    LinearSVMClassifier,
    MLPClassifier,
    SoftmaxClassifier,
    TwoLayerNetClassifier,
)

__all__ = [
    "LinearSVMClassifier",
    "MLPClassifier",
    "NetClassifier",
    "SoftmaxClassifier",
    "TwoLayerNetClassifier",
    "expected_failed_checks",
]


_FLOAT32_ROUNDING = (
    "float32 scores of a row may differ by about 1e-7 (relative) between a batch and a subset "
    "of it, as BLAS orders its sums by the batch's size; the check's tolerance is 1e-7 "
    "(dtype='float64' passes)"
)


def expected_failed_checks(estimator: NetClassifier) -> dict[str, str]:
    """The checks of scikit-learn's ``check_estimator`` that may fail for ``estimator``, each
    with its reason (for ``parametrize_with_checks(expected_failed_checks=...)``): the two
    that compare predictions on a batch with those on its subsets or a reordering, to 1e-7,
    which float32 arithmetic cannot promise."""
    if estimator.dtype != "float32":
        return {}
    return {
        "check_methods_subset_invariance": _FLOAT32_ROUNDING,
        "check_methods_sample_order_invariance": _FLOAT32_ROUNDING,
    }
