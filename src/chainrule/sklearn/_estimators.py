"""The classifiers of the track as scikit-learn estimators: each a model of ``chainrule.nn`` and a
loss; the training parameters they share are in ``_params.TRAINING``."""

from __future__ import annotations

from numbers import Integral
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval

from chainrule.nn import MLP, LinearClassifier, Module, TwoLayerNet, activation_from_name
from chainrule.sklearn._base import NetClassifier
from chainrule.sklearn._params import ACTIVATION, LOSS, TRAINING, Param


class _LinearModel(NetClassifier):
    """s = W x + b, one template (a row of W [K x D]) per class; the loss is the subclass's."""

    _parameters = TRAINING

    def _build_model(self, n_features: int, n_classes: int, rng: np.random.Generator) -> Module:
        return LinearClassifier(n_features, n_classes, rng, dtype=np.dtype(self.dtype))


class LinearSVMClassifier(_LinearModel):
    """A linear SVM: s = W x + b, one template (a row of W [K x D]) per class, trained on the
    multiclass hinge loss (margin 1, summed over the wrong classes) plus L2 on W.

    No predict_proba: hinge scores are not probabilities. coefs_[0] is W transposed, (D, K).
    """

    _parameters = TRAINING

    def _loss_name(self) -> str:
        return "svm"


class SoftmaxClassifier(_LinearModel):
    """A softmax classifier (multinomial logistic regression): s = W x + b, W [K x D], trained on
    the cross-entropy of softmax(s) plus L2 on W. predict_proba gives softmax(s).
    """

    _parameters = TRAINING

    def _loss_name(self) -> str:
        return "softmax"


class TwoLayerNetClassifier(NetClassifier):
    """The 2-layer net s = W2 f(W1 x + b1) + b2 (W1 [H x D], W2 [K x H]), f the activation, He's
    initialisation for ReLU (LeCun's otherwise); trained on the softmax or the SVM loss.

    coefs_ = [W1.T (D, H), W2.T (H, K)], as scikit-learn's MLPClassifier with
    hidden_layer_sizes=(H,) stores its weights.
    """

    _parameters: ClassVar[dict[str, Param]] = {
        "hidden_size": Param(
            100,
            [Interval(Integral, 1, None, closed="left")],
            "int",
            "H, the units of the hidden layer.",
        ),
        "activation": ACTIVATION,
        "loss": LOSS,
        **TRAINING,
    }

    def _build_model(self, n_features: int, n_classes: int, rng: np.random.Generator) -> Module:
        return TwoLayerNet(
            n_features,
            self.hidden_size,
            n_classes,
            rng,
            activation_from_name(self.activation),
            dtype=np.dtype(self.dtype),
        )


class MLPClassifier(NetClassifier):
    """A multi-layer perceptron with scikit-learn's MLPClassifier's way of naming its layers:
    s = WL f(... f(W1 x + b1) ...) + bL for hidden_layer_sizes (H1, ..., H(L-1)); chainrule's
    ``nn.MLP`` trained on the softmax or the SVM loss. coefs_[i] is (n_in, n_out) as there.
    """

    _parameters: ClassVar[dict[str, Param]] = {
        "hidden_layer_sizes": Param(
            (100,),
            ["array-like", Interval(Integral, 1, None, closed="left")],
            "int or tuple of int",
            "The units of each hidden layer, first to last (an int: one layer; (): none, a "
            "linear classifier).",
        ),
        "activation": ACTIVATION,
        "loss": LOSS,
        **TRAINING,
    }

    def _build_model(self, n_features: int, n_classes: int, rng: np.random.Generator) -> Module:
        hidden = np.atleast_1d(self.hidden_layer_sizes)
        if hidden.ndim != 1 or not all(isinstance(h, Integral) and h >= 1 for h in hidden):
            raise ValueError(
                f"hidden_layer_sizes must be positive integers, got {self.hidden_layer_sizes!r}"
            )
        sizes = [n_features, *(int(h) for h in hidden), n_classes]
        return MLP(sizes, rng, activation_from_name(self.activation), dtype=np.dtype(self.dtype))
