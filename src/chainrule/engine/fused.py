"""The fused gates of a training step: a dense layer, a dense layer with its ReLU, and the two
losses with their gradients in closed form.

Each does in one gate what the textbook gates would do in several (matmul, transpose, add, relu;
exp, sum, log, a gather), with the same values: fewer passes over (N, M) memory and fewer
temporaries. Each is gradient-checked on its own like any gate; the contract is
``gates.Gate``'s. The losses' conventions, edge cases included, are stated in ``nn.losses``.

The losses are written twice, on purpose: for NumPy with flat-index gathers and in-place ufuncs
(``out=``), several times faster on a small batch than the portable spelling; for every other
array module (CuPy, array_api_strict) in ``portable``, with one-hot masks and ``where`` and no
branch on a value, so a GPU step has no host sync and can be captured into a CUDA graph. The
tests hold the two to the same numbers.
"""

from __future__ import annotations

import numpy as np

from chainrule.engine import portable
from chainrule.engine.arrays import accumulator, batch_sum, relu, row_sums
from chainrule.engine.backend import namespace, on_gpu, to_numpy
from chainrule.engine.cublas import matmul
from chainrule.engine.errors import DataError, ShapeError
from chainrule.engine.gates import Gate

Array = np.ndarray  # (or any array API array; see the losses' ``portable`` branch)


class Affine(Gate):
    """out = x @ W.T + b: a fully connected layer in one gate.

    x: (N, D), W: (M, D) stored [out x in] as the maths writes it, b: (M,). out: (N, M).
    dx = dout @ W (N, D); dW = dout.T @ x (M, D); db = dout summed over the batch (M,). One gate
    instead of matmul, transpose and add saves two passes over (N, M) memory. Raises ShapeError
    for shapes that do not fit.
    """

    name = "affine"
    saved_inputs = (0, 1)  # x and W; of b only its gradient's shape

    def forward(self, x: Array, W: Array, b: Array) -> Array:
        if x.ndim != 2 or W.ndim != 2 or b.ndim != 1:
            raise ShapeError(
                f"affine: expected x (N, D), W (M, D) and b (M,), got shapes {x.shape}, "
                f"{W.shape} and {b.shape}"
            )
        if x.shape[1] != W.shape[1] or W.shape[0] != b.shape[0]:
            raise ShapeError(
                f"affine: x {x.shape}, W {W.shape} and b {b.shape} do not fit: expected x (N, D), "
                f"W (M, D), b (M,)"
            )
        self.x, self.W = x, W
        out = matmul(x, W.T)  # (x @ W.T; see cublas for the GPU's recorded step)
        out += b
        return out

    def backward(self, dout: Array) -> tuple[Array | None, Array | None, Array | None]:
        """dout: (N, M) -> dx (N, D), dW (M, D), db (M,); None for an input that needs none."""
        return self._grads(dout)

    def _grads(self, d: Array) -> tuple[Array | None, Array | None, Array | None]:
        dx = matmul(d, self.W) if self.needs(0) else None  # not for the data batch: a product
        dW = matmul(d.T, self.x) if self.needs(1) else None
        db = batch_sum(d) if self.needs(2) else None
        return dx, dW, db


class AffineReLU(Affine):
    """out = max(x @ W.T + b, 0): a hidden layer in one gate.

    Shapes as ``Affine``. The ReLU is applied in place on the affine output, and its mask
    (N, M booleans) is kept for backward, so the hidden layer costs one (N, M) float buffer
    instead of three. ReLU'(0) = 0 as in ``ReLU``.
    """

    name = "affine_relu"

    def forward(self, x: Array, W: Array, b: Array) -> Array:
        out = super().forward(x, W, b)
        # A maximum, not out *= mask: the product would turn a negative into -0.0 and -inf into
        # NaN, where ReLU gives +0.0 and the ReLU gate agrees.
        out = relu(out, out=out)
        self.mask = out > 0  # max(x, 0) > 0 exactly where x > 0 (NaN: neither)
        return out

    def backward(self, dout: Array) -> tuple[Array | None, Array | None, Array | None]:
        """dout: (N, M) -> dx (N, D), dW (M, D), db (M,), through the ReLU's mask."""
        # A new array, not dout in place: dout may be another gate's data.
        if isinstance(dout, np.ndarray):
            return self._grads(np.multiply(dout, self.mask))
        # (array API modules do not multiply floats by booleans)
        return self._grads(dout * namespace(dout).astype(self.mask, dout.dtype))


