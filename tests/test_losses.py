"""Losses: hand-computed cases, the loop versions, finite differences, and bad labels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule.losses import (
    l2_penalty,
    softmax_loss,
    softmax_loss_loop,
    svm_loss,
    svm_loss_loop,
)
from chainrule.tensor import Tensor

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
