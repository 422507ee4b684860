"""What the four estimators share: scikit-learn's protocol over a chainrule model, trained by
``chainrule.fit``.

Labels of any type are mapped to 0..K-1 through ``classes_`` (sorted, as ``unique_labels`` gives
them) and back. The data is validated and converted to the model's dtype once per call, by
``validate_data``; parameters are checked by ``_fit_context`` against ``_parameter_constraints``.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data

from chainrule.nn import Module
from chainrule.nn.losses import LOSSES
from chainrule.nn.optim import optimizer_from_name
from chainrule.sklearn._params import Param, estimator_init, parameters_doc
from chainrule.training.loop import History, Splits, fit

# fit scores a training sample and a validation set after every epoch. Where the estimators do
# not use those scores (every epoch of a run without early stopping, and partial_fit's one pass)
# it scores this many training rows for both, not all of them, which would cost a forward pass
# over the whole data set per epoch. The weights are not affected: a one-epoch fit keeps its
# epoch's weights, whatever they score.
_UNUSED_SCORE_ROWS = 64


def _epochs_without_progress(curve: list[float], tol: float) -> int:
    """How many of the last epochs in a row left the loss above the best before them minus tol
    (scikit-learn's MLPClassifier's rule for its tol and n_iter_no_change)."""
    count, best = 0, np.inf
    for loss in curve:
        count = count + 1 if loss > best - tol else 0
        best = min(best, loss)
    return count


def _has_probabilities(estimator: NetClassifier) -> bool:
    return estimator._loss_name() == "softmax"


class NetClassifier(ClassifierMixin, BaseEstimator):
    """Base of chainrule's estimators: a subclass gives ``_parameters`` (the table, from which
    its ``__init__``, ``_parameter_constraints`` and the docstring's parameters are made) and
    ``_build_model``.

    Attributes (after fit)
    ----------------------
    classes_ : (K,) the labels, sorted. n_features_in_ : D. feature_names_in_ : (D,) str, when X
    had column names. model_ : the chainrule model (chainrule.nn), weights stored [out x in].
    coefs_ : list of (n_in, n_out) arrays, scikit-learn's layout (views of the weights,
    transposed). intercepts_ : list of (n_out,) arrays. loss_curve_ : the mean training loss of
    each epoch, the L2 term included. n_iter_ : epochs run, over every fit and partial_fit call
    since the weights were made. best_loss_ : the lowest of loss_curve_ (without early
    stopping). validation_scores_, best_validation_score_ : the validation accuracy of each epoch
    and the best one (with early stopping).
    """

    _parameters: ClassVar[dict[str, Param]] = {}
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_parameters" in vars(cls):
            cls.__init__ = estimator_init(cls._parameters)  # type: ignore[method-assign]
            cls.__init__.__qualname__ = f"{cls.__name__}.__init__"
            cls._parameter_constraints = {name: p.rule for name, p in cls._parameters.items()}
            cls.__doc__ = (cls.__doc__ or "") + parameters_doc(cls._parameters)

    # --- what a subclass gives ---
    def _build_model(self, n_features: int, n_classes: int, rng: np.random.Generator) -> Module:
        raise NotImplementedError

    def _loss_name(self) -> str:
        return str(self.loss)  # type: ignore[attr-defined]

    # --- training ---
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any) -> NetClassifier:
        """Train on rows X (N, D) with labels y (N,) of any type (at least two classes).

        Starts from new random weights, or with ``warm_start`` from the last fit's. Raises
        ValueError for bad data (NaN, a single class, a wrong number of features when warm),
        InvalidParameterError for a parameter out of its range, and chainrule's DivergenceError
        when the loss stops being finite (the learning rate is likely too high). Returns self.
        """
        warm = self.warm_start and hasattr(self, "model_")
        X, y = self._validate(X, y, reset=not warm)
        if not warm:
            self._start(X.shape[1], unique_labels(y))
        codes = self._codes(y)
        self._optimizer = optimizer_from_name(
            self.optimizer, self.model_.parameters(), self.learning_rate
        )
        if self.early_stopping:
            self._fit_early_stopping(X, codes)
        else:
            self._fit_epochs(X, codes)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> NetClassifier:
        """One epoch of mini-batches over rows X (N, D) with labels y (N,), no validation; the
        optimizer's state carries over to the next call.

        classes: every label of the whole data set, required on the first call (y may hold only
        some of them); later calls may omit it or must give the same. Raises ValueError for
        early_stopping (partial_fit holds nothing out), a label not in classes_, or bad data.
        """
        if self.early_stopping:
            raise ValueError(
                "partial_fit trains on all of the batch it is given and holds nothing out for "
                "validation: set early_stopping=False"
            )
        first = not hasattr(self, "model_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        if (
            not first
            and classes is not None
            and not np.array_equal(unique_labels(classes), self.classes_)
        ):
            raise ValueError(f"classes={classes!r} differs from the first call's {self.classes_}")
        X, y = self._validate(X, y, reset=first)
        if first:
            self._start(X.shape[1], unique_labels(classes))
            self._optimizer = optimizer_from_name(
                self.optimizer, self.model_.parameters(), self.learning_rate
            )
        self._epoch(X, self._codes(y))
        return self

    def _validate(self, X: Any, y: Any, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        dtype = np.dtype(self.dtype) if reset else self._model_dtype()
        X, y = validate_data(self, X, y, dtype=dtype, reset=reset)
        check_classification_targets(y)
        return X, y

    def _start(self, n_features: int, classes: np.ndarray) -> None:
        """New weights for D features and the given labels (K,), a new generator, no history."""
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs rows of at least 2 classes to learn from, got one "
                f"class: {classes[0]!r}"
            )
        seed = self.random_state
        if not isinstance(seed, int | np.integer) and seed is not None:
            seed = check_random_state(seed).randint(np.iinfo(np.int32).max)
        self._rng = np.random.default_rng(seed)
        self.classes_ = classes
        self.model_ = self._build_model(n_features, len(classes), self._rng)
        self.n_iter_ = 0
        self.loss_curve_: list[float] = []
        for stale in ("best_loss_", "validation_scores_", "best_validation_score_"):
            vars(self).pop(stale, None)  # a previous fit's, with other settings

    def _codes(self, y: np.ndarray) -> np.ndarray:
        """y's labels as indices into classes_ (N,) int64; ValueError for a label not there."""
        if len(unique_labels(self.classes_, y)) > len(self.classes_):
            unseen = sorted(set(np.unique(y).tolist()) - set(self.classes_.tolist()))
            raise ValueError(f"y has labels not in classes_ {self.classes_}: {unseen}")
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def _fit(self, data: Splits, epochs: int, patience: int | None = None) -> History:
        """chainrule.fit with this estimator's settings; loss_curve_ and n_iter_ grow by its
        epochs."""
        history = fit(
            self.model_,
            data,
            loss=LOSSES[self._loss_name()],
            optimizer=self._optimizer,
            epochs=epochs,
            batch_size=min(self.batch_size, len(data.X_train)),
            reg=self.weight_decay / 2,  # the optimizer's weight_decay becomes 2 * reg
            rng=self._rng,
            progress=False,
            train_eval_size=_UNUSED_SCORE_ROWS,
            patience=patience,
        )
        self.loss_curve_.extend(history.loss)
        self.n_iter_ += len(history)
        return history

    def _epoch(self, X: np.ndarray, codes: np.ndarray) -> None:
        rows = slice(0, _UNUSED_SCORE_ROWS)
        self._fit(Splits(X, codes, X[rows], codes[rows]), epochs=1)

    def _fit_epochs(self, X: np.ndarray, codes: np.ndarray) -> None:
        """Epochs until the training loss stalls (see tol) or max_iter."""
        for _ in range(self.max_iter):
            self._epoch(X, codes)
            self.best_loss_ = min(self.loss_curve_)
            if _epochs_without_progress(self.loss_curve_, self.tol) >= self.n_iter_no_change:
                return
        self._not_converged()

    def _fit_early_stopping(self, X: np.ndarray, codes: np.ndarray) -> None:
        X_train, X_val, y_train, y_val = train_test_split(
            X,
            codes,
            test_size=self.validation_fraction,
            random_state=int(self._rng.integers(np.iinfo(np.int32).max)),
            stratify=codes,
        )
        history = self._fit(
            Splits(X_train, y_train, X_val, y_val), self.max_iter, self.n_iter_no_change
        )
        self.validation_scores_ = [*getattr(self, "validation_scores_", []), *history.val_accuracy]
        self.best_validation_score_ = history.best_val_accuracy
        if not history.stopped_early:
            self._not_converged()

    def _not_converged(self) -> None:
        warnings.warn(
            f"{type(self).__name__}: max_iter={self.max_iter} epochs ran and training had not "
            "converged; raise max_iter to train longer",
            ConvergenceWarning,
            stacklevel=3,
        )

    # --- prediction ---
    def _model_dtype(self) -> np.dtype:
        return self.model_.parameters()[0].dtype

    def _scores(self, X: Any) -> np.ndarray:
        """The model's class scores (N, K) for rows X (N, D), as float64."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=self._model_dtype(), reset=False)
        return self.model_.scores(X).astype(np.float64)

    def decision_function(self, X: Any) -> np.ndarray:
        """The class scores s = f(x) for rows X (N, D): (N, K), or for two classes (N,), the
        margin s_1 - s_0 (positive: classes_[1]), as scikit-learn's binary convention asks."""
        scores = self._scores(X)
        return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores

    def predict(self, X: Any) -> np.ndarray:
        """The label of the highest score for each row of X (N, D): (N,), from classes_."""
        scores = self._scores(X)
        return self.classes_[np.argmax(scores, axis=1)]

    @available_if(_has_probabilities)
    def predict_proba(self, X: Any) -> np.ndarray:
        """softmax(scores) for rows X (N, D): (N, K) float64, rows sum to 1, columns in the order
        of classes_. Only with the softmax loss, whose scores are log-probabilities up to a
        constant; the hinge loss's are not."""
        return softmax(self._scores(X), axis=1)

    @available_if(_has_probabilities)
    def predict_log_proba(self, X: Any) -> np.ndarray:
        """log softmax(scores) for rows X (N, D): (N, K) float64, computed stably (not the log
        of predict_proba, which underflows to -inf for improbable classes)."""
        return log_softmax(self._scores(X), axis=1)

    # --- scikit-learn's layout of the weights ---
    @property
    def coefs_(self) -> list[np.ndarray]:
        """The weight of each layer as (n_in, n_out), scikit-learn's layout: views of the model's
        W [out x in], transposed (writing into them changes the model)."""
        return [p.data.T for p in self.model_.parameters() if p.ndim == 2]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """The bias of each layer, (n_out,): the model's own arrays."""
        return [p.data for p in self.model_.parameters() if p.ndim == 1]
