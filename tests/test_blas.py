"""The BLAS calls on NumPy's own BLAS, and the unformed weight gradient they serve.

Every function is checked on both paths (NumPy's BLAS through ctypes, and the NumPy fallback)
against plain NumPy arithmetic, in float32 and float64, on contiguous arrays, row slices and arrays
BLAS cannot take. The engine keeps a leaf's dense-layer gradient unformed; every way of looking at
it gives the same array as forming it at once.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from chainrule.engine import blas, gates
from chainrule.engine.tensor import Tensor, affine, affine_relu, defer_weight_grads
from chainrule.nn import TwoLayerNet, optim
from chainrule.nn.losses import l2_penalty, softmax_loss


@pytest.fixture(params=["numpy-blas", "numpy-only"])
def path(request, monkeypatch):
    """Run a test once through NumPy's BLAS and once through the NumPy fallback."""
    if request.param == "numpy-blas":
        if not blas.AVAILABLE:
            if os.environ.get("CI"):
                pytest.fail("CI runs on NumPy's Linux wheel: its OpenBLAS must be found")
            pytest.skip("this NumPy has no OpenBLAS of its own (the fallback is tested)")
    else:
        monkeypatch.setattr(blas, "_FUNCTIONS", None)
    return request.param


def arrays(rng, dtype, *shapes):
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("beta", [0.0, 1.0, 0.9])
def test_gemm_tn_adds_alpha_a_transposed_b(path, dtype, beta):
    rng = np.random.default_rng(0)
    a, b, c = arrays(rng, dtype, (7, 5), (7, 3), (5, 3))
    expected = -0.5 * (a.astype(np.float64).T @ b) + beta * c
    blas.gemm_tn(-0.5, a, b, beta, c)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(c, expected, rtol=tol, atol=tol)
    assert c.dtype == dtype


def test_gemm_tn_with_beta_zero_ignores_what_c_held(path):
    rng = np.random.default_rng(1)
    a, b = arrays(rng, np.float64, (4, 3), (4, 2))
    c = np.full((3, 2), np.nan)
    blas.gemm_tn(1.0, a, b, 0.0, c)
    np.testing.assert_allclose(c, a.T @ b, rtol=1e-13)


def test_gemm_tn_reads_row_slices_and_falls_back_for_other_strides(path):
    rng = np.random.default_rng(2)
    big_a, big_b = arrays(rng, np.float64, (9, 8), (9, 6))
    a, b = big_a[1:7, 2:6], big_b[::2, :3]  # a: rows with a longer stride; b: every other row
    c = np.zeros((6, 3))[:4]
    cols = np.zeros((4, 6))[:, ::2]  # columns apart: BLAS cannot take it, NumPy can
    blas.gemm_tn(2.0, a, big_b[1:7, :3], 0.0, c)
    np.testing.assert_allclose(c, 2 * a.T @ big_b[1:7, :3], rtol=1e-13)
    blas.gemm_tn(1.0, big_a[:5, :4], b, 1.0, cols)
    np.testing.assert_allclose(cols, big_a[:5, :4].T @ b, rtol=1e-13)


def test_gemm_tn_refuses_shapes_that_do_not_fit(path):
    with pytest.raises(ValueError, match=r"do not give \(3, 3\)"):
        blas.gemm_tn(1.0, np.ones((4, 3)), np.ones((4, 2)), 0.0, np.ones((3, 3)))


def test_mixed_dtypes_take_the_numpy_path_and_stay_right(path):
    rng = np.random.default_rng(3)
    a, b = arrays(rng, np.float32, (6, 4), (6, 2))
    c = np.ones((4, 2))
    blas.gemm_tn(1.0, a, b.astype(np.float64), 1.0, c)
    np.testing.assert_allclose(c, 1 + a.astype(np.float64).T @ b, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(300, 70), (30, 7)])  # BLAS's size, and a bias's size
def test_axpby_and_axpy(path, dtype, shape):
    rng = np.random.default_rng(4)
    x, y = arrays(rng, dtype, shape, shape)
    scratch = np.empty_like(x)
    expected = 0.25 * x.astype(np.float64) - 3.0 * y
    blas.axpby(0.25, x, -3.0, y, scratch)
    np.testing.assert_allclose(y, expected, rtol=1e-5 if dtype == np.float32 else 1e-14)
    expected = y + 2.0 * x.astype(np.float64)
    blas.axpy(2.0, x, y, scratch)
    np.testing.assert_allclose(y, expected, rtol=1e-5 if dtype == np.float32 else 1e-14)
    # a transposed (non-contiguous) y: the NumPy path, the same numbers
    yt = np.ascontiguousarray(y.T).T
    expected = yt + 2.0 * x
    blas.axpy(2.0, x, yt, scratch)
    np.testing.assert_allclose(yt, expected, rtol=1e-5 if dtype == np.float32 else 1e-14)