def check_labels(scores: Array, y: Array, name: str = "loss") -> Array:
    """Validate a batch for a loss named ``name``: scores (N, K) with N, K >= 1, and labels y,
    N integers in [0, K). Returns y as an array.

    Raises ShapeError for shapes, an empty batch (the mean over no examples is undefined) or no
    classes; DataError for labels that are not integers or out of range.
    """
    if scores.ndim != 2:
        raise ShapeError(f"{name}: scores must be (N, K), got shape {scores.shape}")
    n, k = scores.shape
    if n == 0:
        raise ShapeError(
            f"{name}: the batch is empty (scores of shape {scores.shape}); the loss is a mean "
            "over the batch and needs at least one example"
        )
    if k == 0:
        raise ShapeError(f"{name}: the scores have no classes (shape {scores.shape})")
    y = np.asarray(y) if isinstance(scores, np.ndarray) else portable.labels_like(y, scores)
    if y.ndim != 1 or y.shape[0] != n:
        raise ShapeError(
            f"{name}: labels must be a vector of N = {n} integers, got shape {y.shape}"
        )
    if not isinstance(y, np.ndarray):
        if not namespace(y).isdtype(y.dtype, "integral"):
            raise DataError(f"{name}: labels must be integers, got dtype {y.dtype}")
        if on_gpu(y):  # reading values would sync the GPU each step: fit checks them once
            return y
    elif y.dtype.kind not in "iu":  # (np.issubdtype says the same, slower: runs every step)
        raise DataError(f"{name}: labels must be integers, got dtype {y.dtype}")
    low, high = (
        (y.min(), y.max()) if isinstance(y, np.ndarray) else (to_numpy(y).min(), to_numpy(y).max())
    )
    if low < 0 or high >= k:
        raise DataError(
            f"{name}: labels must lie in [0, {k - 1}] for {k} classes, "
            f"got values from {low} to {high}"
        )
    return y


class _Loss(Gate):
    """A loss gate: its labels y (N,) are given when it is made, not as an input; it keeps no
    input array (its backward needs only what its forward worked out)."""

    saved_inputs = ()

    def __init__(self, y: Array) -> None:
        self.y = y


class SoftmaxCrossEntropy(_Loss):
    """out = mean over the batch of -log softmax(scores)[y]: softmax and its loss in one gate.

    scores: (N, K), labels y: (N,) given to the constructor (they get no gradient). out: 0-d.
    Stable: the row maximum is subtracted before exp. The gradient has the famous simple form
    dscores = (softmax(scores) - onehot(y)) / N, so the cache is just the probabilities.
    Infinite scores take their limits, value and gradient alike (see ``chainrule.nn.losses``): a
    row whose maximum is +inf has the softmax onehot(that class) when it is its only +inf, and is
    NaN when it has two or more. An empty batch is a ShapeError.
    """

    name = "softmax_cross_entropy"

    def forward(self, scores: Array) -> Array:
        """scores: (N, K) -> the mean loss, 0-d, in scores' dtype. Raises as ``check_labels``."""
        y = check_labels(scores, self.y, self.name)
        if not isinstance(scores, np.ndarray):
            loss, self.probs, self.onehot = portable.softmax_cross_entropy(scores, y)
            return loss
        n, k = scores.shape
        self.dtype = scores.dtype
        scores = scores.astype(accumulator(scores.dtype), copy=False)  # float16: in float32
        # Entries picked per row (the max, the label) by their index in the flattened array:
        # on a batch of 128 x 10, 2-D fancy indexing costs several times the arithmetic.
        starts = np.arange(0, n * k, k, dtype=np.intp)
        top = scores.argmax(axis=1)
        top += starts
        # inf - inf is NaN (settled below); a finite difference past the float range is -inf,
        # whose exp 0 is the exact limit: neither is worth a warning
        with np.errstate(invalid="ignore", over="ignore"):
            shifted = scores - scores.reshape(-1)[top][:, None]
        label = y.astype(np.intp, copy=False) + starts  # (uint64 + int64 would be float64)
        shifted_y = shifted.reshape(-1)[label]
        exp = np.exp(shifted, out=shifted)
        flat = exp.reshape(-1)
        # log sum_j e^(s_j - max) = log(1 + rest), rest = the sum without the max's own 1.
        # log1p keeps the digits of a confident prediction, where rest is tiny.
        flat[top] = 0
        rest = row_sums(exp)
        flat[top] = 1
        shifted_y -= np.log1p(rest)
        rest += 1
        exp *= np.reciprocal(rest, out=rest)[:, None]  # N divisions, not N x K
        self.probs, self.label = exp, label
        loss = -shifted_y.sum() / n
        if not np.isfinite(loss):  # a non-finite score somewhere (finite ones never get here)
            loss = self._non_finite_rows(scores, top, shifted_y)
        return np.asarray(loss).astype(self.dtype, copy=False)

    def _non_finite_rows(self, scores: Array, top: Array, shifted_y: Array) -> Array:
        """Limits where s - max was inf - inf = NaN. A row whose maximum is +inf, at class j,
        alone: the softmax is onehot(j) and the loss 0 (j = y) or +inf (j != y). Two or more
        +inf, a NaN, or only -inf: undefined, NaN loss and NaN probabilities (the last step
        would otherwise leave a one-class row's probability at 1). Returns the batch's loss."""
        n, k = scores.shape
        rows = np.flatnonzero(scores.reshape(-1)[top] == np.inf)
        if rows.size:
            j = top[rows] - rows * k  # the column of each row's (first) +inf
            alone = np.count_nonzero(scores[rows] == np.inf, axis=1) == 1
            on_label = self.label[rows] == top[rows]
            shifted_y[rows] = np.where(alone, np.where(on_label, 0, -np.inf), np.nan)
            self.probs[rows] = np.arange(k) == j[:, None]
        self.probs[np.isnan(shifted_y)] = np.nan
        return -shifted_y.sum() / n

    def backward(self, dout: Array) -> tuple[Array]:
        """dout: 0-d -> (dscores (N, K),) = ((probs - onehot(y)) * dout / N,)."""
        if not isinstance(dout, np.ndarray):
            return (portable.softmax_backward(self.probs, self.onehot, dout),)
        n = self.probs.shape[0]
        # The probabilities are needed by no one else (a gate serves one call): reuse them.
        dscores, self.probs = self.probs, None
        dscores.reshape(-1)[self.label] -= 1  # one label per row: no index repeats
        dscores *= dout.astype(dscores.dtype, copy=False) / n  # (float16: 1/n in float32)
        return (dscores.astype(self.dtype, copy=False),)


