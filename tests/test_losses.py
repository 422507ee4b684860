"""Losses: hand-computed cases, the loop versions, finite differences, and bad labels."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule.engine.tensor import Tensor
from chainrule.nn.losses import (
    l2_penalty,
    softmax_loss,
    softmax_loss_loop,
    svm_loss,
    svm_loss_loop,
)

# The CS231n worked example: three classes (cat, car, frog), three images.
SCORES = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
LABELS = np.array([0, 1, 2])


def test_svm_loss_hand_computed():
    # per image: max(0, 5.1-3.2+1) + max(0, -1.7-3.2+1) = 2.9; 0; 6.3+6.6 = 12.9
    loss = svm_loss(Tensor(SCORES), LABELS)
    assert loss.ndim == 0
    assert loss.item() == pytest.approx((2.9 + 0 + 12.9) / 3)


def test_softmax_loss_hand_computed():
    row = np.array([3.2, 5.1, -1.7])
    expected0 = -np.log(np.exp(3.2) / np.exp(row).sum())
    assert expected0 == pytest.approx(2.04, abs=0.005)  # the lecture's 2.04 for the cat image
    loss = softmax_loss(Tensor(SCORES[:1]), LABELS[:1])
    assert loss.item() == pytest.approx(expected0)
    # uniform scores: loss is ln K
    assert softmax_loss(Tensor(np.zeros((4, 10))), np.arange(4)).item() == pytest.approx(np.log(10))


def test_svm_loss_with_equal_scores_is_k_minus_1():
    assert svm_loss(Tensor(np.zeros((5, 10))), np.arange(5)).item() == pytest.approx(9.0)


def test_softmax_is_numerically_stable():
    scores = Tensor(np.array([[1000.0, 0.0, -1000.0]]), requires_grad=True)
    loss = softmax_loss(scores, np.array([0]))
    assert loss.item() == pytest.approx(0.0)
    loss.backward()
    assert np.all(np.isfinite(scores.grad))
    assert softmax_loss(Tensor(np.array([[1000.0, 0.0]])), np.array([1])).item() == 1000.0


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 6), k=st.integers(2, 6), seed=st.integers(0, 2**32 - 1))
def test_vectorized_losses_match_the_loops_and_finite_differences(n, k, seed):
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((n, k)) * 3
    y = rng.integers(0, k, size=n)
    unsaturated = scores / 3  # see below
    for fused, loop in ((softmax_loss, softmax_loss_loop), (svm_loss, svm_loss_loop)):
        s = Tensor(scores.copy(), requires_grad=True)
        out = fused(s, y)
        out.backward()
        expected_loss, expected_grad = loop(scores, y)
        assert out.item() == pytest.approx(expected_loss, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(s.grad, expected_grad, rtol=1e-12, atol=1e-15)
    # A centred difference resolves a gradient only down to about eps * |loss| / h ~ 1e-11, so a
    # relative check to 1e-7 needs no probability much below 1e-3: scores of unit scale.
    report = cr.gradcheck(lambda s: softmax_loss(s, y), [unsaturated])
    assert report.ok and report.max_rel_error < 1e-7, report.table()
    margins = scores - scores[np.arange(n), y][:, None] + 1
    margins[np.arange(n), y] = 10  # the correct class is no kink
    if np.abs(margins).min() > 1e-3:  # away from the hinge's kinks
        report = cr.gradcheck(lambda s: svm_loss(s, y), [scores])
        assert report.ok and report.max_rel_error < 1e-7, report.table()


def test_svm_kink_contributes_no_gradient():
    scores = Tensor(np.array([[1.0, 0.0, 2.0]]), requires_grad=True)  # class 1 exactly at margin
    loss = svm_loss(scores, np.array([0]))
    assert loss.item() == pytest.approx(2.0)  # only class 2: 2 - 1 + 1
    loss.backward()
    np.testing.assert_array_equal(scores.grad, [[-1.0, 0.0, 1.0]])


def test_l2_penalty_is_reg_times_sum_of_squares():
    W1 = Tensor(np.array([[1.0, -2.0]]), requires_grad=True)
    W2 = Tensor(np.array([[3.0]]), requires_grad=True)
    penalty = l2_penalty([W1, W2], reg=0.5)
    assert penalty.item() == pytest.approx(0.5 * (1 + 4 + 9))
    penalty.backward()
    np.testing.assert_allclose(W1.grad, 2 * 0.5 * W1.data)
    np.testing.assert_allclose(W2.grad, 2 * 0.5 * W2.data)
    assert l2_penalty([], 1.0).item() == 0.0
    rng = np.random.default_rng(0)
    assert cr.gradcheck(lambda w: l2_penalty([w], 0.3), [rng.standard_normal((3, 4))]).ok


def test_losses_keep_float32():
    scores = Tensor(np.zeros((2, 3), np.float32), requires_grad=True)
    for fn in (softmax_loss, svm_loss):
        loss = fn(scores, np.array([0, 1]))
        assert loss.dtype == np.float32
        loss.backward()
        assert scores.grad.dtype == np.float32
        scores.zero_grad()


@pytest.mark.parametrize("fn", [softmax_loss, svm_loss])
def test_bad_labels_are_named(fn):
    scores = Tensor(np.zeros((2, 3)))
    with pytest.raises(cr.DataError, match=r"labels must lie in \[0, 2\] for 3 classes"):
        fn(scores, np.array([0, 3]))
    with pytest.raises(cr.DataError, match=r"labels must lie in"):
        fn(scores, np.array([-1, 0]))
    with pytest.raises(cr.DataError, match="labels must be integers"):
        fn(scores, np.array([0.0, 1.0]))
    with pytest.raises(cr.ShapeError, match="vector of N = 2 integers"):
        fn(scores, np.array([0, 1, 2]))
    with pytest.raises(cr.ShapeError, match=r"scores must be \(N, K\)"):
        fn(Tensor(np.zeros(3)), np.array([0]))


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.uint32, np.int64, np.uint64])
def test_softmax_loss_takes_labels_of_any_integer_type(dtype):
    scores = np.array([[1.0, 2.0, 0.5], [0.1, -1.0, 3.0]])
    y = np.array([1, 2], dtype=dtype)
    expected, _ = softmax_loss_loop(scores, np.array([1, 2]))
    assert softmax_loss(Tensor(scores), y).item() == pytest.approx(expected, rel=1e-12)


# --- the edges: empty batches, infinite and NaN scores (losses.py's docstring) -----------------

LOOPS = {"softmax": (softmax_loss, softmax_loss_loop), "svm": (svm_loss, svm_loss_loop)}


@pytest.mark.parametrize("loss", ["softmax", "svm"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_an_empty_batch_is_a_clear_error(loss, dtype):
    fused, loop = LOOPS[loss]
    gate = {"softmax": "softmax_cross_entropy", "svm": "multiclass_hinge"}[loss]
    empty = np.zeros((0, 3), dtype)
    with pytest.raises(
        cr.ShapeError, match=rf"{gate}: the batch is empty \(scores of shape \(0, 3\)\)"
    ):
        fused(Tensor(empty, requires_grad=True), np.zeros(0, np.int64))
    with pytest.raises(cr.ShapeError, match=rf"{loss}_loss_loop: the batch is empty"):
        loop(empty, np.zeros(0, np.int64))
    with pytest.raises(cr.ShapeError, match="no classes"):
        fused(Tensor(np.zeros((2, 0), dtype)), np.zeros(2, np.int64))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_a_mean_over_nothing_is_a_clear_error_and_a_sum_over_nothing_is_zero(dtype):
    with pytest.raises(cr.ShapeError, match=r"mean: no elements to average over \(shape \(0,\)"):
        Tensor(np.zeros(0, dtype)).mean()
    with pytest.raises(cr.ShapeError, match="no elements"):
        Tensor(np.zeros((0, 3), dtype)).mean(axis=0)
    with pytest.raises(cr.ShapeError, match="no elements"):
        Tensor(np.zeros((3, 0), dtype)).mean(axis=1)
    assert Tensor(np.zeros((0, 3), dtype)).mean(axis=1).shape == (0,)  # no mean was taken
    x = Tensor(np.zeros((0, 3), dtype), requires_grad=True)
    total = x.sum()
    assert total.item() == 0 and total.dtype == dtype
    total.backward()
    assert x.grad.shape == (0, 3)


INF, NAN = np.inf, np.nan
# (scores of one row, label, softmax loss, softmax dscores, hinge loss, hinge dscores), N = 1
EDGE_ROWS = [
    ([INF, 1.0, 2.0], 0, 0.0, [0, 0, 0], 0.0, [0, 0, 0]),
    ([INF, -INF, 2.0], 0, 0.0, [0, 0, 0], 0.0, [0, 0, 0]),
    ([1.0, INF, 2.0], 0, INF, [-1, 1, 0], INF, [-2, 1, 1]),
    ([1.0, INF, -INF], 0, INF, [-1, 1, 0], INF, [-1, 1, 0]),
    ([1.0, INF, INF], 0, NAN, [NAN] * 3, INF, [-2, 1, 1]),  # hinge: inf - 1 + 1, twice
    ([INF, INF, 2.0], 0, NAN, [NAN] * 3, NAN, [NAN] * 3),  # inf - inf
    ([-INF, 1.0, 2.0], 0, INF, "probs", INF, [-2, 1, 1]),
    ([1.0, -INF, 2.0], 0, "finite", "probs", 2.0, [-1, 0, 1]),
    ([-INF, -INF, -INF], 0, NAN, [NAN] * 3, NAN, [NAN] * 3),
    ([NAN, 1.0, 2.0], 0, NAN, [NAN] * 3, NAN, [NAN] * 3),
    ([1.0, NAN, 2.0], 0, NAN, [NAN] * 3, NAN, [NAN] * 3),
]


def _softmax_row(row: list, label: int) -> tuple[float, np.ndarray]:
    """-log softmax and its gradient for a row with no +inf and no NaN, by the formula."""
    s = np.array(row)
    e = np.exp(s - s[np.isfinite(s)].max())
    p = e / e.sum()
    with np.errstate(divide="ignore"):  # p[label] = 0: the loss is +inf
        return float(-np.log(p[label])), p - np.eye(len(s))[label]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", EDGE_ROWS, ids=str)
def test_infinite_and_nan_scores_give_the_limits_value_and_gradient_alike(case, dtype):
    row, label, soft_loss, soft_grad, hinge_loss, hinge_grad = case
    if soft_grad == "probs":
        value, grad = _softmax_row(row, label)
        soft_loss = value if soft_loss == "finite" else soft_loss
        soft_grad = grad
    ordinary = [0.5, -1.0, 2.0]  # a second row, whose gradient nothing may disturb
    scores = np.array([row, ordinary], dtype)
    y = np.array([label, 2])
    for loss, want_loss, want_grad in (
        ("softmax", soft_loss, soft_grad),
        ("svm", hinge_loss, hinge_grad),
    ):
        fused, loop = LOOPS[loss]
        ordinary_loss, ordinary_grad = loop(np.array([ordinary]), np.array([2]))
        t = Tensor(scores.copy(), requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the limits come without warnings
            out = fused(t, y)
            out.backward()
        loop_loss, loop_grad = loop(scores, y)
        want = (want_loss + ordinary_loss) / 2
        tol = {"rtol": 1e-6 if dtype == np.float32 else 1e-12}
        np.testing.assert_allclose(out.item(), want, err_msg=loss, **tol)
        np.testing.assert_allclose(loop_loss, want, err_msg=loss, **tol)
        expected = np.array([np.array(want_grad, float) / 2, ordinary_grad[0] / 2])
        np.testing.assert_allclose(t.grad, expected, atol=1e-7, err_msg=loss, **tol)
        np.testing.assert_allclose(loop_grad, expected, atol=1e-7, err_msg=loss, **tol)
        assert np.isnan(out.item()) == np.isnan(t.grad[0]).all()  # value and gradient agree


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 5),
    k=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
    specials=st.lists(st.sampled_from([INF, -INF, NAN, 1e308, -1e308]), max_size=6),
)
def test_the_loops_agree_with_the_gates_at_the_edges_too(n, k, seed, specials):
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((n, k)) * 3
    flat = scores.reshape(-1)
    flat[rng.integers(0, n * k, size=len(specials))] = specials
    y = rng.integers(0, k, size=n)
    for fused, loop in LOOPS.values():
        t = Tensor(scores.copy(), requires_grad=True)
        with np.errstate(over="ignore"):  # 1e308 + 1e308: a loss past the float range, inf
            out = fused(t, y)
            out.backward()
            want_loss, want_grad = loop(scores, y)
        np.testing.assert_allclose(out.item(), want_loss, rtol=1e-12)
        np.testing.assert_allclose(t.grad, want_grad, rtol=1e-12, atol=1e-15)
