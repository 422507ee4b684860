"""Portable by test: the gates, losses, optimizers and preprocessing on other array modules.

Every check runs the same computation twice, on NumPy and on another module, in float64, and
holds the two to the same numbers: on array_api_strict (the standard and nothing more, so any
NumPy-only call in the library fails here, on the CPU, in the normal suite) and on CuPy (skipped
with the reason where CuPy or a GPU is missing). NumPy's own results are checked against finite
differences in test_gates.py; agreeing with them to 1e-12 carries those checks over.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from chainrule.engine import fused, gates, shaping
from chainrule.engine.backend import namespace, to_numpy
from chainrule.engine.tensor import Tensor, apply
from chainrule.nn import optim
from chainrule.nn.losses import softmax_loss, svm_loss
from chainrule.nn.models import TwoLayerNet


def _cupy_or_skip() -> Any:
    try:
        cupy = importlib.import_module("cupy")
    except ImportError:
        pytest.skip("CuPy is not installed (pip install 'chainrule[gpu]')")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("CuPy finds no GPU")
    except Exception as err:  # no driver
        pytest.skip(f"CuPy finds no GPU ({type(err).__name__})")
    return cupy


@pytest.fixture(params=["array_api_strict", "cupy"])
def xp(request: pytest.FixtureRequest) -> Any:
    """The other array module."""
    if request.param == "cupy":
        return _cupy_or_skip()
    return pytest.importorskip("array_api_strict")


def run_gate(make: Callable[[], gates.Gate], inputs: list[Any], dout: Any) -> tuple[Any, ...]:
    """A fresh gate's output and its backward's gradients, in the inputs' module."""
    gate = make()
    out = gate.forward(*inputs)
    return (out, *gate.backward(dout))


RNG = np.random.default_rng(7)
LABELS = np.array([0, 2, 1, 2, 0])
# (name, the gate, input shapes, positive inputs?): every gate of the engine
GATES: list[tuple[str, Callable[[], gates.Gate], list[tuple[int, ...]], bool]] = [
    ("add", gates.Add, [(4, 3), (3,)], False),
    ("sub", gates.Sub, [(4, 3), (4, 1)], False),
    ("mul", gates.Mul, [(4, 3), (4, 3)], False),
    ("div", gates.Div, [(4, 3), (3,)], True),
    ("max", gates.Maximum, [(4, 3), (4, 3)], False),
    ("neg", gates.Neg, [(4, 3)], False),
    ("pow", lambda: gates.Pow(3.0), [(4, 3)], False),
    ("exp", gates.Exp, [(4, 3)], False),
    ("log", gates.Log, [(4, 3)], True),
    ("relu", gates.ReLU, [(4, 3)], False),
    ("sigmoid", gates.Sigmoid, [(4, 3)], False),
    ("tanh", gates.Tanh, [(4, 3)], False),
    ("sum", lambda: shaping.Sum(1), [(4, 3)], False),
    ("sum_all", shaping.Sum, [(4, 3)], False),
    ("mean", lambda: shaping.Mean(0, keepdims=True), [(4, 3)], False),
    ("reshape", lambda: shaping.Reshape((3, 4)), [(4, 3)], False),
    ("transpose", shaping.Transpose, [(4, 3)], False),
    ("sum_of_squares", shaping.SumOfSquares, [(4, 3)], False),
    ("matmul", shaping.MatMul, [(4, 3), (3, 2)], False),
    ("matvec", shaping.MatMul, [(4, 3), (3,)], False),
    ("affine", fused.Affine, [(5, 4), (3, 4), (3,)], False),
    ("affine_relu", fused.AffineReLU, [(5, 4), (3, 4), (3,)], False),
    ("softmax", lambda: fused.SoftmaxCrossEntropy(LABELS), [(5, 3)], False),
    ("hinge", lambda: fused.MulticlassHinge(LABELS), [(5, 3)], False),
]