class MulticlassHinge(_Loss):
    """out = mean over the batch of sum over j != y of max(0, s_j - s_y + 1): the SVM loss.

    scores: (N, K), labels y: (N,). out: 0-d. Margin 1. Each positive margin adds +1 to ds_j and
    -1 to ds_y. At a kink (a margin of exactly 0) the term contributes no gradient, as ReLU.
    Infinite margins are limits (+inf: a positive margin; -inf: 0); a NaN margin (inf - inf, or
    a NaN score) makes the loss NaN and its row's gradient NaN (see ``chainrule.nn.losses``). An
    empty batch is a ShapeError.
    """

    name = "multiclass_hinge"

    def forward(self, scores: Array) -> Array:
        """scores: (N, K) -> the mean loss, 0-d, in scores' dtype. Raises as ``check_labels``."""
        y = check_labels(scores, self.y, self.name)
        if not isinstance(scores, np.ndarray):
            loss, self.positive, self.onehot, self.undefined = portable.hinge(scores, y)
            return loss
        n = scores.shape[0]
        self.dtype = scores.dtype
        scores = scores.astype(accumulator(scores.dtype), copy=False)  # float16: in float32
        rows = np.arange(n)
        with np.errstate(invalid="ignore", over="ignore"):  # +-inf scores: limits, or NaN
            margins = scores - scores[rows, y][:, None] + 1  # (the sum below may still warn)
        margins[rows, y] = 0
        relu(margins, out=margins)
        self.positive, self.y = margins > 0, y
        total = margins.sum()
        # NaN > 0 is False: without this, a NaN loss would come with a finite gradient
        self.undefined = np.isnan(margins).any(axis=1) if np.isnan(total) else None
        return np.asarray(total / n).astype(self.dtype, copy=False)

    def backward(self, dout: Array) -> tuple[Array]:
        """dout: 0-d -> (dscores (N, K),): +1 per positive margin at j, minus their count at y."""
        if not isinstance(dout, np.ndarray):
            grads = portable.hinge_backward(self.positive, self.onehot, self.undefined, dout)
            return (grads,)
        n = self.positive.shape[0]
        acc = accumulator(self.dtype)
        dscores = self.positive.astype(acc)
        dscores[np.arange(n), self.y] = -dscores.sum(axis=1)
        dscores *= dout.astype(acc, copy=False) / n  # (float16: 1/n in float32)
        if self.undefined is not None:
            dscores[self.undefined] = np.nan
        return (dscores.astype(self.dtype, copy=False),)
