"""The collapse lesson and the spiral: exact numbers where the maths gives them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from chainrule import nn
from chainrule.app.cli import main
from chainrule.lessons import collapse


def test_two_linear_layers_are_one_to_float64_round_off():
    result = collapse.collapse(np.random.default_rng(0))
    assert result.max_diff < 1e-10
    assert result.identity_residual < 1e-10  # some single linear layer fits exactly
    assert result.W.shape == (3, 8) and result.b.shape == (3,)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_relu_between_the_layers_breaks_the_collapse(seed):
    result = collapse.collapse(np.random.default_rng(seed))
    assert result.relu_residual > 0.1


def test_collapsed_layer_is_w2_w1_and_w2_b1_plus_b2():
    rng = np.random.default_rng(3)
    result = collapse.collapse(rng, input_size=2, hidden_size=3, num_classes=2, n_points=50)
    # Rebuild the same net from the same seed and check W' and b' by hand.
    rng = np.random.default_rng(3)
    net = collapse._random_net(2, 3, 2, rng, nn.Identity())
    W1, b1, W2, b2 = (p.data for p in net.parameters())
    np.testing.assert_allclose(result.W, W2 @ W1)
    np.testing.assert_allclose(result.b, W2 @ b1 + b2)


def test_linear_fit_residual_is_zero_for_linear_and_one_for_unrelated_scores():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 4))
    S = X @ rng.standard_normal((4, 3)) + rng.standard_normal(3)
    assert collapse.linear_fit_residual(X, S) < 1e-12
    noise = rng.standard_normal((500, 3))
    assert collapse.linear_fit_residual(X, noise) > 0.95


def test_spiral_is_cs231n_spiral():
    X, y = collapse.make_spiral(100, 3, np.random.default_rng(0))
    assert X.shape == (300, 2) and y.shape == (300,)
    assert np.bincount(y).tolist() == [100, 100, 100]
    radius = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(radius[:100], np.linspace(0, 1, 100), atol=1e-12)
    X2, _ = collapse.make_spiral(100, 3, np.random.default_rng(0))
    np.testing.assert_array_equal(X, X2)


@pytest.fixture(scope="module")
def spiral():
    settings = collapse.SpiralSettings(epochs=120)
    return collapse.spiral(np.random.default_rng(0), settings)


def test_a_linear_classifier_cannot_fit_the_spiral_but_a_two_layer_net_can(spiral):
    assert spiral.linear_accuracy < 0.7
    assert spiral.net_accuracy > 0.9


def test_decision_regions_figure(spiral, tmp_path):
    path = collapse.plot_regions(spiral, tmp_path / "spiral.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_collapse_json(tmp_path, capsys):
    assert main(["collapse", "--json", "--out", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["collapse_max_diff"] < 1e-10
    assert out["relu_linear_fit_residual"] > 0.1
    assert out["spiral_linear_accuracy"] < 0.7
    assert out["spiral_two_layer_accuracy"] > 0.9
    assert out["figure"] == str(tmp_path / "spiral.png")
    assert (tmp_path / "spiral.png").is_file()


def test_cli_collapse_text_names_the_numbers(tmp_path, capsys):
    # few epochs: the text is under test here, not the accuracies
    assert main(["collapse", "--epochs", "5", "--out", str(tmp_path / "fig.png")]) == 0
    text = capsys.readouterr().out
    assert "W' = W2 W1" in text and "relative residual" in text
    assert "200 epochs" not in text and "5 epochs" in text
    assert "training accuracy" in text
    assert (tmp_path / "fig.png").is_file()
