"""One step of each optimizer against numbers worked out by hand; schedules; bad settings."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.engine.errors import ConfigError
from chainrule.engine.tensor import Tensor
from chainrule.nn import optim


def param(values, grad):
    p = Tensor(np.array(values, dtype=np.float64), requires_grad=True)
    p.grad = np.array(grad, dtype=np.float64)
    return p


def test_sgd_step_by_hand():
    p = param([1.0, 2.0], [0.5, -1.0])
    optim.SGD([p], learning_rate=0.1).step()
    np.testing.assert_allclose(p.data, [0.95, 2.1])  # w - 0.1 * dw


def test_momentum_two_steps_by_hand():
    p = param([1.0, 2.0], [0.5, -1.0])
    opt = optim.Momentum([p], learning_rate=0.1, momentum=0.9)
    opt.step()  # v = -0.1 * dw = [-0.05, 0.1]
    np.testing.assert_allclose(p.data, [0.95, 2.1])
    opt.step()  # v = 0.9 v - 0.1 dw = [-0.095, 0.19]
    np.testing.assert_allclose(opt.velocity[0], [-0.095, 0.19])
    np.testing.assert_allclose(p.data, [0.855, 2.29])


def test_nesterov_step_by_hand():
    p = param([1.0, 2.0], [0.5, -1.0])
    opt = optim.Momentum([p], learning_rate=0.1, momentum=0.9, nesterov=True)
    opt.step()  # v = [-0.05, 0.1]; w += -0.9 * 0 + 1.9 v
    np.testing.assert_allclose(p.data, [0.905, 2.19])
    opt.step()  # v_prev = [-0.05, 0.1]; v = [-0.095, 0.19]; w += -0.9 v_prev + 1.9 v
    np.testing.assert_allclose(p.data, [0.905 + 0.045 - 0.1805, 2.19 - 0.09 + 0.361])


def test_adam_first_step_by_hand():
    # step 1: m = 0.1 dw, v = 0.001 dw^2; the bias corrections make m_hat = dw, v_hat = dw^2,
    # so the step is lr * dw / (|dw| + eps): a step of lr in every coordinate.
    p = param([1.0, 2.0], [0.5, -1.0])
    opt = optim.Adam([p], learning_rate=0.1)
    opt.step()
    np.testing.assert_allclose(opt.m[0], [0.05, -0.1])
    np.testing.assert_allclose(opt.v[0], [0.00025, 0.001])
    np.testing.assert_allclose(p.data, [1 - 0.1 * 0.5 / (0.5 + 1e-8), 2 + 0.1 / (1 + 1e-8)])


def test_adam_second_step_matches_the_textbook_formula():
    p = param([1.0, 2.0], [0.5, -1.0])
    opt = optim.Adam([p], learning_rate=0.1)
    opt.step()
    p.grad = np.array([0.2, 0.3])
    w = p.data.copy()
    opt.step()
    m = 0.9 * np.array([0.05, -0.1]) + 0.1 * np.array([0.2, 0.3])
    v = 0.999 * np.array([0.00025, 0.001]) + 0.001 * np.array([0.04, 0.09])
    m_hat, v_hat = m / (1 - 0.9**2), v / (1 - 0.999**2)
    np.testing.assert_allclose(p.data, w - 0.1 * m_hat / (np.sqrt(v_hat) + 1e-8), rtol=1e-12)


def test_parameters_without_gradient_are_left_alone():
    p = param([1.0], [1.0])
    q = Tensor(np.array([5.0]), requires_grad=True)
    optim.SGD([p, q], 0.5).step()
    assert q.data[0] == 5.0 and p.data[0] == 0.5


def test_state_dict_round_trip():
    p = param([1.0, 2.0], [0.5, -1.0])
    a = optim.Adam([p], 0.1)
    a.step()
    b = optim.Adam([param([1.0, 2.0], [0.5, -1.0])], 0.1)
    b.load_state_dict(a.state_dict())
    assert b.steps == 1
    np.testing.assert_array_equal(b.m[0], a.m[0])
    np.testing.assert_array_equal(b.v[0], a.v[0])


def test_schedules():
    step = optim.StepDecay(0.5, step_size=2)
    assert [step.factor(e) for e in range(5)] == [1, 1, 0.5, 0.5, 0.25]
    cos = optim.CosineDecay(4)
    assert cos.factor(0) == 1 and cos.factor(2) == pytest.approx(0.5) and cos.factor(4) == 0
    assert optim.CosineDecay(4, min_factor=0.1).factor(4) == pytest.approx(0.1)
    assert optim.Constant().factor(7) == 1


@pytest.mark.parametrize("lr", [0, -0.1, float("nan"), float("inf")])
def test_non_positive_learning_rate_is_refused(lr):
    with pytest.raises(ConfigError, match="learning rate must be a positive number"):
        optim.SGD([param([1.0], [1.0])], lr)


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="momentum must be in"):
        optim.Momentum([param([1.0], [1.0])], 0.1, momentum=1.5)
    with pytest.raises(ConfigError, match="decay must be in"):
        optim.StepDecay(1.5)
    with pytest.raises(ConfigError, match="unknown optimizer 'rmsprop'"):
        optim.optimizer_from_name("rmsprop", [param([1.0], [1.0])], 0.1)
    with pytest.raises(ConfigError, match="no parameters"):
        optim.SGD([], 0.1)


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_every_optimizer_descends_a_quadratic(name):
    p = Tensor(np.array([3.0, -2.0]), requires_grad=True)
    opt = optim.optimizer_from_name(name, [p], 0.05)
    for _ in range(300):
        opt.zero_grad()
        ((p * p).sum()).backward()
        opt.step()
    assert np.abs(p.data).max() < 0.05


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_optimizer_state_counts_the_arrays_each_keeps_per_parameter(name):
    """OPTIMIZER_STATE (the memory check's table) against the state an optimizer saves."""
    params = [Tensor(np.ones((2, 3), np.float32), requires_grad=True) for _ in range(2)]
    state = optim.optimizer_from_name(name, params, 0.1).state_dict()
    assert sum(key.endswith(".1") for key in state) == optim.OPTIMIZER_STATE[name]
    assert set(optim.OPTIMIZER_STATE) == set(optim.OPTIMIZERS)


def test_axpy_in_place_through_a_scratch_array():
    y = np.ones((3, 4), np.float32)
    x = np.full((3, 4), 2.0, np.float32)
    before = y
    optim.axpy(-0.5, x, y, np.empty_like(x))
    assert y is before
    np.testing.assert_array_equal(y, np.zeros((3, 4)))


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_float16_parameters_are_refused_in_one_line(name):
    params = [
        Tensor(np.zeros((2, 3), np.float32), requires_grad=True),
        Tensor(np.zeros(3, np.float16), requires_grad=True),
    ]
    with pytest.raises(ConfigError, match=r"parameter 1 \(shape \(3,\)\) is float16") as info:
        optim.optimizer_from_name(name, params, 0.1)
    assert "\n" not in str(info.value) and "train in float32" in str(info.value)
