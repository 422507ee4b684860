"""The referee itself: numerical gradients, rel_error, and a report that can fail."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.engine import gates
from chainrule.engine.tensor import Tensor, apply


def test_numerical_gradient_of_a_known_function():
    x = np.array([1.0, -2.0, 3.0])
    grad = cr.numerical_gradient(lambda v: np.sum(v**3), x)
    np.testing.assert_allclose(grad, 3 * x**2, rtol=1e-9)
    np.testing.assert_array_equal(x, [1.0, -2.0, 3.0])  # restored


def test_numerical_gradient_with_an_upstream_gradient():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    dout = np.array([[1.0, -1.0], [0.5, 2.0]])
    grad = cr.numerical_gradient(np.exp, x, dout=dout)
    np.testing.assert_allclose(grad, np.exp(x) * dout, rtol=1e-8)


def test_rel_error():
    assert cr.rel_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert cr.rel_error([1.0], [3.0]) == pytest.approx(0.5)
    assert cr.rel_error([0.0], [0.0]) == 0.0
    with pytest.raises(ValueError, match="shapes"):
        cr.rel_error([1.0], [1.0, 2.0])


class WrongSigmoid(gates.Sigmoid):
    """A planted bug: forgets the (1 - out) factor."""

    def backward(self, dout):
        return (dout * self.out,)


def test_gradcheck_catches_a_wrong_backward():
    x = np.random.default_rng(0).standard_normal((3, 4))
    good = cr.gradcheck(lambda t: t.sigmoid(), [x])
    bad = cr.gradcheck(lambda t: apply(WrongSigmoid(), t), [x])
    assert good.ok and good.max_rel_error < 1e-7
    assert not bad.ok and bad.max_rel_error > 0.1
    assert "FAIL" in bad.table()


def test_gradcheck_report_per_input_and_sampling():
    rng = np.random.default_rng(0)
    x, W = rng.standard_normal((50, 40)), rng.standard_normal((30, 40))
    report = cr.gradcheck(
        lambda x, W: (x @ W.T).tanh(), [x, W], names=["x", "W"], max_coords=25, rng=rng
    )
    assert report.ok
    assert [c.name for c in report.inputs] == ["x", "W"]
    assert [c.checked for c in report.inputs] == [25, 25]
    assert report.forward_passes == 100
    assert "forward passes" in report.table()


def test_gradcheck_does_not_touch_the_callers_arrays():
    x = np.ones((2, 2), dtype=np.float32)
    report = cr.gradcheck(lambda t: (t * t).sum(), [x])
    assert report.ok
    np.testing.assert_array_equal(x, np.ones((2, 2)))
    assert x.dtype == np.float32


def test_gradcheck_in_float32_would_not_pass():
    # why the checks run in float64: the same check with float32 arithmetic loses the digits
    x = np.random.default_rng(0).standard_normal(20).astype(np.float32)
    analytic = np.cos(x)
    numeric = cr.numerical_gradient(
        lambda v: np.sum(np.sin(v)).astype(np.float32), x.copy(), h=np.float32(1e-5)
    )
    assert cr.rel_error(analytic, numeric) > 1e-4


def test_gradcheck_requires_a_tensor_result():
    with pytest.raises(TypeError, match="must return a Tensor"):
        cr.gradcheck(lambda t: 1.0, [np.ones(2)])


def test_tensor_inputs_are_accepted():
    report = cr.gradcheck(lambda t: t.exp().sum(), [Tensor(np.array([0.1, 0.2]))])
    assert report.ok
