"""Cross-checks against PyTorch (float64): scores, both losses, every gradient, optimizer steps.

PyTorch is never a runtime dependency; here it is an independent referee. Skipped when torch is
not installed, except under CI, which installs it (.ci/run) and must run these.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import chainrule as cr
import random_graphs
from chainrule import nn
from chainrule.engine.tensor import Tensor
from chainrule.nn import optim
from chainrule.nn.losses import l2_penalty, softmax_loss, svm_loss
from random_graphs import programs

if os.environ.get("CI"):
    import torch
else:
    torch = pytest.importorskip("torch")

F = torch.nn.functional
N, D, H, K = 16, 12, 9, 5


def setup(seed=0, activation=None):
    rng = np.random.default_rng(seed)
    net = nn.TwoLayerNet(D, H, K, rng, activation or nn.ReLU(), dtype=np.float64)
    X = rng.standard_normal((N, D))
    y = rng.integers(0, K, size=N)
    params = {n: torch.tensor(p.data, requires_grad=True) for n, p in net.named_parameters()}
    return net, X, y, params


def torch_scores(params, X, act):
    h = act(torch.tensor(X) @ params["W1"].T + params["b1"])
    return h @ params["W2"].T + params["b2"]


ACTIVATIONS = {
    "relu": (nn.ReLU, lambda t: torch.relu(t)),
    "tanh": (nn.Tanh, lambda t: torch.tanh(t)),
    "sigmoid": (nn.Sigmoid, lambda t: torch.sigmoid(t)),
}


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("loss", ["softmax", "svm"])
def test_scores_loss_and_every_gradient_match_pytorch(activation, loss):
    ours_act, torch_act = ACTIVATIONS[activation]
    net, X, y, params = setup(activation=ours_act())
    reg = 0.05
    scores = net(Tensor(X))
    if loss == "softmax":
        total = softmax_loss(scores, y) + l2_penalty(net.weights(), reg)
    else:
        total = svm_loss(scores, y) + l2_penalty(net.weights(), reg)
    total.backward()

    t_scores = torch_scores(params, X, torch_act)
    target = torch.tensor(y)
    if loss == "softmax":
        t_data = F.cross_entropy(t_scores, target)
    else:
        # torch divides the summed hinge by the number of classes; we sum over wrong classes
        t_data = F.multi_margin_loss(t_scores, target, margin=1.0) * K
    t_total = t_data + reg * ((params["W1"] ** 2).sum() + (params["W2"] ** 2).sum())
    t_total.backward()

    np.testing.assert_allclose(net(Tensor(X)).data, t_scores.detach().numpy(), rtol=1e-12)
    assert total.item() == pytest.approx(t_total.item(), rel=1e-12)
    for name, p in net.named_parameters():
        np.testing.assert_allclose(
            p.grad, params[name].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name
        )


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda ps: optim.SGD(ps, 0.1), lambda ps: torch.optim.SGD(ps, lr=0.1)),
        (
            lambda ps: optim.Momentum(ps, 0.1, momentum=0.9),
            lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
        ),
        (
            lambda ps: optim.Momentum(ps, 0.1, momentum=0.9, nesterov=True),
            lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
        ),
        (lambda ps: optim.Adam(ps, 0.01), lambda ps: torch.optim.Adam(ps, lr=0.01)),
    ],
    ids=["sgd", "momentum", "nesterov", "adam"],
)
def test_five_optimizer_steps_match_pytorch(ours, theirs):
    net, X, y, params = setup(seed=1)
    opt, t_opt = ours(net.parameters()), theirs(list(params.values()))
    for _ in range(5):
        opt.zero_grad()
        softmax_loss(net(Tensor(X)), y).backward()
        opt.step()
        t_opt.zero_grad()
        F.cross_entropy(torch_scores(params, X, torch.relu), torch.tensor(y)).backward()
        t_opt.step()
    for name, p in net.named_parameters():
        np.testing.assert_allclose(
            p.data, params[name].detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=name
        )


# --- random graphs with reuse, scalars first (micrograd users' graphs) -------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(program=programs(), seed=st.integers(0, 2**32 - 1))
def test_random_graphs_with_reuse_match_pytorch(program, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(-2, 2, size=shape) for shape in program.leaf_shapes]
    ours = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    with np.errstate(over="ignore", invalid="ignore"):
        out, trace = random_graphs.run(program, ours, cr, lambda t: t.data)
    t_out, _ = random_graphs.run(program, theirs, torch, lambda t: t.detach().numpy())
    # Left out: graphs that overflow, and ties of max between two different values (PyTorch
    # splits a tie's gradient in halves; chainrule gives it to the right-hand input).
    assume(trace.finite_below(1e8) and trace.max_gap > 0)
    out.backward()
    t_out.backward()
    assert out.shape == () and type(out.data) is np.ndarray
    np.testing.assert_allclose(out.data, t_out.item(), rtol=1e-12, atol=1e-12)
    wants = [np.zeros(t.shape) if t.grad is None else t.grad.numpy() for t in theirs]
    scale = max(1.0, *(float(np.max(np.abs(w), initial=0)) for w in wants))
    for i, (leaf, want) in enumerate(zip(ours, wants)):
        got = np.zeros(leaf.shape) if leaf.grad is None else leaf.grad
        assert type(got) is np.ndarray and got.shape == leaf.shape
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13 * scale, err_msg=f"leaf {i}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pow_and_its_gradient_match_pytorch_on_a_grid(dtype):
    exponents = [-3, -2, -1.5, -1, -0.5, 0, 0.25, 0.5, 1, 1.5, 2, 2.5, 3, 4]
    # Not -0.0 or -inf: PyTorch computes some powers by other functions (x**-0.5 as rsqrt(x),
    # which gives -inf at -0.0 and NaN at -inf, where C's pow, and so NumPy, give inf and 0).
    x = np.array([-3, -2, -1, -0.5, 0.0, 1e-30, 0.5, 1, 2, 3, np.inf, np.nan], dtype)
    tol = {"rtol": 1e-6} if dtype == np.float32 else {"rtol": 1e-14}
    for p in exponents:
        ours = Tensor(x.copy(), requires_grad=True)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = ours**p
            out.sum().backward()
        theirs = torch.tensor(x, requires_grad=True)
        t_out = theirs**p
        t_out.sum().backward()
        np.testing.assert_allclose(out.data, t_out.detach().numpy(), err_msg=f"p={p}", **tol)
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), err_msg=f"p={p}", **tol)
