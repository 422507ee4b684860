"""Every gate against finite differences (float64), over random shapes and values, plus kinks."""

from __future__ import annotations

import decimal
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule.engine import arrays, fused, gates, shaping
from chainrule.engine.tensor import Tensor

TOL = 1e-7
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)
seeds = st.integers(0, 2**32 - 1)


def away_from_zero(
    rng: np.random.Generator, shape: tuple[int, ...], low: float = 0.3
) -> np.ndarray:
    """Random values with |v| in [low, 2]: away from the kinks of relu, max and the pole of 1/x."""
    return rng.uniform(low, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def check(f, *inputs, **kwargs) -> cr.GradcheckReport:
    report = cr.gradcheck(f, inputs, **kwargs)
    assert report.ok, report.table()
    assert report.max_rel_error < TOL
    return report


def broadcast_partner(draw, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts against ``shape``: some axes set to 1, some leading ones dropped."""
    drop = draw(st.integers(0, len(shape)))
    partner = list(shape[drop:])
    for i in range(len(partner)):
        if draw(st.booleans()):
            partner[i] = 1
    return tuple(partner)


@st.composite
def broadcast_pair(draw):
    shape = draw(shapes)
    other = broadcast_partner(draw, shape)
    return (shape, other) if draw(st.booleans()) else (other, shape)


@SETTINGS
@given(pair=broadcast_pair(), seed=seeds)
def test_binary_gates_with_broadcasting(pair, seed):
    rng = np.random.default_rng(seed)
    a, b = away_from_zero(rng, pair[0]), away_from_zero(rng, pair[1])
    check(lambda x, y: x + y, a, b, rng=rng)
    check(lambda x, y: x - y, a, b, rng=rng)
    check(lambda x, y: x * y, a, b, rng=rng)
    check(lambda x, y: x / y, a, b, rng=rng)
    # maximum away from ties: shift one input so the two never come within 0.1 of each other
    close = np.abs(np.broadcast_to(a, np.broadcast_shapes(a.shape, b.shape)) - b) < 0.1
    if not close.any():
        check(cr.maximum, a, b, rng=rng)


@SETTINGS
@given(shape=shapes, seed=seeds)
def test_unary_gates(shape, seed):
    rng = np.random.default_rng(seed)
    x = away_from_zero(rng, shape)
    positive = np.abs(x)
    check(lambda t: -t, x, rng=rng)
    check(lambda t: t.exp(), x, rng=rng)
    check(lambda t: t.log(), positive, rng=rng)
    check(lambda t: t.relu(), x, rng=rng)
    check(lambda t: t.sigmoid(), x, rng=rng)
    check(lambda t: t.tanh(), x, rng=rng)
    check(lambda t: t**2, x, rng=rng)
    check(lambda t: t**3, x, rng=rng)
    check(lambda t: t**-1.5, positive, rng=rng)
    check(lambda t: t**0.5, positive, rng=rng)


@st.composite
def shape_and_axis(draw):
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple))
    axis = draw(
        st.one_of(
            st.none(),
            st.integers(-len(shape), len(shape) - 1),
            st.lists(
                st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape), unique=True
            ).map(tuple),
        )
    )
    return shape, axis


@SETTINGS
@given(sa=shape_and_axis(), keepdims=st.booleans(), seed=seeds)
def test_sum_and_mean(sa, keepdims, seed):
    shape, axis = sa
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    check(lambda t: t.sum(axis=axis, keepdims=keepdims), x, rng=rng)
    check(lambda t: t.mean(axis=axis, keepdims=keepdims), x, rng=rng)
    np.testing.assert_allclose(
        Tensor(x).mean(axis=axis, keepdims=keepdims).data, x.mean(axis=axis, keepdims=keepdims)
    )


@SETTINGS
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple), seed=seeds)
def test_reshape_and_transpose(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    check(lambda t: t.reshape(-1), x, rng=rng)
    check(lambda t: t.reshape(int(np.prod(shape)), 1), x, rng=rng)
    check(lambda t: t.T, x, rng=rng)
    axes = tuple(rng.permutation(len(shape)).tolist())
    check(lambda t: t.transpose(*axes), x, rng=rng)
    assert Tensor(x).transpose(*axes).shape == x.transpose(axes).shape


@SETTINGS
@given(n=st.integers(1, 5), d=st.integers(1, 5), m=st.integers(1, 5), seed=seeds)
def test_matmul_and_affine(n, d, m, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((n, d)), rng.standard_normal((d, m))
    check(lambda x, y: x @ y, a, b, rng=rng)
    check(lambda x, y: x @ y, a[0], b, rng=rng)  # vector @ matrix
    check(lambda x, y: x @ y, a, b[:, 0], rng=rng)  # matrix @ vector
    check(lambda x, y: x @ y, a[0], b[:, 0], rng=rng)  # dot product
    W, bias = rng.standard_normal((m, d)), rng.standard_normal(m)
    report = check(cr.affine, a, W, bias, rng=rng)
    assert [c.shape for c in report.inputs] == [(n, d), (m, d), (m,)]
    np.testing.assert_allclose(cr.affine(a, W, bias).data, a @ W.T + bias)
    # affine_relu away from its kink: push pre-activations away from 0
    pre = a @ W.T + bias
    if np.abs(pre).min() > 1e-3:
        check(cr.affine_relu, a, W, bias, rng=rng)
        np.testing.assert_allclose(cr.affine_relu(a, W, bias).data, np.maximum(pre, 0))


def test_batched_matmul_broadcasts():
    rng = np.random.default_rng(0)
    check(lambda x, y: x @ y, rng.standard_normal((3, 2, 4)), rng.standard_normal((4, 5)), rng=rng)


def test_composite_expression_gradcheck():
    rng = np.random.default_rng(1)
    x, W1, b1 = rng.standard_normal((4, 3)), rng.standard_normal((5, 3)), rng.standard_normal(5)

    def f(x, W1, b1):
        h = (x @ W1.T + b1).tanh()
        return (h * h).sum(axis=1).log().mean() + cr.maximum(h, 0.2).sigmoid().sum()

    check(f, x, W1, b1, rng=rng)


# --- kinks: the documented conventions ---------------------------------------------------------


def test_relu_derivative_is_zero_at_zero():
    x = Tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0])


def test_maximum_tie_sends_gradient_to_right_input():
    a = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = Tensor(np.array([1.0, 5.0, 0.0]), requires_grad=True)
    cr.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad, [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(b.grad, [1.0, 1.0, 0.0])
    # so max(x, 0) agrees with relu at 0
    x = Tensor(np.array(0.0), requires_grad=True)
    cr.maximum(x, 0.0).backward()
    assert x.grad == 0.0


def test_affine_relu_kink_is_zero():
    x = Tensor(np.array([[1.0, -1.0]]), requires_grad=True)
    W = Tensor(np.array([[1.0, 1.0]]), requires_grad=True)
    b = Tensor(np.array([0.0]), requires_grad=True)
    cr.affine_relu(x, W, b).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0.0, 0.0]])


# --- the contract ----------------------------------------------------------------------------


GATE_CASES = [
    (gates.Add(), (2, 3), (3,)),
    (gates.Sub(), (2, 3), (2, 1)),
    (gates.Mul(), (2, 3), (2, 3)),
    (gates.Div(), (2, 3), (1, 3)),
    (gates.Maximum(), (2, 3), (2, 3)),
    (shaping.MatMul(), (2, 3), (3, 4)),
    (fused.Affine(), (2, 3), (4, 3), (4,)),
    (fused.AffineReLU(), (2, 3), (4, 3), (4,)),
    (gates.Neg(), (2, 3)),
    (gates.Pow(2.0), (2, 3)),
    (gates.Exp(), (2, 3)),
    (gates.ReLU(), (2, 3)),
    (gates.Sigmoid(), (2, 3)),
    (gates.Tanh(), (2, 3)),
    (shaping.Sum(axis=1), (2, 3)),
    (shaping.Mean(axis=0, keepdims=True), (2, 3)),
    (shaping.Reshape((3, 2)), (2, 3)),
    (shaping.Transpose(), (2, 3)),
    (fused.SoftmaxCrossEntropy(np.array([0, 2])), (2, 3)),
    (fused.MulticlassHinge(np.array([0, 2])), (2, 3)),
]


@pytest.mark.parametrize("case", GATE_CASES, ids=lambda c: c[0].name)
def test_backward_returns_one_gradient_per_input_and_leaves_dout_alone(case):
    gate, *in_shapes = case
    rng = np.random.default_rng(0)
    xs = [np.abs(rng.standard_normal(s)) + 0.5 for s in in_shapes]
    out = gate.forward(*xs)
    dout = rng.standard_normal(out.shape)
    before = dout.copy()
    grads = gate.backward(dout)
    assert len(grads) == len(xs)
    for g, x in zip(grads, xs):
        assert g.shape == x.shape
    np.testing.assert_array_equal(dout, before)
    gate.release()
    assert not vars(gate)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gates_keep_their_inputs_dtype(dtype):
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((3, 4)).astype(dtype), requires_grad=True)
    W = Tensor(rng.standard_normal((2, 4)).astype(dtype), requires_grad=True)
    b = Tensor(np.zeros(2, dtype=dtype), requires_grad=True)
    out = ((cr.affine(x, W, b) * 2.0 + 1).tanh().sigmoid() ** 2).exp().log().mean()
    assert out.dtype == dtype
    out.backward()
    assert x.grad.dtype == dtype and W.grad.dtype == dtype and b.grad.dtype == dtype


def test_shape_errors_name_the_problem():
    with pytest.raises(cr.ShapeError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) do not fit"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))
    with pytest.raises(cr.ShapeError, match=r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        Tensor(np.ones((2, 3))) + np.ones(4)
    with pytest.raises(cr.ShapeError, match=r"affine: x \(2, 3\), W \(4, 5\)"):
        cr.affine(np.ones((2, 3)), np.ones((4, 5)), np.ones(4))
    with pytest.raises(cr.ShapeError, match="reshape: cannot reshape"):
        Tensor(np.ones((2, 3))).reshape(4, 2)
    with pytest.raises(cr.ShapeError, match="axis 3 is out of range"):
        Tensor(np.ones((2, 3))).sum(axis=3)


def test_gates_skip_the_gradients_nobody_needs():
    x = Tensor(np.ones((2, 3)))  # a data batch: no gradient wanted
    W = Tensor(np.ones((4, 3)), requires_grad=True)
    b = Tensor(np.zeros(4), requires_grad=True)
    for fn in (cr.affine, cr.affine_relu):
        out = fn(x, W, b)
        assert out.gate.needs_input_grad == (False, True, True)
        dx, dW, db = out.gate.backward(np.ones((2, 4)))
        assert dx is None and dW.shape == (4, 3) and db.shape == (4,)
    out = x @ W.T
    assert out.inputs[0] is x
    out.sum().backward()
    assert x.grad is None and W.grad.shape == (4, 3)


def test_in_place_accumulation_matches_out_of_place():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3))
    W = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    loss = (
        (cr.affine(x, W, np.zeros(4)) ** 2).sum()
        + (W * W).sum() * 0.5
        + cr.affine(x, W, np.ones(4)).sum()
    )
    loss.backward()
    expected = 2 * (x @ W.data.T).T @ x + W.data + np.ones((5, 4)).T @ x
    np.testing.assert_allclose(W.grad, expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_sum_is_the_column_sum(dtype):
    rng = np.random.default_rng(3)
    d = rng.standard_normal((37, 11)).astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    for a in (d, d[:, ::2], d[5:9], d[:0]):
        got = arrays.batch_sum(a)
        assert got.dtype == dtype and got.shape == (a.shape[1],)
        np.testing.assert_allclose(got, a.astype(np.float64).sum(axis=0), rtol=tol, atol=tol)
    ints = np.arange(12).reshape(4, 3)
    np.testing.assert_array_equal(arrays.batch_sum(ints), [18, 22, 26])
    # what Sum's backward hands a layer: a read-only broadcast, stride 0
    spread = np.broadcast_to(np.arange(11, dtype=dtype), (37, 11))
    np.testing.assert_allclose(arrays.batch_sum(spread), 37 * np.arange(11), rtol=tol)
    # the ones vector is shared by every caller: read-only, and never handed out
    ones = arrays._ones(37, np.dtype(dtype))
    assert not ones.flags.writeable
    assert not np.shares_memory(arrays.batch_sum(d), ones)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_relu_gives_what_maximum_with_zero_gives(dtype):
    special = [-0.0, 0.0, -1.0, 2.5, -np.inf, np.inf, np.nan] if dtype != np.int64 else [-3, 0, 4]
    rng = np.random.default_rng(0)
    x = np.resize(np.array(special, dtype), (64, 70))
    x.ravel()[::7] = (10 * rng.standard_normal(len(x.ravel()[::7]))).astype(dtype)
    want = np.maximum(x, 0)
    got = arrays.relu(x)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))  # +0.0, never -0.0
    assert got.dtype == want.dtype
    # in place, and on an array past the cached zeros' size limit (the scalar road)
    inplace = x.copy()
    assert arrays.relu(inplace, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, want)
    big = np.resize(x, (arrays._ZEROS_MAX // 64 + 1, 64))
    np.testing.assert_array_equal(arrays.relu(big), np.maximum(big, 0))
    # the shared zeros are read-only and never handed out
    if x.dtype.kind == "f":
        zeros = arrays._zeros(x.shape, x.dtype)
        assert not zeros.flags.writeable and not np.shares_memory(got, zeros)
        assert not zeros.any()


def test_affine_relu_keeps_its_mask_and_leaves_dout_alone():
    x = np.array([[1.0, -2.0], [0.5, 0.5]])
    W = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    b = np.array([0.0, 0.0, 1.0])
    gate = fused.AffineReLU()
    out = gate.forward(x, W, b)
    # pre-activations [[1, -2, 2], [0.5, 0.5, 0]]: the 0 is a kink, its gradient 0 as in ReLU
    np.testing.assert_array_equal(out, [[1, 0, 2], [0.5, 0.5, 0]])
    assert not np.signbit(out).any()  # +0.0 for the negatives, as ReLU gives
    dout = np.arange(1.0, 7.0).reshape(2, 3)
    kept = dout.copy()
    _, dW, db = gate.backward(dout)
    np.testing.assert_array_equal(dout, kept)
    masked = np.array([[1.0, 0, 3], [4, 5, 0]])
    np.testing.assert_array_equal(db, masked.sum(axis=0))
    np.testing.assert_array_equal(np.asarray(dW), masked.T @ x)


def test_affine_relu_agrees_with_relu_at_infinities_and_nan():
    with np.errstate(over="ignore", invalid="ignore"):
        x = np.array([[1e30, 1.0]], np.float32)
        W = np.array([[-1e30, 0.0], [1e30, 0.0], [0.0, np.nan]], np.float32)
        pre = x @ W.T  # -inf, inf, nan
        together = fused.AffineReLU().forward(x, W, np.zeros(3, np.float32))
        apart = gates.ReLU().forward(pre)
    np.testing.assert_array_equal(together, apart)
    assert together[0, 0] == 0 and not np.signbit(together[0, 0])


# --- 0-d inputs: NumPy's ufuncs give scalars there, the gates must still give arrays ----------

SCALAR_GATES = [
    (gates.Add, 2),
    (gates.Sub, 2),
    (gates.Mul, 2),
    (gates.Div, 2),
    (gates.Maximum, 2),
    (gates.Neg, 1),
    (lambda: gates.Pow(2.0), 1),
    (lambda: gates.Pow(0.5), 1),
    (lambda: gates.Pow(0.0), 1),
    (gates.Exp, 1),
    (gates.Log, 1),
    (gates.ReLU, 1),
    (gates.Sigmoid, 1),
    (gates.Tanh, 1),
    (shaping.Sum, 1),
    (shaping.Mean, 1),
    (lambda: shaping.Reshape(()), 1),
    (shaping.Transpose, 1),
    (shaping.SumOfSquares, 1),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", SCALAR_GATES, ids=lambda c: c[0]().name)
def test_gates_on_0d_inputs_return_0d_arrays_forward_and_backward(case, dtype):
    make, arity = case
    xs = [np.array(v, dtype) for v in (0.7, 1.3)[:arity]]
    gate = make()
    out = gate.forward(*xs)
    assert type(out) is np.ndarray and out.shape == () and out.dtype == dtype
    grads = gate.backward(np.array(1.5, dtype))
    assert len(grads) == arity
    for g in grads:
        assert type(g) is np.ndarray and g.shape == () and g.dtype == dtype
    # and the values: the same gate on one-element arrays, where ufuncs return arrays
    one = make()
    want_out = one.forward(*(x.reshape(1) for x in xs))
    want_grads = one.backward(np.full(want_out.shape, 1.5, dtype))
    np.testing.assert_array_equal(out.reshape(-1), np.reshape(want_out, -1))
    for g, w in zip(grads, want_grads):
        np.testing.assert_array_equal(g.reshape(-1), np.reshape(w, -1))


# --- pow where p * x**(p-1) meets 0 * inf, 0**0 and negative bases -----------------------------

INF, NAN = np.inf, np.nan
POW_CASES = [  # (p, x, x**p, d/dx)
    (0, 0.0, 1, 0),  # x**0 is the constant 1: 0, not 0 * 0**-1 = NaN
    (0, -2.0, 1, 0),
    (0, 5.0, 1, 0),
    (0, INF, 1, 0),
    (0, -0.0, 1, 0),
    (1, 0.0, 0, 1),  # 0**0 = 1
    (1, -2.0, -2, 1),
    (2, 0.0, 0, 0),
    (2, -3.0, 9, -6),
    (3, -2.0, -8, 12),
    (3, 0.0, 0, 0),
    (-1, -2.0, -0.5, -0.25),
    (-2, -2.0, 0.25, 0.25),
    (-1, 0.0, INF, -INF),
    (0.5, 0.0, 0, INF),  # vertical tangent: the derivative is infinite
    (0.5, -0.0, 0, INF),
    (0.5, 4.0, 2, 0.25),
    (1.5, 0.0, 0, 0),
    (-0.5, 4.0, 0.5, -1 / 16),
    (0.5, -1.0, NAN, NAN),  # a non-integer power of a negative number: NaN, both
    (2.5, -1.0, NAN, NAN),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("p", "x", "value", "grad"), POW_CASES)
def test_pow_value_and_derivative_at_the_edges(p, x, value, grad, dtype):
    for shape in [(), (3,)]:
        t = Tensor(np.full(shape, x, dtype), requires_grad=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = t**p
            out.sum().backward()
        assert out.dtype == dtype and t.grad.dtype == dtype
        np.testing.assert_array_equal(out.data, np.full(shape, value, dtype))
        np.testing.assert_array_equal(t.grad, np.full(shape, grad, dtype))


# --- sigmoid's tails: relative precision on both sides, no overflow, no warnings --------------


def sigmoid_reference(x: float) -> tuple[float, float]:
    """sigmoid(x) and its derivative sigmoid(x) * sigmoid(-x), to 60 digits, as floats."""
    with decimal.localcontext() as context:
        context.prec = 60
        d = decimal.Decimal(float(x))  # exact: every float is a decimal
        s, c = 1 / (1 + (-d).exp()), 1 / (1 + d.exp())
        return float(s), float(s * c)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_its_gradient_keep_relative_precision_in_both_tails(dtype):
    info = np.finfo(dtype)
    reach = 110 if dtype == np.float32 else 750  # past where sigmoid(-x) underflows to 0
    x = np.concatenate([np.linspace(-reach, reach, 4001), [-40, 40, 0, -0.0, 1e-30, -1e-30]])
    x = x.astype(dtype)
    t = Tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = t.sigmoid()
        out.backward(np.ones_like(x))
    assert out.dtype == dtype and t.grad.dtype == dtype
    want = np.array([sigmoid_reference(v) for v in x])
    for got, ref, what in [(out.data, want[:, 0], "value"), (t.grad, want[:, 1], "gradient")]:
        normal = ref >= info.tiny  # below it, subnormals hold fewer digits: compare absolutely
        np.testing.assert_allclose(got[normal], ref[normal], rtol=4 * info.eps, err_msg=what)
        np.testing.assert_allclose(
            got[~normal], ref[~normal], rtol=0, atol=2 * info.smallest_subnormal, err_msg=what
        )
    # the numbers: sigmoid(-40) = 4.2484e-18, not 0, and the same gradient; at +40 the
    # gradient is sigmoid(-40) too, not out * (1 - out) = 0
    i, j = np.flatnonzero(x == -40)[0], np.flatnonzero(x == 40)[0]
    eps = float(info.eps)
    assert out.data[i] == pytest.approx(4.248354255291589e-18, rel=4 * eps)
    assert t.grad[i] == pytest.approx(4.248354255291589e-18, rel=6 * eps)
    assert t.grad[j] == pytest.approx(4.248354255291589e-18, rel=6 * eps)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_sigmoid_stays_finite_while_sigmoid_is_a_normal_number(dtype):
    # log(sigmoid(x)) = -log(1 + e**-x) ~ x in the lower tail, its derivative sigmoid(-x) ~ 1.
    # (Above 0 the log of a number near 1 has only absolute precision: not this test's point.)
    low = -87.0 if dtype == np.float32 else -708.0
    x = np.array([low, low / 2, -40.0, -20.0, -1.0, 0.0], dtype)
    t = Tensor(x, requires_grad=True)
    out = t.sigmoid().log()
    out.sum().backward()
    want_value = [-np.logaddexp(0.0, -float(v)) for v in x]
    want_grad = [sigmoid_reference(-float(v))[0] for v in x]
    np.testing.assert_allclose(out.data, want_value, rtol=8 * np.finfo(dtype).eps)
    np.testing.assert_allclose(t.grad, want_grad, rtol=8 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_sigmoid_at_the_extremes_without_warnings(dtype):
    big = np.finfo(dtype).max
    x = np.array([-np.inf, -big, -1e4, 0.0, 1e4, big, np.inf, np.nan], dtype)
    t = Tensor(x, requires_grad=True)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        out = t.sigmoid()
        out.backward(np.ones_like(x))
    np.testing.assert_array_equal(out.data, np.array([0, 0, 0, 0.5, 1, 1, 1, np.nan], dtype))
    np.testing.assert_array_equal(t.grad, np.array([0, 0, 0, 0.25, 0, 0, 0, np.nan], dtype))
    for v in (-1e4, 0.0, np.nan):  # and on 0-d inputs
        assert Tensor(np.array(v, dtype)).sigmoid().data.shape == ()


def test_tanh_gradient_is_one_minus_out_squared_and_never_nan():
    # documented in gates.Tanh: where tanh rounds to +-1 the gradient is 0 (sech**2 < 1e-16)
    x = Tensor(np.array([-1e4, -20.0, -1.0, 0.0, 1.0, 20.0, 1e4]), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x.tanh().sum().backward()
    np.testing.assert_allclose(x.grad, 1 - np.tanh(x.data) ** 2, rtol=1e-15)
    assert x.grad[[0, 1, 5, 6]].tolist() == [0, 0, 0, 0]


# --- half precision: sums accumulate in float32, results and gradients stay float16 ------------


def test_a_float16_mean_over_70000_elements():
    x = Tensor(np.ones(70000, np.float16), requires_grad=True)
    m = x.mean()
    m.backward()
    assert m.dtype == np.float16 and m.data == np.mean(x.data) == 1.0
    # 1/70000 is a float16 subnormal: 1.4305e-05, within 0.2% of the true share
    assert x.grad.dtype == np.float16
    np.testing.assert_array_equal(x.grad, np.float16(1 / 70000))
    assert x.grad[0] == np.float16(1.4305e-05) and abs(float(x.grad[0]) * 70000 - 1) < 2e-3


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
def test_float16_sums_and_means_match_float32_accumulators(axis):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (40000, 3)).astype(np.float16)  # column sums ~20,000: fit in float16
    t = Tensor(x, requires_grad=True)
    if axis in (None, (0, 1)):
        want_mean = np.mean(x, axis=axis, dtype=np.float32).astype(np.float16)
        np.testing.assert_array_equal(t.mean(axis=axis).data, want_mean)
        assert want_mean == np.mean(x)  # NumPy's own float16 mean
    else:
        s, m = t.sum(axis=axis), t.mean(axis=axis)
        assert s.dtype == m.dtype == np.float16
        want_sum = x.sum(axis=axis, dtype=np.float64)
        np.testing.assert_allclose(s.data, want_sum, rtol=2**-11)
        np.testing.assert_allclose(m.data, want_sum / x.shape[axis], rtol=2**-11)
        np.testing.assert_array_equal(m.data, np.mean(x, axis=axis))


def test_float16_gradients_of_broadcast_inputs_accumulate_in_float32():
    # b is added to 40,000 rows: its gradient is a sum of 40,000 ones (a float16 sum stalls at
    # 2048, where 2048 + 1 rounds back to 2048)
    x = Tensor(np.zeros((40000, 3), np.float16))
    b = Tensor(np.zeros(3, np.float16), requires_grad=True)
    c = Tensor(np.zeros((), np.float16), requires_grad=True)
    with pytest.warns(RuntimeWarning, match="overflow"):  # as NumPy warns for its own sums
        (x + b + c).sum().backward()
    assert b.grad.dtype == c.grad.dtype == np.float16
    np.testing.assert_array_equal(b.grad, np.float16(40000))
    assert c.grad == np.float16(np.inf)  # 120,000 exceeds float16's 65504: inf, as exactly
    # a dense layer's bias and weight gradients sum over the batch too (BLAS-free float16
    # products accumulate in float32 inside NumPy)
    W1 = Tensor(np.full((2, 3), 0.5, np.float16), requires_grad=True)
    b1 = Tensor(np.zeros(2, np.float16), requires_grad=True)
    cr.affine(np.ones((40000, 3), np.float16), W1, b1).mean().backward()  # 1/80000 each
    np.testing.assert_allclose(b1.grad, 0.5, rtol=2**-10)  # 40,000 subnormals of 1/80000
    np.testing.assert_allclose(W1.grad, 0.5, rtol=2**-10)
    W = Tensor(np.full((300, 300), 0.1, np.float16), requires_grad=True)
    penalty = cr.losses.l2_penalty([W], 1.0)
    assert penalty.dtype == np.float16
    assert penalty.data == np.float16(np.sum(W.data.astype(np.float32) ** 2))  # ~900


@pytest.mark.parametrize("loss", ["softmax", "svm"])
def test_float16_losses_over_a_large_batch_match_float64(loss):
    fn = cr.losses.LOSSES[loss]
    rng = np.random.default_rng(0)
    n, k = 70000, 10
    scores = rng.standard_normal((n, k)).astype(np.float16)
    y = rng.integers(0, k, n)
    half, full = Tensor(scores, requires_grad=True), Tensor(scores.astype(np.float64), True)
    value, want = fn(half, y), fn(full, y)
    value.backward()
    want.backward()
    assert value.dtype == np.float16 and half.grad.dtype == np.float16
    assert float(value.data) == pytest.approx(float(want.data), rel=2**-11)
    # each gradient entry is about 1/70000 in size: float16 subnormals, spaced 2**-24 apart
    np.testing.assert_allclose(half.grad, full.grad, rtol=0, atol=2**-24)
    assert np.count_nonzero(half.grad) > n  # not flushed to zero by a count that overflowed
