"""The Tensor and its reverse walk: accumulation, no_grad, deep graphs, freed caches, errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule.engine.tensor import Tensor, topological_order


def test_worked_circuit_numbers():
    x, y, z = (Tensor(v, requires_grad=True) for v in (-2.0, 5.0, -4.0))
    q = x + y
    f = q * z
    f.backward()
    assert q.data == 3 and f.data == -12
    assert (x.grad, y.grad, z.grad, q.grad) == (-4, -4, 3, -4)


def test_gradients_accumulate_where_a_tensor_is_used_twice():
    a = Tensor(3.0, requires_grad=True)
    b = a + a
    b.backward()
    assert a.grad == 2.0
    c = Tensor(3.0, requires_grad=True)
    (c * c * c).backward()  # 3 c^2
    assert c.grad == 27.0


def test_a_scalar_intermediate_used_three_times():
    # the add's output h first receives the add's shared dout, then two products' gradients
    w = Tensor(np.array(0.5), requires_grad=True)
    h = w * 2 + 1
    (h * h + h).backward()
    assert w.grad == 10.0  # d/dw (h^2 + h) = (2h + 1) * 2 at h = 2
    assert type(w.grad) is np.ndarray and w.grad.shape == ()


@pytest.mark.parametrize("shape", [(), (1,), (3,)])
@pytest.mark.parametrize("uses", [2, 3, 4, 5, 8])
@pytest.mark.parametrize("first", ["sum", "product"])
def test_an_intermediate_used_many_times(shape, uses, first):
    # f = h*h + (uses - 2) * h, built as separate gates, so h feeds `uses` gate inputs; the
    # gradient that reaches h first comes from an add (a shared view) or a product (fresh)
    w = Tensor(np.full(shape, 0.5), requires_grad=True)
    h = w * 2 + 1
    terms = [h] * (uses - 2)
    f = h * h
    for t in terms:
        f = (t + f) if first == "sum" else (f + t)
    f = f.sum() if shape else f
    f.backward()
    # df/dw = (2h + uses - 2) * 2 at h = 2
    np.testing.assert_array_equal(w.grad, np.full(shape, 2.0 * (4 + uses - 2)))
    assert type(w.grad) is np.ndarray and w.grad.shape == shape


@pytest.mark.parametrize("uses", [2, 3, 4, 6])
def test_a_scalar_leaf_and_a_scalar_root_used_many_times(uses):
    x = Tensor(3.0, requires_grad=True)
    f = x
    for _ in range(uses - 1):
        f = f * x  # x ** uses
    f.backward()
    assert x.grad == uses * 3.0 ** (uses - 1)
    # a seed added to a root that already holds a gradient (0-d + 0-d) stays an array
    y = Tensor(2.0, requires_grad=True)
    for _ in range(uses):
        y.backward()
    assert y.grad == uses and type(y.grad) is np.ndarray


def test_backward_adds_to_existing_gradients_until_zero_grad():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (w * 3).sum().backward()
    (w * 3).sum().backward()
    np.testing.assert_array_equal(w.grad, [6.0, 6.0])
    w.zero_grad()
    assert w.grad is None


def test_add_gradient_arrays_are_not_corrupted_by_accumulation():
    # add hands the same dout to both inputs; accumulating into one must not change the other
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    s = a + b
    t = (s + a).sum()
    t.backward()
    np.testing.assert_array_equal(a.grad, [2, 2, 2])
    np.testing.assert_array_equal(b.grad, [1, 1, 1])


def test_numbers_and_arrays_mix_with_tensors():
    x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    y = 2 * x + 1 - np.array([1.0, 1.0]) / 2
    y = 1 / (3 - y) + (-y) ** 2
    assert y.dtype == np.float32  # constants adopt the tensor's dtype: no silent upcast
    y.sum().backward()
    assert x.grad.dtype == np.float32
    xs = np.array([1.0, 2.0])
    ys = 2 * xs + 0.5
    expected = 2 / (3 - ys) ** 2 + 2 * ys * 2
    np.testing.assert_allclose(x.grad, expected, rtol=1e-6)


def test_ndarray_on_the_left_uses_the_tensor_operator():
    x = Tensor(np.ones(2), requires_grad=True)
    y = np.array([2.0, 3.0]) * x
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 3.0])


def test_no_grad_builds_no_graph():
    x = Tensor(2.0, requires_grad=True)
    with cr.no_grad():
        assert not cr.is_grad_enabled()
        y = x * x
    assert cr.is_grad_enabled()
    assert y.gate is None and not y.requires_grad
    assert (x * x).gate is not None


def test_constants_build_no_graph():
    y = Tensor(2.0) * 3
    assert y.gate is None and not y.requires_grad


def test_backward_on_a_non_scalar_needs_a_seed():
    x = Tensor(np.ones(3), requires_grad=True)
    y = x * 2
    with pytest.raises(cr.ShapeError, match=r"backward: this tensor has shape \(3,\)"):
        y.backward()
    y.backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 4.0, 6.0])
    with pytest.raises(cr.ShapeError, match="seed gradient has shape"):
        (x * 2).backward(np.ones(2))


def test_caches_are_freed_after_backward():
    x = Tensor(np.ones((4, 3)), requires_grad=True)
    W = Tensor(np.ones((2, 3)), requires_grad=True)
    h = cr.affine(x, W, np.zeros(2)).tanh()
    loss = h.sum()
    nodes = [t for t in topological_order(loss) if t.gate is not None]
    gates_used = [t.gate for t in nodes]
    loss.backward()
    assert all(not vars(g) for g in gates_used)
    assert all(t.inputs == () for t in nodes)


def test_a_second_backward_through_a_freed_graph_is_refused():
    x = Tensor(2.0, requires_grad=True)
    y = x * x
    y.backward()
    with pytest.raises(cr.ChainruleError, match="already back-propagated"):
        y.backward()


def test_a_chain_of_100000_gates_back_propagates():
    x = Tensor(0.5, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    assert sys.getrecursionlimit() < 100_000
    (y + 0).backward()
    assert x.grad == 1.0


def test_deep_tanh_chain_matches_the_chain_rule():
    x = Tensor(0.3, requires_grad=True)
    y, expected, v = x, 1.0, 0.3
    for _ in range(2000):
        y = y.tanh()
        v = np.tanh(v)
        expected *= 1 - v**2
    y.backward()
    assert x.grad == pytest.approx(expected, rel=1e-12)


def test_topological_order_puts_inputs_first():
    x, y = Tensor(1.0, requires_grad=True), Tensor(2.0, requires_grad=True)
    q = x + y
    f = q * x
    order = topological_order(f)
    assert order[-1] is f
    assert order.index(q) > order.index(x) and order.index(q) > order.index(y)


def test_pow_refuses_a_tensor_exponent():
    with pytest.raises(TypeError, match="exponent must be a constant"):
        Tensor(2.0) ** Tensor(3.0)


def test_operations_refuse_non_numeric_values():
    with pytest.raises(TypeError, match="cannot use a value of type str"):
        Tensor(1.0) + "a"


def test_integer_data_becomes_float():
    assert Tensor([1, 2]).dtype == np.float64
    assert Tensor(np.zeros(2, np.float32)).dtype == np.float32


def test_repr_and_item():
    t = Tensor(np.array(2.5), requires_grad=True)
    assert t.item() == 2.5
    assert "requires_grad=True" in repr(t)
    assert "gate=mul" in repr(t * 2)


def test_leaf_gradients_are_their_own_writable_arrays():
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    seed = np.array([1.0, 2.0, 3.0])
    (a + b).backward(seed)
    assert not np.shares_memory(a.grad, b.grad) and not np.shares_memory(a.grad, seed)
    a.grad *= 2  # in-place clipping of one gradient leaves the others alone
    np.testing.assert_array_equal(b.grad, seed)
    np.testing.assert_array_equal(seed, [1.0, 2.0, 3.0])
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    x.sum().backward()
    assert x.grad.flags.writeable


def test_affine_relu_output_survives_backward():
    x = Tensor(np.array([[1.0, 2.0]]))
    W = Tensor(np.array([[1.0, 1.0], [-1.0, -1.0]]), requires_grad=True)
    h = cr.affine_relu(x, W, np.zeros(2))
    before = h.data.copy()
    (h * 7).sum().backward()
    np.testing.assert_array_equal(h.data, before)


def test_topological_order_of_a_diamond_lists_each_tensor_once():
    x = Tensor(np.ones(3), requires_grad=True)
    c = Tensor(np.full(3, 2.0))
    a, b = x * c, x + c
    f = (a * b + a).sum()
    order = topological_order(f)
    assert len(order) == len({id(t) for t in order}) == 7
    for t in order:
        for parent in t._inputs:
            assert order.index(parent) < order.index(t)
    assert order[-1] is f


# --- a tensor changed in place between forward and backward -----------------------------------


def test_a_saved_tensor_changed_in_place_is_refused_not_a_wrong_gradient():
    x = Tensor(np.array([2.0]), requires_grad=True)
    y = (x * x).sum()
    x.data[...] = 5.0  # by hand: chainrule cannot see this write...
    x.mark_modified("a hand-written change")  # ...until it is told
    with pytest.raises(cr.ChainruleError) as info:
        y.backward()  # would give 10 (2 * 5) where the gradient at the forward point is 4
    message = str(info.value)
    assert "a tensor of shape (1,) float64" in message and "mul gate" in message
    assert "a hand-written change" in message and "run the forward pass again" in message
    assert "\n" not in message
    assert x.grad is None and y.grad is None  # refused before any gradient was written
    y = (x * x).sum()  # the forward pass again: the gradient at the new point
    y.backward()
    np.testing.assert_array_equal(x.grad, [10.0])


@pytest.mark.parametrize("name", cr.optim.OPTIMIZERS)
def test_an_optimizer_step_between_forward_and_backward_is_named(name):
    W = Tensor(np.array([[2.0, -1.0]]), requires_grad=True, name="W")
    x = Tensor(np.array([[1.0, 3.0]]))
    optimizer = cr.optim.optimizer_from_name(name, [W], 0.1)
    loss = ((x @ W.T) ** 2).sum()
    W.grad = np.ones_like(W.data)
    optimizer.step()
    assert W.version == 1
    kind = {"sgd": "SGD", "adam": "Adam"}.get(name, "Momentum")
    with pytest.raises(
        cr.ChainruleError,
        match=rf"tensor 'W' of shape \(1, 2\) float64 \(seen "
        rf"through a transpose view of it\), kept by the matmul gate .* by "
        rf"{kind}\.step\(\)",
    ):
        loss.backward()


def test_the_training_order_forward_backward_step_raises_nothing():
    rng = np.random.default_rng(0)
    net = cr.nn.TwoLayerNet(4, 5, 3, rng, dtype=np.float64)
    optimizer = cr.optim.Adam(net.parameters(), 0.01)
    X, y = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        loss = cr.losses.softmax_loss(net(X), y) + cr.losses.l2_penalty(net.weights(), 1e-3)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(p.version == 5 for p in net.parameters())


def test_load_state_dict_between_forward_and_backward_is_named():
    rng = np.random.default_rng(0)
    net = cr.nn.LinearClassifier(3, 2, rng, dtype=np.float64)
    loss = cr.losses.svm_loss(net(np.ones((2, 3))), np.array([0, 1]))
    net.load_state_dict(net.state_dict())
    with pytest.raises(cr.ChainruleError, match=r"LinearClassifier\.load_state_dict\(\)"):
        loss.backward()


def test_gates_that_keep_no_input_allow_a_later_change():
    # add, sum, relu, exp, sigmoid, tanh keep shapes or their own output, not their input: the
    # gradient is still the one at the forward point
    x = Tensor(np.array([0.5, -1.0]), requires_grad=True)
    y = (x + 1).sum() + x.exp().sum() + x.relu().sum() + x.sigmoid().sum() + x.tanh().sum()
    at = x.data.copy()
    x.data[...] = 7.0
    x.mark_modified()
    y.backward()
    s = 1 / (1 + np.exp(-at))
    np.testing.assert_allclose(
        x.grad, 1 + np.exp(at) + (at > 0) + s * (1 - s) + 1 - np.tanh(at) ** 2
    )


def test_views_detach_and_wrapping_share_the_record_of_changes():
    W = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    with cr.no_grad():
        flat = W.reshape(-1)  # a view made without a graph still changes with W
    for view in (flat, W.detach(), Tensor(W), W.T, W.T.T.reshape(3, 2)):
        y = (view * Tensor(np.ones(view.shape), requires_grad=True)).sum()  # mul keeps both
        W.mark_modified("a test")
        with pytest.raises(cr.ChainruleError, match="a test"):
            y.backward()
    for copy in (Tensor(W.data.copy()), W.T.reshape(-1)):  # (a transpose flattened: a copy)
        y = (copy * Tensor(np.ones(copy.shape), requires_grad=True)).sum()
        W.mark_modified("a test")
        y.backward()  # a copy does not change with W


def test_plus_equals_makes_a_new_tensor_and_rebinding_data_is_safe():
    x = Tensor(np.array(2.0), requires_grad=True)
    original = x
    y = x * x
    x += 1  # no in-place operators: x is now a new tensor, the graph keeps the old one
    assert x is not original and x.data == 3.0 and original.data == 2.0
    assert original.version == 0
    y.backward()
    assert original.grad == 4.0
    z = Tensor(np.array(2.0), requires_grad=True)
    w = z * z
    z.data = np.array(5.0)  # rebinding: the gate kept the old array
    w.backward()
    assert z.grad == 4.0


# --- gradients are plain arrays, and the engine owns accumulation -----------------------------


def test_every_gradient_is_an_array_formed_at_once_and_kept_by_its_tensor():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, 4))
    W = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = Tensor(rng.standard_normal(3), requires_grad=True)
    up = rng.standard_normal((5, 3))
    cr.affine(Tensor(x), W, b).backward(up)
    for t in (W, b):
        assert type(t.grad) is np.ndarray and t.grad.flags.writeable and t.grad.base is None
    expected = up.T @ x
    np.testing.assert_allclose(W.grad, expected, rtol=1e-14)
    np.testing.assert_allclose(b.grad, up.sum(axis=0), rtol=1e-14)
    x[:] = 0  # the batch overwritten after backward: the gradient was formed and stays
    np.testing.assert_allclose(W.grad, expected, rtol=1e-14)


def test_a_weight_used_twice_and_penalized_sums_every_gradient():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5, 4))
    W = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = Tensor(rng.standard_normal(3), requires_grad=True)
    h = cr.affine_relu(Tensor(x), W, b)
    total = (cr.affine(Tensor(x), W, b) * 2.0).sum() + h.sum() + cr.losses.l2_penalty([W], 0.3)
    total.backward()
    mask = (x @ W.data.T + b.data > 0).astype(float)
    expected = 2.0 * np.ones((5, 3)).T @ x + mask.T @ x + 0.6 * W.data
    np.testing.assert_allclose(W.grad, expected, rtol=1e-13)
    # a second backward without zero_grad adds to the first, through one reused batch buffer
    before, buf = W.grad.copy(), rng.standard_normal((5, 4))
    first = buf.copy()
    cr.affine(Tensor(buf), W, b).sum().backward()
    buf[:] = rng.standard_normal((5, 4))
    cr.affine(Tensor(buf), W, b).sum().backward()
    np.testing.assert_allclose(W.grad, before + np.ones((5, 3)).T @ (first + buf), rtol=1e-13)


@pytest.mark.parametrize(
    "make",
    [
        lambda a, b: (a + b).sum(),  # add: one dout for both inputs
        lambda a, b: (a - b).sum(),
        lambda a, b: a.sum() + b.sum(),  # sum: a read-only broadcast of dout
        lambda a, b: a.reshape(3, 1).sum() + b.T.sum(),  # views of dout
        lambda a, b: (a * 1.0 + b * 1.0).sum() + a.sum(),  # used twice: added out of place
    ],
)
def test_editing_one_leaf_gradient_in_place_cannot_change_another(make):
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    make(a, b).backward()
    others = [b.grad.copy()]
    for t in (a, b):
        assert t.grad.flags.writeable and not np.shares_memory(t.grad, t.data)
    assert not np.shares_memory(a.grad, b.grad)
    a.grad *= 100  # e.g. clipping one gradient by hand
    np.testing.assert_array_equal(b.grad, others[0])