@pytest.mark.parametrize("name, make, shapes, positive", GATES, ids=[g[0] for g in GATES])
def test_gate_matches_numpy(xp: Any, name: str, make: Any, shapes: Any, positive: bool) -> None:
    inputs = [RNG.standard_normal(s) for s in shapes]
    if positive:
        inputs = [np.abs(x) + 0.5 for x in inputs]
    out_np = make().forward(*inputs)
    dout = RNG.standard_normal(out_np.shape)
    expected = run_gate(make, inputs, dout)
    got = run_gate(make, [xp.asarray(x) for x in inputs], xp.asarray(dout))
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert namespace(g) is not np  # computed in the other module, not handed back
        assert g.shape == e.shape
        np.testing.assert_allclose(to_numpy(g), e, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("loss", [softmax_loss, svm_loss], ids=["softmax", "svm"])
def test_losses_take_infinite_scores_as_numpy_does(xp: Any, loss: Any) -> None:
    inf, nan = np.inf, np.nan
    scores = np.array(
        [[1.0, 2.0, 0.5], [inf, 0.0, 1.0], [0.0, inf, 1.0], [inf, inf, 0.0], [nan, 1.0, 2.0]]
    )
    y = np.array([1, 0, 2, 1, 0])
    expected = _loss_and_grad(loss, scores, y)
    got = _loss_and_grad(loss, xp.asarray(scores), xp.asarray(y))
    for g, e in zip(got, expected):
        np.testing.assert_allclose(to_numpy(g), e, rtol=1e-12)
    # the finite rows' gradients are untouched by the others (row 0 is finite)
    assert np.isfinite(to_numpy(got[1])[0]).all()


def _loss_and_grad(loss: Any, scores: Any, y: Any) -> tuple[Any, Any]:
    s = Tensor(scores, requires_grad=True)
    value = loss(s, y)
    value.backward()
    return value.data, s.grad


OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, 0.1, weight_decay=0.01),
    "momentum": lambda p: optim.Momentum(p, 0.05, weight_decay=0.01),
    "nesterov": lambda p: optim.Momentum(p, 0.05, nesterov=True, weight_decay=0.01),
    "adam": lambda p: optim.Adam(p, 0.01, weight_decay=0.01),
}


def _train(model: TwoLayerNet, X: Any, y: Any, make_optimizer: Any, steps: int = 4) -> list[float]:
    """A few steps of the 2-layer net on (X, y): the losses, one per step."""
    optimizer = make_optimizer(model.parameters())
    losses = []
    for _ in range(steps):
        loss = softmax_loss(model(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(to_numpy(loss.data)))
    return losses


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_training_gives_numpys_numbers(xp: Any, name: str) -> None:
    X = RNG.standard_normal((16, 12))
    y = RNG.integers(0, 4, 16)
    host = TwoLayerNet(12, 10, 4, np.random.default_rng(1), dtype=np.float64)
    other = TwoLayerNet(12, 10, 4, np.random.default_rng(1), dtype=np.float64)
    for p in other.parameters():  # the other module's arrays, as Module.to would put them
        p.data = xp.asarray(p.data)
    expected = _train(host, X, y, OPTIMIZERS[name])
    got = _train(other, xp.asarray(X), xp.asarray(y), OPTIMIZERS[name])
    np.testing.assert_allclose(got, expected, rtol=1e-11)
    assert expected[-1] < expected[0]  # it learns
    for (key, a), b in zip(other.state_dict().items(), host.state_dict().values()):
        assert isinstance(a, np.ndarray), key  # saved as NumPy whatever the device
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_optimizer_state_round_trips_through_numpy(xp: Any) -> None:
    params = [Tensor(xp.asarray(RNG.standard_normal((3, 2))), requires_grad=True)]
    opt = optim.Adam(params, 0.01)
    params[0].grad = xp.asarray(RNG.standard_normal((3, 2)))
    opt.step()
    state = opt.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    fresh = optim.Adam(params, 0.01)
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(to_numpy(fresh.m[0]), state["m.0"])
    assert namespace(fresh.m[0]) is namespace(params[0].data)


def test_model_scores_numpy_rows_on_another_module(xp: Any) -> None:
    model = TwoLayerNet(6, 5, 3, np.random.default_rng(2), dtype=np.float64)
    X = RNG.standard_normal((7, 6))
    expected = model.scores(X)
    for p in model.parameters():
        p.data = xp.asarray(p.data)
    got = model.scores(xp.asarray(X), batch_size=3)
    assert isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_preprocessing_matches_numpy(xp: Any) -> None:
    from chainrule.data.preprocessing import Preprocessing

    raw = RNG.integers(0, 256, (40, 6)).astype(np.float32)
    raw[:, 0] = 7  # a constant feature: left undivided
    host = raw.copy()
    fitted = Preprocessing.fit_apply_inplace(host, 255.0, standardize=True)
    other = xp.asarray(raw.copy())  # (array_api_strict may share a NumPy array's memory)
    fitted_other = Preprocessing.fit_apply_inplace(other, 255.0, standardize=True)
    np.testing.assert_allclose(fitted_other.mean, fitted.mean, rtol=1e-6)
    np.testing.assert_allclose(fitted_other.std, fitted.std, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(other), host, rtol=1e-5, atol=1e-6)
    again = fitted.apply(xp.asarray(raw[:5]))
    np.testing.assert_allclose(to_numpy(again), host[:5], rtol=1e-5, atol=1e-6)


def test_apply_makes_numbers_in_the_tensors_module(xp: Any) -> None:
    t = Tensor(xp.asarray(np.array([1.0, -2.0, 3.0])), requires_grad=True)
    out = apply(gates.Mul(), t, 2.0) + 1.0
    out.sum().backward()
    assert namespace(out.data) is namespace(t.data)
    np.testing.assert_array_equal(to_numpy(out.data), [3.0, -3.0, 7.0])
    np.testing.assert_array_equal(to_numpy(t.grad), [2.0, 2.0, 2.0])
