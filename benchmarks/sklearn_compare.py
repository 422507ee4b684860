"""chainrule's estimators beside scikit-learn's on the 8x8 digits: 5-fold cross-validation, each
model in a pipeline after StandardScaler, every model fitted on the same folds in turn (fold by
fold, so a busy machine slows them alike). Prints the README's table (Markdown).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/sklearn_compare.py

Every model keeps its library's defaults but for the hidden size (100 for both nets, scikit-learn's
default) and random_state; LogisticRegression gets max_iter=1000 so that L-BFGS converges.
Fit time: the median over the folds of one fit, scaling included, in seconds. Every model runs
with the same number of BLAS threads (``--threads``, 1 by default: on a shared machine two threads
that wait on each other make a small net's fit many times slower, whichever library runs it).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from chainrule.sklearn import LinearSVMClassifier, SoftmaxClassifier, TwoLayerNetClassifier

MODELS: dict[str, Callable[[int], BaseEstimator]] = {
    "chainrule TwoLayerNetClassifier(hidden_size=100)": lambda seed: TwoLayerNetClassifier(
        hidden_size=100, random_state=seed
    ),
    "scikit-learn MLPClassifier(hidden_layer_sizes=(100,))": lambda seed: MLPClassifier(
        hidden_layer_sizes=(100,), random_state=seed
    ),
    "chainrule SoftmaxClassifier()": lambda seed: SoftmaxClassifier(random_state=seed),
    "chainrule LinearSVMClassifier()": lambda seed: LinearSVMClassifier(random_state=seed),
    "scikit-learn LogisticRegression(max_iter=1000)": lambda seed: LogisticRegression(
        max_iter=1000
    ),
}


def epochs(estimator: BaseEstimator) -> float:
    """The estimator's n_iter_ (L-BFGS's iterations for LogisticRegression)."""
    return float(np.max(estimator.n_iter_))


def compare(folds: int, seed: int) -> dict[str, dict[str, list[float]]]:
    """Accuracy, fit seconds and epochs per fold for each model of MODELS."""
    X, y = load_digits(return_X_y=True)
    results = {name: {"accuracy": [], "seconds": [], "epochs": []} for name in MODELS}
    for train, test in StratifiedKFold(folds).split(X, y):
        for name, make in MODELS.items():
            pipeline = clone(make_pipeline(StandardScaler(), make(seed)))
            start = time.perf_counter()
            pipeline.fit(X[train], y[train])
            results[name]["seconds"].append(time.perf_counter() - start)
            results[name]["accuracy"].append(pipeline.score(X[test], y[test]))
            results[name]["epochs"].append(epochs(pipeline[-1]))
    return results


def table(results: dict[str, dict[str, list[float]]]) -> str:
    """The results as a Markdown table: mean ± std accuracy, median fit time, mean epochs."""
    folds = len(next(iter(results.values()))["accuracy"])
    lines = [
        f"| model | {folds}-fold accuracy | fit time (median, s) | epochs (mean) |",
        "| --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        acc = np.array(r["accuracy"])
        lines.append(
            f"| {name} | {acc.mean():.4f} ± {acc.std():.4f} | "
            f"{statistics.median(r['seconds']):.2f} | {np.mean(r['epochs']):.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="every model's random_state")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads, for every model")
    args = parser.parse_args()
    with warnings.catch_warnings(), threadpool_limits(args.threads):
        warnings.simplefilter("ignore", ConvergenceWarning)
        print(table(compare(args.folds, args.seed)))


if __name__ == "__main__":
    main()
