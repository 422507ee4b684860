"""chainrule.sklearn: scikit-learn's own estimator checks, and what the issue asks of the protocol
(labels of any type, random_state bit for bit, warm_start, partial_fit, clone, pickle)."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import (
    check_methods_sample_order_invariance,
    check_methods_subset_invariance,
    parametrize_with_checks,
)

from chainrule.sklearn import (
    LinearSVMClassifier,
    MLPClassifier,
    SoftmaxClassifier,
    TwoLayerNetClassifier,
    expected_failed_checks,
)

# Small and quick enough for the whole battery, and still above the 0.83 accuracy on blobs that
# check_classifiers_train asks for.
QUICK = {"max_iter": 20, "learning_rate": 0.01, "batch_size": 32}
ESTIMATORS = [
    LinearSVMClassifier(**QUICK),
    SoftmaxClassifier(**QUICK),
    TwoLayerNetClassifier(hidden_size=16, **QUICK),
    MLPClassifier(hidden_layer_sizes=(16, 8), **QUICK),
]


@pytest.fixture(autouse=True)
def _quiet_convergence():
    # the quick settings stop at max_iter on purpose
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize(
    "check", [check_methods_subset_invariance, check_methods_sample_order_invariance]
)
@pytest.mark.parametrize("estimator", ESTIMATORS[2:], ids=lambda e: type(e).__name__)
def test_the_checks_expected_to_fail_in_float32_pass_in_float64(estimator, check):
    assert check.__name__ in expected_failed_checks(estimator)
    est = clone(estimator).set_params(dtype="float64")
    assert expected_failed_checks(est) == {}
    check(type(est).__name__, est)


def blobs(n=240, labels=("bird", "cat", "dog"), seed=0):
    X, y = make_blobs(n_samples=n, centers=len(labels), n_features=5, random_state=seed)
    return X, np.asarray(labels)[y]


def test_importing_chainrule_does_not_import_scikit_learn():
    code = (
        "import sys, chainrule as cr\n"
        "assert 'sklearn' in dir(cr) and 'sklearn' not in sys.modules\n"
        "print(cr.sklearn.TwoLayerNetClassifier.__name__, 'sklearn' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["TwoLayerNetClassifier", "True"]


def test_string_labels_round_trip():
    X, y = blobs()
    est = TwoLayerNetClassifier(hidden_size=8, random_state=0, **QUICK).fit(X, y)
    assert est.classes_.tolist() == ["bird", "cat", "dog"]
    predicted = est.predict(X)
    assert predicted.dtype.kind == "U" and set(predicted) == {"bird", "cat", "dog"}
    assert np.mean(predicted == y) > 0.95
    proba = est.predict_proba(X)  # columns in the order of classes_
    assert np.array_equal(est.classes_[proba.argmax(axis=1)], predicted)


def test_random_state_gives_the_same_model_bit_for_bit():
    X, y = blobs()
    a, b, c = (
        MLPClassifier(hidden_layer_sizes=(8, 8), random_state=s, **QUICK).fit(X, y)
        for s in (7, 7, 8)
    )
    for wa, wb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert np.array_equal(wa, wb)
    assert a.loss_curve_ == b.loss_curve_
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


def test_warm_start_continues_as_one_longer_run():
    # SGD keeps no state, so a warm fit (whose optimizer is new) continues exactly where the
    # first stopped: 5 + 3 epochs are the 8 epochs of one run, the shuffles included.
    X, y = blobs()
    settings = {"optimizer": "sgd", "random_state": 0, "tol": 0.0, "n_iter_no_change": 100}
    warm = SoftmaxClassifier(max_iter=5, warm_start=True, **settings).fit(X, y)
    warm.set_params(max_iter=3).fit(X, y)
    whole = SoftmaxClassifier(max_iter=8, **settings).fit(X, y)
    assert warm.n_iter_ == whole.n_iter_ == 8
    assert np.array_equal(warm.coefs_[0], whole.coefs_[0])
    assert warm.loss_curve_ == whole.loss_curve_
    cold = SoftmaxClassifier(max_iter=5, **settings).fit(X, y)
    cold.set_params(max_iter=3).fit(X, y)  # not warm: starts again
    assert cold.n_iter_ == 3 and np.array_equal(
        cold.coefs_[0], SoftmaxClassifier(max_iter=3, **settings).fit(X, y).coefs_[0]
    )
    with pytest.raises(ValueError, match="not in classes_"):
        warm.fit(X[:10], np.array(["emu"] * 5 + ["cat"] * 5))


def test_partial_fit_is_one_epoch_keeping_the_optimizer_state():
    X, y = blobs()
    settings = {"hidden_size": 8, "random_state": 3, "batch_size": 32}
    whole = TwoLayerNetClassifier(max_iter=2, **settings).fit(X, y)  # Adam: m, v carry over
    parts = TwoLayerNetClassifier(**settings)
    with pytest.raises(ValueError, match="classes must be passed"):
        parts.partial_fit(X, y)
    parts.partial_fit(X, y, classes=["bird", "cat", "dog"]).partial_fit(X, y)
    assert parts.n_iter_ == 2
    assert np.array_equal(parts.coefs_[1], whole.coefs_[1])
    assert parts.loss_curve_ == whole.loss_curve_
    # a batch may hold only some of the classes, but none outside them
    only_cats = y == "cat"
    parts.partial_fit(X[only_cats], y[only_cats])
    with pytest.raises(ValueError, match="not in classes_"):
        parts.partial_fit(X[:3], np.array(["emu", "cat", "cat"]))
    with pytest.raises(ValueError, match="early_stopping=False"):
        TwoLayerNetClassifier(early_stopping=True).partial_fit(X, y, classes=np.unique(y))


def test_early_stopping_keeps_the_best_validation_epoch():
    X, y = blobs(n=400)
    settings = {**QUICK, "max_iter": 200, "n_iter_no_change": 3, "random_state": 0}
    est = TwoLayerNetClassifier(hidden_size=8, early_stopping=True, **settings).fit(X, y)
    assert 3 < est.n_iter_ < 200  # stopped: blobs are easy
    assert len(est.validation_scores_) == len(est.loss_curve_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_) == 1.0
    assert not hasattr(est, "best_loss_")
    est.set_params(early_stopping=False, max_iter=2).fit(X, y)  # a new fit forgets the old one's
    assert not hasattr(est, "validation_scores_") and est.best_loss_ == min(est.loss_curve_)


def test_clone_get_params_and_set_params():
    est = MLPClassifier(hidden_layer_sizes=(5,), weight_decay=0.5, random_state=1)
    params = est.get_params()
    assert params["hidden_layer_sizes"] == (5,) and params["weight_decay"] == 0.5
    assert params["optimizer"] == "adam" and params["dtype"] == "float32"
    twin = clone(est)
    assert twin is not est and twin.get_params() == params
    assert repr(est) == "MLPClassifier(hidden_layer_sizes=(5,), random_state=1, weight_decay=0.5)"
    assert est.set_params(learning_rate=0.1).learning_rate == 0.1
    with pytest.raises(TypeError, match="unexpected keyword argument 'alpha'"):
        MLPClassifier(alpha=0.1)


def test_parameters_are_checked_by_fit_not_by_the_constructor():
    X, y = blobs(n=30)
    est = TwoLayerNetClassifier(learning_rate=-1.0)  # stored as given
    with pytest.raises(InvalidParameterError, match="'learning_rate' parameter"):
        est.fit(X, y)
    with pytest.raises(InvalidParameterError, match="'optimizer' parameter"):
        SoftmaxClassifier(optimizer="rmsprop").fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be positive integers"):
        MLPClassifier(hidden_layer_sizes=(4, 0)).fit(X, y)


def test_pickle_round_trip():
    X, y = blobs()
    est = TwoLayerNetClassifier(hidden_size=8, random_state=0, **QUICK).fit(X, y)
    back = pickle.loads(pickle.dumps(est))
    assert np.array_equal(back.predict_proba(X), est.predict_proba(X))
    assert back.get_params() == est.get_params()
    # the optimizer and the generator came along: both go on identically
    est.partial_fit(X, y)
    back.partial_fit(X, y)
    assert np.array_equal(back.coefs_[0], est.coefs_[0])


def test_coefs_are_in_scikit_learn_layout():
    X, y = blobs()
    est = TwoLayerNetClassifier(hidden_size=6, random_state=0, dtype="float64", **QUICK).fit(X, y)
    assert [c.shape for c in est.coefs_] == [(5, 6), (6, 3)]
    assert [b.shape for b in est.intercepts_] == [(6,), (3,)]
    hidden = np.maximum(X @ est.coefs_[0] + est.intercepts_[0], 0)
    scores = hidden @ est.coefs_[1] + est.intercepts_[1]
    np.testing.assert_allclose(est.decision_function(X), scores, rtol=1e-12)
    assert est.n_features_in_ == 5 and est.model_.W1.shape == (6, 5)  # chainrule's [out x in]


def test_probabilities_only_with_the_softmax_loss():
    X, y = blobs()
    svm = LinearSVMClassifier(random_state=0, **QUICK).fit(X, y)
    assert not hasattr(svm, "predict_proba") and not hasattr(svm, "predict_log_proba")
    net = TwoLayerNetClassifier(hidden_size=8, loss="svm", random_state=0, **QUICK).fit(X, y)
    assert not hasattr(net, "predict_proba")
    soft = SoftmaxClassifier(random_state=0, **QUICK).fit(X, y)
    proba, log_proba = soft.predict_proba(X), soft.predict_log_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.exp(log_proba), proba, rtol=1e-12)


def test_two_classes_decision_function_is_the_margin():
    X, y = blobs(labels=("no", "yes"))
    est = SoftmaxClassifier(random_state=0, **QUICK).fit(X, y)
    margin = est.decision_function(X)
    assert margin.shape == (len(X),)
    assert np.array_equal(np.where(margin > 0, "yes", "no"), est.predict(X))
    # the softmax of two scores is the logistic function of their difference
    np.testing.assert_allclose(est.predict_proba(X)[:, 1], 1 / (1 + np.exp(-margin)), rtol=1e-6)


def test_feature_names_come_from_a_data_frame():
    pd = pytest.importorskip("pandas", reason="pandas is in the test extra")
    X, y = blobs()
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    est = SoftmaxClassifier(random_state=0, **QUICK).fit(frame, y)
    assert est.feature_names_in_.tolist() == ["f0", "f1", "f2", "f3", "f4"]
    with pytest.warns(UserWarning, match="feature names"):
        est.predict(X)  # fitted with names, given none


def test_loss_curve_and_convergence_warning():
    X, y = blobs()
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        est = SoftmaxClassifier(max_iter=2, random_state=0).fit(X, y)
    assert len(est.loss_curve_) == est.n_iter_ == 2 and est.best_loss_ == min(est.loss_curve_)
    # stops by tol: at most max_iter, and the last n_iter_no_change epochs made no progress
    est = SoftmaxClassifier(learning_rate=0.05, tol=1e-2, n_iter_no_change=2, random_state=0)
    est.fit(X, y)
    curve = est.loss_curve_
    assert est.n_iter_ < 200
    assert all(loss > min(curve[:-2]) - 1e-2 for loss in curve[-2:])


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_the_docstring_lists_every_parameter(estimator):
    doc = type(estimator).__doc__
    listed = [line.split(" : ")[0].strip() for line in doc.splitlines() if " : " in line]
    assert listed[-len(estimator.get_params()) :] == list(type(estimator)._parameters)
    assert set(listed) >= set(estimator.get_params())


def test_a_diverging_fit_says_why_in_one_line():
    X, y = blobs()
    est = SoftmaxClassifier(optimizer="sgd", learning_rate=1e30, random_state=0)
    with pytest.raises(FloatingPointError, match=r"learning rate .* is likely too high") as caught:
        est.fit(X * 1e3, y)
    assert "\n" not in str(caught.value)
