"""The losses of the track, their conventions stated once.

- Data loss is the mean over the batch.
- SVM: the multiclass hinge, margin 1, summed over the wrong classes:
  L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + 1). A term at exactly 0 gets no gradient.
- Softmax: cross-entropy of softmax(s), L_i = -log(e^{s_{y_i}} / sum_j e^{s_j}), computed stably.
- Regularization: reg * sum(W**2) over the weights, not the biases (its gradient is 2 * reg * W).

Each data loss is one fused gate (``fused.SoftmaxCrossEntropy``, ``fused.MulticlassHinge``): the
formulas are vectorized there, and ``*_loop`` versions here spell them out for the tests.

At the edges (the gates and the loops alike):
- An empty batch (N = 0) is a ShapeError naming the loss: a mean over no examples is undefined
  (so is ``Tensor.mean()`` over no elements; a sum over none is 0). So are scores with no class.
- Infinite scores take their limits, and the gradient is the limit of the gradient, so value and
  gradient agree. Softmax, for one row: s_y = +inf, the others finite or -inf: loss 0, gradient
  0 (the model is right beyond doubt); +inf on one wrong class j: loss +inf, gradient +1 at j and
  -1 at y; s_y = -inf: loss +inf, gradient p_j at each j and p_y - 1 = -1 at y. Hinge: s_y = +inf
  makes every margin -inf: loss 0, gradient 0; a +inf wrong score or s_y = -inf makes a margin
  +inf: loss +inf, and that term's gradient is the usual +1 at j, -1 at y.
- Undefined rows: a NaN score, an inf - inf (softmax: two or more +inf in a row, or every score
  -inf; hinge: a margin of two infinities of the same sign), make the loss NaN and that row's
  gradient NaN; the other rows' gradients are unchanged.
(Gradients are of the mean: each row's is divided by N.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from chainrule.engine import fused, shaping
from chainrule.engine.backend import is_array
from chainrule.engine.tensor import Tensor, apply

LossFn = Callable[[Tensor, Any], Tensor]


def softmax_loss(scores: Tensor, y: Any) -> Tensor:
    """Mean softmax cross-entropy. scores: (N, K) Tensor, y: (N,) ints in [0, K). Returns 0-d.

    Raises ShapeError for an empty batch or mismatched shapes, DataError for bad labels. Infinite
    and NaN scores: see the module docstring.
    """
    return apply(fused.SoftmaxCrossEntropy(_labels(y)), scores)


def svm_loss(scores: Tensor, y: Any) -> Tensor:
    """Mean multiclass hinge loss, margin 1. scores: (N, K) Tensor, y: (N,) ints. Returns 0-d.

    Raises ShapeError for an empty batch or mismatched shapes, DataError for bad labels. Infinite
    and NaN scores: see the module docstring.
    """
    return apply(fused.MulticlassHinge(_labels(y)), scores)


def _labels(y: Any) -> Any:
    """y as an array: NumPy's for lists, an array of any module as it is (the gate moves NumPy
    labels to the scores' device)."""
    return y if is_array(y) else np.asarray(y)


def l2_penalty(weights: Iterable[Tensor], reg: float) -> Tensor:
    """reg * sum(W**2) over the given weight tensors (pass weights only, not biases). 0-d."""
    total: Tensor | None = None
    for W in weights:
        term = apply(shaping.SumOfSquares(), W)
        total = term if total is None else total + term
    if total is None:
        return Tensor(0.0)
    return total * reg


def _loop_start(
    scores: np.ndarray, y: np.ndarray, by: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What both loop versions start from: scores (N, K) as float64, the checked labels (N,)
    and dscores zeros (N, K). Raises what the gates raise, naming ``by``."""
    scores = np.asarray(scores, dtype=np.float64)
    return scores, fused.check_labels(scores, y, by), np.zeros_like(scores)


def softmax_loss_loop(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """The softmax loss and dscores with explicit loops, for checking the gate.

    scores: (N, K), y: (N,). Returns the mean loss and dscores (N, K) in float64. The edge cases
    are spelled out as the module docstring states them; raises what the gate raises.
    """
    scores, y, dscores = _loop_start(scores, y, "softmax_loss_loop")
    n, k = scores.shape
    loss = 0.0
    for i in range(n):
        row = scores[i]
        infinite = [j for j in range(k) if row[j] == np.inf]
        if np.isnan(row).any() or len(infinite) > 1:  # undefined
            loss += np.nan
            dscores[i] = np.nan
            continue
        if infinite:  # the softmax is onehot(j): the loss 0 if j is the label, else +inf
            j = infinite[0]
            loss += 0.0 if j == y[i] else np.inf
            dscores[i, j] += 1 / n
            dscores[i, y[i]] -= 1 / n
            continue
        with np.errstate(invalid="ignore", over="ignore"):  # as the gate: only -inf: NaN
            row = row - np.max(row)
        total = sum(np.exp(row[j]) for j in range(k))
        loss += -row[y[i]] + np.log(total)
        for j in range(k):
            p = np.exp(row[j]) / total
            dscores[i, j] += (p - (j == y[i])) / n
    return loss / n, dscores


def svm_loss_loop(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """The multiclass hinge loss (margin 1) and dscores with explicit loops, for checking the
    gate. scores: (N, K), y: (N,); returns the mean loss and dscores (N, K), in float64. Its edge
    cases (NaN and infinite scores) are the module docstring's; raises what the gate raises."""
    scores, y, dscores = _loop_start(scores, y, "svm_loss_loop")
    n, k = scores.shape
    loss = 0.0
    for i in range(n):
        for j in range(k):
            if j == y[i]:
                continue
            with np.errstate(invalid="ignore", over="ignore"):  # as the gate: inf - inf, NaN
                margin = scores[i, j] - scores[i, y[i]] + 1
            if np.isnan(margin):  # undefined: the whole row's gradient with it
                loss += np.nan
                dscores[i] = np.nan
                break
            if margin > 0:
                loss += margin
                dscores[i, j] += 1 / n
                dscores[i, y[i]] -= 1 / n
    return loss / n, dscores


LOSSES: dict[str, LossFn] = {"softmax": softmax_loss, "svm": svm_loss}
