"""chainrule.sklearn on real data, in scikit-learn's own tools: 5-fold cross-validation on the 8x8
digits beside scikit-learn's MLPClassifier and LogisticRegression, and a grid search."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from chainrule.sklearn import SoftmaxClassifier, TwoLayerNetClassifier

# The same hidden size, optimizer (Adam), step size, batch size and number of epochs for both
# nets; few epochs, for the suite's time: both stop at max_iter.
SAME = {"batch_size": 64, "max_iter": 15, "random_state": 0}


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    # as benchmarks/sklearn_compare.py runs them: on a busy machine two BLAS threads that wait on
    # each other make these small fits many times slower
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def digits():
    return load_digits(return_X_y=True)


@pytest.fixture(scope="module")
def logistic_scores(digits):
    return five_fold(LogisticRegression(max_iter=1000), *digits)


def five_fold(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cross_val_score(make_pipeline(StandardScaler(), estimator), X, y, cv=5)


def test_two_layer_net_scores_within_a_point_of_scikit_learns_mlp(digits, logistic_scores):
    X, y = digits
    ours = five_fold(TwoLayerNetClassifier(hidden_size=100, learning_rate=0.01, **SAME), X, y)
    theirs = five_fold(SklearnMLP(hidden_layer_sizes=(100,), learning_rate_init=0.01, **SAME), X, y)
    assert ours.mean() >= theirs.mean() - 0.01, (ours.mean(), theirs.mean())
    assert min(ours.mean(), theirs.mean(), logistic_scores.mean()) > 0.9


def test_softmax_classifier_scores_as_logistic_regression_does(digits, logistic_scores):
    # the same model (multinomial logistic regression), trained by SGD rather than L-BFGS
    X, y = digits
    ours = five_fold(SoftmaxClassifier(learning_rate=0.01, **SAME), X, y)
    assert abs(ours.mean() - logistic_scores.mean()) < 0.02, (ours.mean(), logistic_scores.mean())


def test_grid_search_over_hidden_size_and_weight_decay(digits):
    X, y = digits
    net = TwoLayerNetClassifier(learning_rate=0.01, batch_size=64, max_iter=8, random_state=0)
    grid = {
        "twolayernetclassifier__hidden_size": [16, 64],
        "twolayernetclassifier__weight_decay": [1e-4, 1.0],
    }
    search = GridSearchCV(make_pipeline(StandardScaler(), net), grid, cv=3, error_score="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 4 and np.all(np.isfinite(scores))
    # weight decay 1 pulls every weight hard to 0: it must lose to 1e-4 at either size
    assert search.best_params_["twolayernetclassifier__weight_decay"] == 1e-4
    assert search.best_score_ > 0.9
    fitted = search.best_estimator_[-1]
    assert fitted.hidden_size == search.best_params_["twolayernetclassifier__hidden_size"]
    assert fitted.coefs_[0].shape == (64, fitted.hidden_size)


def test_the_readme_table_is_the_comparison_scripts():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import sklearn_compare
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    fake = {
        name: {"accuracy": [0.5] * 5, "seconds": [1.0], "epochs": [3]}
        for name in sklearn_compare.MODELS
    }
    produced = sklearn_compare.table(fake).splitlines()
    readme = (ROOT / "README.md").read_text().split("\n## scikit-learn\n", 1)[1]
    readme = readme.split("\n## ", 1)[0]  # the section only
    rows = [line for line in readme.splitlines() if line.startswith("| ")]
    assert rows[0] == produced[0]  # the header
    assert [r.split(" | ")[0] for r in rows[2:]] == [p.split(" | ")[0] for p in produced[2:]]
    assert produced[2] == (
        "| chainrule TwoLayerNetClassifier(hidden_size=100) | 0.5000 ± 0.0000 | 1.00 | 3 |"
    )
