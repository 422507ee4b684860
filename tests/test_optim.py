"""One step of each optimizer against numbers worked out by hand; schedules; bad settings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chainrule.engine.errors import ConfigError
from chainrule.engine.tensor import Tensor
from chainrule.nn import Parameter, TwoLayerNet, optim
from chainrule.nn.losses import l2_penalty, softmax_loss


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


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_float16_parameters_are_refused_in_one_line(name):
    params = [
        Tensor(np.zeros((2, 3), np.float32), requires_grad=True),
        Tensor(np.zeros(3, np.float16), requires_grad=True),
    ]
    with pytest.raises(ConfigError, match=r"parameter 1 \(shape \(3,\)\) is float16") as info:
        optim.optimizer_from_name(name, params, 0.1)
    assert "\n" not in str(info.value) and "train in float32" in str(info.value)


# --- the update in place, against the plain formula -----------------------------------------


def plain_steps(name, w, grads, lr, wd, mu=0.9, b1=0.9, b2=0.999, eps=1e-8):
    """The textbook updates, spelled out with new arrays, in the order the optimizers compute."""
    v, m = np.zeros_like(w), np.zeros_like(w)
    for t, dw in enumerate(grads, start=1):
        g = dw + wd * w if wd else dw
        if name == "sgd":
            w = w - lr * g
        elif name in ("momentum", "nesterov"):
            v = mu * v - lr * g
            w = w + v if name == "momentum" else w - lr * g + mu * v
        else:
            m = b1 * m + (1 - b1) * g
            v = b2 * v + g * g * (1 - b2)
            step = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
            w = w - step * (m / (np.sqrt(v) + eps * math.sqrt(1 - b2**t)))
    return w


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("wd", [0.0, 0.03])
@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_the_in_place_update_is_the_plain_formula_bit_for_bit(name, wd, dtype):
    rng = np.random.default_rng(4)
    w0 = rng.standard_normal((6, 5)).astype(dtype)
    grads = [rng.standard_normal((6, 5)).astype(dtype) for _ in range(4)]
    p = Tensor(w0.copy(), requires_grad=True)
    array = p.data
    opt = optim.optimizer_from_name(name, [p], 0.05, weight_decay=wd)
    for g in grads:
        p.grad = g.copy()
        opt.step()
        np.testing.assert_array_equal(p.grad, g)  # the gradient is read, never written
    assert p.data is array  # in place: other holders of the array see the new values
    np.testing.assert_array_equal(p.data, plain_steps(name, w0, grads, 0.05, wd))


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_weight_decay_is_the_l2_penalty_through_the_gates(name):
    # One route for L2: weight_decay = 2 * reg in the optimizer is the gradient of
    # reg * sum(W**2) in the loss (losses.l2_penalty), weights only, to float64 precision.
    rng = np.random.default_rng(7)
    X, y, reg = rng.standard_normal((12, 6)), rng.integers(0, 3, 12), 0.02

    def net():
        return TwoLayerNet(6, 8, 3, np.random.default_rng(3), dtype=np.float64)

    decayed, penalized = net(), net()
    by_decay = optim.optimizer_from_name(name, decayed.parameters(), 0.1, weight_decay=2 * reg)
    by_gates = optim.optimizer_from_name(name, penalized.parameters(), 0.1)
    for _ in range(3):
        by_decay.zero_grad()
        softmax_loss(decayed(X), y).backward()
        by_decay.step()
        by_gates.zero_grad()
        (softmax_loss(penalized(X), y) + l2_penalty(penalized.weights(), reg)).backward()
        by_gates.step()
    for (key, a), b in zip(decayed.named_parameters(), penalized.parameters()):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-14, atol=1e-16, err_msg=key)
    assert [p.decay for p in decayed.parameters()] == [True, False, True, False]


def test_weight_decay_reaches_weights_not_biases_and_unused_weights_too():
    W = Parameter(np.full((2, 2), 2.0))  # a weight no loss uses: the L2 term still pulls it
    b = Parameter(np.full(2, 2.0), decay=False)
    plain = Tensor(np.full(3, 2.0), requires_grad=True)  # a plain Tensor decays, as in PyTorch
    b.grad = np.zeros(2)
    optim.SGD([W, b, plain], 0.1, weight_decay=0.5).step()
    np.testing.assert_allclose(W.data, 2.0 - 0.1 * 0.5 * 2.0)
    np.testing.assert_array_equal(b.data, [2.0, 2.0])
    np.testing.assert_allclose(plain.data, 2.0 - 0.1 * 0.5 * 2.0)
    assert W.version == plain.version == 1


@pytest.mark.parametrize("wd", [-0.1, float("nan"), float("inf"), "0.1", True])
def test_a_bad_weight_decay_is_refused(wd):
    with pytest.raises(ConfigError, match="weight_decay must be a number >= 0"):
        optim.SGD([param([1.0], [1.0])], 0.1, weight_decay=wd)


def test_the_gradients_the_update_takes_include_the_decay():
    W = Parameter(np.array([[1.0, -2.0]]))
    b = Parameter(np.array([3.0]), decay=False)
    W.grad, b.grad = np.array([[0.5, 0.5]]), np.array([1.0])
    opt = optim.SGD([W, b, Parameter(np.ones(1))], 0.1, weight_decay=0.2)
    g_W, g_b, g_unused = opt.gradients()
    np.testing.assert_allclose(g_W, [[0.7, 0.1]])
    assert g_b is b.grad
    np.testing.assert_allclose(g_unused, [0.2])


def test_a_float32_two_layer_step_matches_the_float64_step_through_the_gates():
    # The training case itself: float32 weights with weight decay against float64 with the
    # penalty through the graph.
    rng = np.random.default_rng(8)
    net32 = TwoLayerNet(20, 16, 5, rng, dtype=np.float32)
    net64 = TwoLayerNet(20, 16, 5, np.random.default_rng(8), dtype=np.float64)
    net64.load_state_dict(net32.state_dict())
    X = rng.standard_normal((12, 20)).astype(np.float32)
    y = rng.integers(0, 5, 12)
    opt32 = optim.Momentum(net32.parameters(), 0.05, weight_decay=0.02)
    opt64 = optim.Momentum(net64.parameters(), 0.05)
    for _ in range(3):
        opt32.zero_grad()
        softmax_loss(net32(X), y).backward()
        opt32.step()
        opt64.zero_grad()
        total = softmax_loss(net64(X.astype(np.float64)), y)
        (total + l2_penalty(net64.weights(), 0.01)).backward()
        opt64.step()
    for p32, p64 in zip(net32.parameters(), net64.parameters()):
        assert p32.dtype == np.float32
        np.testing.assert_allclose(p32.data, p64.data, rtol=2e-5, atol=2e-6)