def test_the_blas_is_numpys_own_and_can_be_switched_off():
    # In a fresh process (others here load SciPy, with its own OpenBLAS): after using the BLAS
    # path, exactly one OpenBLAS is mapped, NumPy's.
    code = (
        "import numpy as np; from chainrule.engine import blas\n"
        "a = np.ones((3, 2), np.float32); c = np.zeros((2, 2), np.float32)\n"
        "blas.gemm_tn(1.0, a, a, 0.0, c); assert (c == 3).all()\n"
        "libs = {l.split()[-1] for l in open('/proc/self/maps') if 'openblas' in l}\n"
        "print(blas.AVAILABLE, len(libs), all('numpy.libs' in p for p in libs))"
    )
    for setting in ("1", "0"):
        env = {**os.environ, "CHAINRULE_NUMPY_BLAS": setting}
        run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        if setting == "0":
            assert run.stdout.split()[0] == "False"
        elif blas.AVAILABLE:  # (where it is not, the path fixture says why)
            assert run.stdout.strip() == "True 1 True"


# --- the unformed gradient in the engine ----------


def layer(rng, dtype=np.float64):
    x = rng.standard_normal((5, 4)).astype(dtype)
    W = Tensor(rng.standard_normal((3, 4)).astype(dtype), requires_grad=True)
    b = Tensor(rng.standard_normal(3).astype(dtype), requires_grad=True)
    return x, W, b


def test_a_leaf_weight_gets_its_gradient_unformed_and_reading_it_forms_it():
    rng = np.random.default_rng(5)
    x, W, b = layer(rng)
    up = rng.standard_normal((5, 3))
    affine(Tensor(x), W, b).backward(up)
    assert type(W.raw_grad) is np.ndarray  # outside defer_weight_grads: formed at once
    W.grad = None
    with defer_weight_grads():
        affine(Tensor(x), W, b).backward(up)
    assert isinstance(W.raw_grad, gates.OuterProduct)
    assert W.raw_grad.shape == (3, 4)
    np.testing.assert_allclose(np.asarray(W.raw_grad), up.T @ x, rtol=1e-14)
    np.testing.assert_allclose(W.grad, up.T @ x, rtol=1e-14)
    assert type(W.raw_grad) is np.ndarray  # formed once, then kept
    assert W.raw_grad is W.grad


def test_a_weight_used_twice_and_penalized_sums_every_gradient():
    rng = np.random.default_rng(6)
    x, W, b = layer(rng)
    h = affine_relu(Tensor(x), W, b)
    out = (affine(Tensor(x), W, b) * 2.0).sum() + h.sum()
    total = out + l2_penalty([W], 0.3)
    with defer_weight_grads():
        total.backward()
    # the same by hand: two affine uses and the penalty's 2 * reg * W
    pre = x @ W.data.T + b.data
    mask = (pre > 0).astype(float)
    expected = 2.0 * np.ones((5, 3)).T @ x + mask.T @ x + 0.6 * W.data
    np.testing.assert_allclose(W.grad, expected, rtol=1e-13)
    # and a second backward without zero_grad adds to the first
    before = W.grad.copy()
    with defer_weight_grads():
        affine(Tensor(x), W, b).sum().backward()
    np.testing.assert_allclose(W.grad, before + np.ones((5, 3)).T @ x, rtol=1e-13)


def test_unformed_gradients_only_inside_defer_and_never_from_a_parameter():
    # Found in review: a parameter fed to a dense layer (or a view of one) would be changed by
    # the optimizer before the weight's unformed gradient was applied; and outside fit, a user's
    # loop may overwrite its batch buffer between two backward calls (gradient accumulation).
    rng = np.random.default_rng(11)
    E = Tensor(rng.standard_normal((5, 4)), requires_grad=True)
    W = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = Tensor(np.zeros(3), requires_grad=True)
    with defer_weight_grads():
        affine(E, W, b).sum().backward()
        assert type(W.raw_grad) is np.ndarray
        W.grad = None
        affine(E.reshape(5, 4), W, b).sum().backward()  # a view of E's data
        assert type(W.raw_grad) is np.ndarray
    expected_W = W.data - 0.1 * (np.ones((5, 3)).T @ E.data)
    optim.SGD([E, W, b], 0.1).step()
    np.testing.assert_allclose(W.data, expected_W, rtol=1e-14)
    # accumulation through one reused buffer, outside defer: every gradient formed at once
    buf, W.grad = rng.standard_normal((5, 4)), None
    first = buf.copy()
    affine(Tensor(buf), W, b).sum().backward()
    buf[:] = rng.standard_normal((5, 4))
    affine(Tensor(buf), W, b).sum().backward()
    np.testing.assert_allclose(W.grad, np.ones((5, 3)).T @ (first + buf), rtol=1e-13)


