"""The two losses spelled with the array API standard alone, for every array module but NumPy.

``fused.SoftmaxCrossEntropy`` and ``fused.MulticlassHinge`` call these for CuPy and
array_api_strict arrays (NumPy keeps its faster flat-index spelling there). The values are the
same, edge cases included (``nn.losses`` states them): one-hot masks replace the gathers, and the
limits of infinite scores are chosen with ``where`` on every row instead of a branch taken when
the loss is not finite, so nothing here reads a value back to the host, and constants are made on
the device (``full``, never ``asarray`` of a number, which copies from the host): on a GPU the step
has no sync and no copy and can be captured into a CUDA graph.
"""

from __future__ import annotations

import math
from typing import Any

from chainrule.engine.arrays import accumulator
from chainrule.engine.backend import namespace

Array = Any  # an array API array (CuPy, array_api_strict)


def labels_like(y: Any, scores: Array) -> Array:
    """Labels y (N,) (a NumPy array or a list, or already in scores' module) as an integer
    array in ``scores``' module and device."""
    xp = namespace(scores)
    if not isinstance(y, (list, tuple)) and namespace(y) is xp:
        return y
    return xp.asarray(y)


def _one_hot(y: Array, k: int) -> Array:
    """(N, K) booleans, True at each row's label (y: (N,) integers in [0, K))."""
    xp = namespace(y)
    return y[:, None] == xp.arange(k, dtype=y.dtype)


def softmax_cross_entropy(scores: Array, y: Array) -> tuple[Array, Array, Array]:
    """scores (N, K), labels y (N,) -> (the mean loss 0-d in scores' dtype, the probabilities
    (N, K) in the accumulator dtype, the one-hot labels (N, K) bool).

    log softmax(s)_y = (s_y - max) - log1p(rest), rest = the row's sum of e^(s_j - max) without
    the max's own 1: log1p keeps the digits of a confident prediction, as the NumPy spelling.
    """
    xp = namespace(scores)
    n, k = scores.shape
    dtype = scores.dtype
    acc = accumulator(dtype)
    s = xp.astype(scores, acc, copy=False)
    zero, one, nan, inf = (xp.full((), v, dtype=acc) for v in (0.0, 1.0, math.nan, math.inf))
    onehot = _one_hot(y, k)
    is_top = _one_hot(xp.argmax(s, axis=1), k)  # the first maximum of each row
    shifted = s - xp.max(s, axis=1, keepdims=True)
    shifted_y = xp.sum(xp.where(onehot, shifted, zero), axis=1)
    e = xp.exp(shifted)
    rest = xp.sum(xp.where(is_top, zero, e), axis=1)
    probs = xp.where(is_top, one, e) * (1 / (1 + rest))[:, None]
    shifted_y = shifted_y - xp.log1p(rest)
    # Rows whose maximum is +inf, where s - max is inf - inf: one +inf is the softmax
    # onehot(its class), two or more are undefined (NaN).
    infinities = xp.sum(xp.astype(s == inf, xp.int32), axis=1)
    special, alone = infinities >= 1, infinities == 1
    on_label = xp.any(onehot & is_top, axis=1)
    limit = xp.where(alone, xp.where(on_label, zero, -inf), nan)
    shifted_y = xp.where(special, limit, shifted_y)
    top_probs = xp.where(alone[:, None], xp.astype(is_top, acc), nan)
    probs = xp.where(special[:, None], top_probs, probs)
    probs = xp.where(xp.isnan(shifted_y)[:, None], nan, probs)
    loss = -xp.sum(shifted_y) / n
    return xp.astype(loss, dtype), probs, onehot


def softmax_backward(probs: Array, onehot: Array, dout: Array) -> Array:
    """dscores (N, K) = (probs - onehot(y)) * dout / N, in dout's dtype (dout: 0-d)."""
    xp = namespace(probs)
    n = probs.shape[0]
    dscores = probs - xp.astype(onehot, probs.dtype)
    dscores = dscores * (xp.astype(dout, probs.dtype) / n)
    return xp.astype(dscores, dout.dtype, copy=False)


def hinge(scores: Array, y: Array) -> tuple[Array, Array, Array, Array]:
    """scores (N, K), labels y (N,) -> (the mean multiclass hinge loss 0-d in scores' dtype,
    positive margins (N, K) bool, one-hot labels (N, K) bool, undefined rows (N,) bool)."""
    xp = namespace(scores)
    n, k = scores.shape
    dtype = scores.dtype
    acc = accumulator(dtype)
    s = xp.astype(scores, acc, copy=False)
    zero = xp.zeros((), dtype=acc)
    onehot = _one_hot(y, k)
    s_y = xp.sum(xp.where(onehot, s, zero), axis=1, keepdims=True)
    margins = xp.where(onehot, zero, s - s_y + 1)
    margins = xp.maximum(margins, zero)  # (NaN stays NaN, as NumPy's maximum)
    undefined = xp.any(xp.isnan(margins), axis=1)
    loss = xp.sum(margins) / n
    return xp.astype(loss, dtype), margins > 0, onehot, undefined


def hinge_backward(positive: Array, onehot: Array, undefined: Array, dout: Array) -> Array:
    """dscores (N, K): +1 per positive margin at j, minus their count at y, times dout / N;
    NaN on undefined rows. In dout's dtype (dout: 0-d)."""
    xp = namespace(positive)
    n = positive.shape[0]
    acc = accumulator(dout.dtype)
    counts = xp.astype(positive, acc)
    dscores = xp.where(onehot, -xp.sum(counts, axis=1, keepdims=True), counts)
    dscores = dscores * (xp.astype(dout, acc) / n)
    dscores = xp.where(undefined[:, None], xp.full((), math.nan, dtype=acc), dscores)
    return xp.astype(dscores, dout.dtype, copy=False)
