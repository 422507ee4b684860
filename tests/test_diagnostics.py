"""Training diagnostics: recorded every epoch, and warnings when a value leaves its range."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest

from chainrule import nn
from chainrule.nn import optim
from chainrule.training import diagnostics
from chainrule.training.loop import fit


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


def test_a_decayed_learning_rate_is_not_called_too_low():
    # the last epoch of a cosine schedule trains at ~1e-3 of the base rate on purpose
    small = {"update_ratio/W1": 2e-6}
    assert diagnostics.warnings_for(small, epoch=50, lr_factor=1e-3) == []
    (line,) = diagnostics.warnings_for(small, epoch=50)
    assert line.endswith("the learning rate is likely too low")
    # too high is judged on the update itself, whatever the schedule
    assert diagnostics.warnings_for({"update_ratio/W1": 0.5}, epoch=2, lr_factor=1e-3)


def test_cosine_decay_to_zero_warns_about_nothing():
    model = nn.TwoLayerNet(6, 16, 3, np.random.default_rng(0))
    lines = []
    fit(
        model,
        data(),
        optimizer=optim.SGD(model.parameters(), 1e-2),
        epochs=30,
        batch_size=32,
        schedule=optim.CosineDecay(30),
        progress=False,
        log=lines.append,
    )
    assert lines == []


def test_each_kind_of_warning_is_logged_once_and_counted_at_the_end():
    model = nn.TwoLayerNet(6, 16, 3, np.random.default_rng(0))
    lines = []
    history = fit(
        model,
        data(),
        optimizer=optim.SGD(model.parameters(), 5.0),
        epochs=8,
        batch_size=32,
        progress=False,
        log=lines.append,
    )
    per_epoch = [diagnostics.warnings_for(r.diagnostics, r.epoch) for r in history.epochs]
    kinds = diagnostics.warning_kinds(history, 5.0)
    assert sum(map(len, per_epoch)) > len(kinds) >= 1  # repeated across epochs...
    assert len(lines) == len(kinds)  # ...but logged once per kind
    assert all(line.endswith("(shown once)") for line in lines)
    summary = diagnostics.summarize_warnings(history, 5.0)
    assert len(summary) == len(kinds)
    counts = sorted(int(re.search(r" in (\d+) of 8 epochs", line)[1]) for line in summary)
    assert counts == sorted(
        sum(
            any(w.kind == k for w in diagnostics.health_warnings(r.diagnostics))
            for r in history.epochs
        )
        for k in kinds
    )
    assert all(" of 8 epochs (first in epoch " in line for line in summary)


def test_a_model_whose_relus_are_all_dead_gets_a_final_warning():
    rng = np.random.default_rng(0)
    net = nn.MLP([4, 10, 6, 2], rng)
    X = np.ones((7, 4), np.float32)
    assert diagnostics.final_warnings(net, X) == []
    net.b1.data[:] = -100.0  # nothing passes the first layer, so nothing reaches the second
    lines = diagnostics.final_warnings(net, X)
    assert len(lines) == 2
    assert lines[0].startswith("every ReLU in hidden layer 1 of the kept model is dead")
    assert "same class" in lines[0] and "7 validation images" in lines[0]
