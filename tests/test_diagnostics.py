"""Training diagnostics: recorded every epoch, and warnings when a value leaves its range."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from chainrule import diagnostics, nn, optim
from chainrule.train import fit


def data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((200, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)
    return SimpleNamespace(X_train=X[:160], y_train=y[:160], X_val=X[160:], y_val=y[160:])


def test_every_epoch_records_ratios_norms_and_unit_health():
    model = nn.TwoLayerNet(6, 16, 3, np.random.default_rng(0))
    lines = []
    history = fit(
        model,
        data(),
        optimizer=optim.SGD(model.parameters(), 1e-2),
        epochs=3,
        batch_size=32,
        progress=False,
        log=lines.append,
    )
    for record in history.epochs:
        keys = set(record.diagnostics)
        assert {
            "update_ratio/W1",
            "update_ratio/W2",
            "grad_norm/W1",
            "grad_norm/b2",
            "dead_relu/1",
        } <= keys
        assert "update_ratio/b1" not in keys  # biases start at 0: their ratio says nothing
        assert 1e-5 < record.diagnostics["update_ratio/W1"] < 1e-1
        assert 0 <= record.diagnostics["dead_relu/1"] <= 1
    assert lines == []  # a healthy run warns about nothing


def test_update_ratio_is_lr_times_gradient_over_weight_for_sgd():
    W = np.array([[3.0, 4.0]])
    after = W - 0.1 * np.array([[0.3, 0.4]])
    ratios = diagnostics.update_ratios(["W"], [W], [after])
    assert ratios["update_ratio/W"] == pytest.approx(0.1 * 0.5 / 5.0)


def test_a_too_high_learning_rate_warns():
    model = nn.TwoLayerNet(6, 16, 3, np.random.default_rng(0))
    lines = []
    with np.errstate(all="ignore"):
        fit(
            model,
            data(),
            optimizer=optim.SGD(model.parameters(), 5.0),
            epochs=2,
            batch_size=32,
            progress=False,
            log=lines.append,
        )
    assert any("learning rate is likely too high" in line for line in lines)


def test_dead_relus_and_saturation_are_counted():
    rng = np.random.default_rng(0)
    relu = nn.TwoLayerNet(4, 10, 2, rng)
    relu.b1.data[:] = -100.0  # every unit off for every input: all dead
    assert diagnostics.unit_health(relu, np.ones((5, 4), np.float32)) == {"dead_relu/1": 1.0}
    tanh = nn.TwoLayerNet(4, 10, 2, rng, nn.Tanh())
    tanh.b1.data[:] = 50.0
    assert diagnostics.unit_health(tanh, np.ones((5, 4), np.float32)) == {"saturated/1": 1.0}
    lines = diagnostics.warnings_for({"dead_relu/1": 1.0, "saturated/2": 0.9}, epoch=4)
    assert lines[0].startswith("warning: epoch 4: 100% of the ReLUs in hidden layer 1 are dead")
    assert "90% of the units in hidden layer 2 are saturated" in lines[1]
    assert diagnostics.unit_health(nn.LinearClassifier(4, 2, rng), np.ones((2, 4))) == {}
