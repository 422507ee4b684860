"""Models: parameter names and shapes, gradients of every parameter, state round trips."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.engine.tensor import Tensor
from chainrule.nn.losses import l2_penalty, softmax_loss, svm_loss


def test_two_layer_net_parameters_have_the_cheatsheets_names_and_shapes():
    net = nn.TwoLayerNet(
        input_size=64, hidden_size=100, num_classes=10, rng=np.random.default_rng(0)
    )
    shapes = {name: p.shape for name, p in net.named_parameters()}
    assert shapes == {"W1": (100, 64), "b1": (100,), "W2": (10, 100), "b2": (10,)}
    assert [p.shape for p in net.weights()] == [(100, 64), (10, 100)]
    assert net.W1.dtype == np.float32 and not net.b1.data.any()
    assert net(np.zeros((5, 64), np.float32)).shape == (5, 10)


def test_linear_classifier_is_one_template_per_class():
    clf = nn.LinearClassifier(3072, 10, rng=np.random.default_rng(0))
    assert clf.W.shape == (10, 3072) and clf.b.shape == (10,)
    x = np.random.default_rng(1).standard_normal((4, 3072)).astype(np.float32)
    np.testing.assert_allclose(clf(x).data, x @ clf.W.data.T + clf.b.data, rtol=1e-5)


def test_mlp_layers():
    mlp = nn.MLP([5, 7, 6, 3], rng=np.random.default_rng(0), activation=nn.Tanh())
    assert [name for name, _ in mlp.named_parameters()] == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert mlp.W2.shape == (6, 7) and mlp.num_layers == 3
    assert [h.shape for h in mlp.hidden_activations(np.ones((2, 5), np.float32))] == [
        (2, 7),
        (2, 6),
    ]


def test_init_scale_is_he_for_relu_and_lecun_otherwise():
    rng = np.random.default_rng(0)
    relu = nn.TwoLayerNet(2000, 500, 10, rng=rng)
    tanh = nn.TwoLayerNet(2000, 500, 10, rng=rng, activation=nn.Tanh())
    assert relu.W1.data.std() == pytest.approx(np.sqrt(2 / 2000), rel=0.02)
    assert tanh.W1.data.std() == pytest.approx(np.sqrt(1 / 2000), rel=0.02)
    assert relu.W2.data.std() == pytest.approx(np.sqrt(1 / 500), rel=0.05)


def test_same_rng_seed_gives_the_same_model():
    a = nn.MLP([4, 8, 3], rng=np.random.default_rng(7))
    b = nn.MLP([4, 8, 3], rng=np.random.default_rng(7))
    for (_, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data)


MODELS = {
    "linear": lambda rng: nn.LinearClassifier(6, 4, rng, dtype=np.float64),
    "two-layer-relu": lambda rng: nn.TwoLayerNet(6, 5, 4, rng, dtype=np.float64),
    "two-layer-sigmoid": lambda rng: nn.TwoLayerNet(6, 5, 4, rng, nn.Sigmoid(), dtype=np.float64),
    "mlp-tanh": lambda rng: nn.MLP([6, 5, 5, 4], rng, nn.Tanh(), dtype=np.float64),
}


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("loss", [softmax_loss, svm_loss])
def test_every_parameter_passes_gradcheck(name, loss):
    rng = np.random.default_rng(3)
    model = MODELS[name](rng)
    X = rng.standard_normal((7, 6))
    y = rng.integers(0, 4, size=7)
    names = [n for n, _ in model.named_parameters()]
    params = [p.data for _, p in model.named_parameters()]
    # gradcheck swaps the parameters for its own float64 leaves; put the originals back after
    originals = {n: getattr(model, n) for n in names}
    try:
        report = cr.gradcheck(_with_params(model, names, loss, X, y), params, names=names)
    finally:
        for n, p in originals.items():
            setattr(model, n, p)
    assert report.ok, report.table()
    assert [c.name for c in report.inputs] == names


def _with_params(model, names, loss, X, y):
    def f(*tensors):
        for n, t in zip(names, tensors):
            setattr(model, n, t)
        return loss(model(Tensor(X)), y) + l2_penalty([t for t in tensors if t.ndim >= 2], 0.1)

    return f


def test_without_a_nonlinearity_two_layers_are_one_linear_layer():
    rng = np.random.default_rng(0)
    net = nn.TwoLayerNet(8, 16, 3, rng, nn.Identity(), dtype=np.float64)
    W = net.W2.data @ net.W1.data
    b = net.W2.data @ net.b1.data + net.b2.data
    X = rng.standard_normal((20, 8))
    np.testing.assert_allclose(net(X).data, X @ W.T + b, atol=1e-12)


def test_sequential_fuses_linear_relu_and_matches_the_unfused_result():
    rng = np.random.default_rng(0)
    lin1, lin2 = nn.Linear(4, 6, rng, dtype=np.float64), nn.Linear(6, 2, rng, dtype=np.float64)
    seq = nn.Sequential(lin1, nn.ReLU(), lin2)
    X = rng.standard_normal((5, 4))
    expected = np.maximum(X @ lin1.W.data.T + lin1.b.data, 0) @ lin2.W.data.T + lin2.b.data
    out = seq(X)
    np.testing.assert_allclose(out.data, expected)
    assert [n for n, _ in seq.named_parameters()] == [
        "layers.0.W",
        "layers.0.b",
        "layers.2.W",
        "layers.2.b",
    ]
    out.sum().backward()
    assert lin1.W.grad.shape == (6, 4)


def test_state_dict_round_trip_and_mismatch():
    rng = np.random.default_rng(0)
    a, b = nn.TwoLayerNet(4, 5, 3, rng), nn.TwoLayerNet(4, 5, 3, rng)
    b.load_state_dict(a.state_dict())
    X = rng.standard_normal((6, 4)).astype(np.float32)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    with pytest.raises(cr.ShapeError, match="missing"):
        b.load_state_dict({"W1": a.W1.data})
    bad = a.state_dict()
    bad["W1"] = np.zeros((5, 5), np.float32)
    with pytest.raises(cr.ShapeError, match=r"parameter W1: expected shape \(5, 4\)"):
        b.load_state_dict(bad)
    # a mismatch in the last parameter changes none of the others
    before = b.state_dict()
    bad = nn.TwoLayerNet(4, 5, 3, rng).state_dict()
    bad["b2"] = np.zeros(7, np.float32)
    with pytest.raises(cr.ShapeError, match="parameter b2"):
        b.load_state_dict(bad)
    for name, value in b.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_config_rebuilds_the_same_architecture():
    rng = np.random.default_rng(0)
    for model in (
        nn.LinearClassifier(4, 3, rng),
        nn.TwoLayerNet(4, 5, 3, rng, nn.Tanh()),
        nn.MLP([4, 6, 5, 3], rng, nn.Sigmoid()),
    ):
        rebuilt = nn.build_model(model.config())
        assert type(rebuilt) is type(model)
        assert rebuilt.config() == model.config()
        rebuilt.load_state_dict(model.state_dict())
    with pytest.raises(cr.ConfigError, match="unknown activation 'swish'"):
        nn.build_model(
            {
                "class": "TwoLayerNet",
                "input_size": 1,
                "hidden_size": 1,
                "num_classes": 2,
                "activation": "swish",
            }
        )


def test_predict_checks_the_input_size():
    net = nn.TwoLayerNet(4, 5, 3, np.random.default_rng(0))
    with pytest.raises(
        cr.ShapeError, match="the model takes rows of 4 features, got data of shape"
    ):
        net.predict(np.zeros((2, 5), np.float32))
    assert net.predict(np.zeros((2500, 4), np.float32)).shape == (2500,)