def test_big_endian_arrays_take_the_numpy_path(path):
    rng = np.random.default_rng(12)
    w0, g = rng.standard_normal((100, 100)), rng.standard_normal((100, 100))
    p = Tensor(w0.astype(">f8"), requires_grad=True)
    p.grad = g
    optim.SGD([p], 0.1).step([0.01])
    np.testing.assert_allclose(p.data, w0 - 0.1 * (g + 0.01 * w0), rtol=1e-13)
    q = Tensor(w0.astype(">f8"), requires_grad=True)
    q.grad = g
    optim.Momentum([q], 0.1, momentum=0.9).step([0.01])
    np.testing.assert_allclose(q.data, w0 - 0.1 * (g + 0.01 * w0), rtol=1e-13)


def test_a_penalized_weight_without_a_data_gradient_still_decays():
    # The L2 term reaches every weight, used by the loss or not (as through l2_penalty's gates).
    w = Tensor(np.full(3, 2.0), requires_grad=True)
    optim.SGD([w], 0.1).step([0.5])
    np.testing.assert_allclose(w.data, 2.0 - 0.1 * 0.5 * 2.0)


# --- the optimizers with unformed gradients and decay ----------


def make(name, params):
    return {
        "sgd": lambda: optim.SGD(params, 0.1),
        "momentum": lambda: optim.Momentum(params, 0.1, 0.9),
        "nesterov": lambda: optim.Momentum(params, 0.1, 0.9, nesterov=True),
        "adam": lambda: optim.Adam(params, 0.01),
    }[name]()


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam"])
def test_decay_and_unformed_gradients_give_the_textbook_update(path, name):
    # Two copies of the same weights: one gets OuterProduct gradients and decay through step,
    # the other formed arrays with the decay term added by hand, as the textbook writes it.
    rng = np.random.default_rng(7)
    W0 = rng.standard_normal((3, 4))
    fast = Tensor(W0.copy(), requires_grad=True)
    slow = Tensor(W0.copy(), requires_grad=True)
    fast_opt, slow_opt = make(name, [fast]), make(name, [slow])
    for _ in range(4):
        d, x = rng.standard_normal((6, 3)), rng.standard_normal((6, 4))
        fast.grad = None
        fast._grad = gates.OuterProduct(d, x)
        slow.grad = d.T @ x + 0.2 * slow.data
        fast_opt.step([0.2])
        slow_opt.step()
        np.testing.assert_allclose(fast.data, slow.data, rtol=1e-12, atol=1e-14)
    assert fast_opt.state_dict().keys() == slow_opt.state_dict().keys()


def test_step_refuses_a_decay_list_of_the_wrong_length():
    p = Tensor(np.ones(2), requires_grad=True)
    p.grad = np.ones(2)
    with pytest.raises(Exception, match="decay has 2 values for 1 parameters"):
        optim.SGD([p], 0.1).step([0.1, 0.2])


def test_a_float32_two_layer_step_matches_the_formed_float64_step(path):
    # The training case itself: float32 weights, a real step, against the same step in float64
    # with every gradient formed and the penalty through the graph.
    rng = np.random.default_rng(8)
    net32 = TwoLayerNet(20, 16, 5, rng, dtype=np.float32)
    net64 = TwoLayerNet(20, 16, 5, np.random.default_rng(8), dtype=np.float64)
    for p32, p64 in zip(net32.parameters(), net64.parameters()):
        p64.data[...] = p32.data
    X = rng.standard_normal((12, 20)).astype(np.float32)
    y = rng.integers(0, 5, 12)
    opt32 = optim.Momentum(net32.parameters(), 0.05)
    opt64 = optim.Momentum(net64.parameters(), 0.05)
    decay = [0.02 if p.ndim == 2 else 0.0 for p in net32.parameters()]
    for _ in range(3):
        opt32.zero_grad()
        softmax_loss(net32(Tensor(X)), y).backward()
        opt32.step(decay)
        opt64.zero_grad()
        total = softmax_loss(net64(Tensor(X.astype(np.float64))), y)
        (total + l2_penalty(net64.weights(), 0.01)).backward()
        opt64.step()
    for p32, p64 in zip(net32.parameters(), net64.parameters()):
        np.testing.assert_allclose(p32.data, p64.data, rtol=2e-5, atol=2e-6)


def test_the_address_handed_to_blas_is_the_first_element():
    a = np.arange(24, dtype=np.float32).reshape(4, 6)
    readonly = a[1:]
    readonly.flags.writeable = False
    for v in (a, a[1:], a[:, 2:], a[::2], a.T, readonly, a[:0]):
        assert blas._address(v) == v.ctypes.data
