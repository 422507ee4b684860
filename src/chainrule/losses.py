"""The losses of the track, their conventions stated once.

- Data loss is the mean over the batch.
- SVM: the multiclass hinge, margin 1, summed over the wrong classes:
  L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + 1). A term at exactly 0 gets no gradient.
- Softmax: cross-entropy of softmax(s), L_i = -log(e^{s_{y_i}} / sum_j e^{s_j}), computed stably.
- Regularization: reg * sum(W**2) over the weights, not the biases (its gradient is 2 * reg * W).

Each data loss is one fused gate (``gates.SoftmaxCrossEntropy``, ``gates.MulticlassHinge``): the
formulas are vectorized there, and ``*_loop`` versions here spell them out for the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from chainrule import gates
from chainrule.tensor import Tensor, apply

LossFn = Callable[[Tensor, Any], Tensor]


def softmax_loss(scores: Tensor, y: Any) -> Tensor:
    """Mean softmax cross-entropy. scores: (N, K) Tensor, y: (N,) ints in [0, K). Returns 0-d."""
    return apply(gates.SoftmaxCrossEntropy(np.asarray(y)), scores)


def svm_loss(scores: Tensor, y: Any) -> Tensor:
    """Mean multiclass hinge loss, margin 1. scores: (N, K) Tensor, y: (N,) ints. Returns 0-d."""
    return apply(gates.MulticlassHinge(np.asarray(y)), scores)


def l2_penalty(weights: Iterable[Tensor], reg: float) -> Tensor:
    """reg * sum(W**2) over the given weight tensors (pass weights only, not biases). 0-d."""
    total: Tensor | None = None
    for W in weights:
        term = apply(gates.SumOfSquares(), W)
        total = term if total is None else total + term
    if total is None:
        return Tensor(0.0)
    return total * reg


def softmax_loss_loop(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """The softmax loss and dscores with explicit loops, for checking the gate. scores: (N, K)."""
    n, k = scores.shape
    loss, dscores = 0.0, np.zeros_like(scores, dtype=np.float64)
    for i in range(n):
        row = scores[i] - np.max(scores[i])
        total = sum(np.exp(row[j]) for j in range(k))
        loss += -row[y[i]] + np.log(total)
        for j in range(k):
            p = np.exp(row[j]) / total
            dscores[i, j] += (p - (j == y[i])) / n
    return loss / n, dscores


def svm_loss_loop(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """The hinge loss and dscores with explicit loops, for checking the gate. scores: (N, K)."""
    n, k = scores.shape
    loss, dscores = 0.0, np.zeros_like(scores, dtype=np.float64)
    for i in range(n):
        for j in range(k):
            if j == y[i]:
                continue
            margin = scores[i, j] - scores[i, y[i]] + 1
            if margin > 0:
                loss += margin
                dscores[i, j] += 1 / n
                dscores[i, y[i]] -= 1 / n
    return loss / n, dscores


LOSSES: dict[str, LossFn] = {"softmax": softmax_loss, "svm": svm_loss}
