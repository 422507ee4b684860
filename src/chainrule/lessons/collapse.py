"""Why a net needs its non-linearity, shown with numbers and one picture.

1. Collapse: s = W2 (W1 x + b1) + b2 is one linear layer, W' = W2 W1 and b' = W2 b1 + b2. Stacking
   linear layers adds no power: the two give the same scores to float64 round-off.
2. Put ReLU between them and no single linear layer fits the scores any more: the best one (least
   squares, with a bias) leaves a residual far from 0.
3. On CS231n's 2-D spiral of 3 classes, a linear classifier gets about half the points right (its
   regions are wedges cut by straight lines); a 2-layer net with ReLU gets nearly all of them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import nn
from chainrule.nn import optim
from chainrule.nn.losses import softmax_loss
from chainrule.training.loop import Splits, evaluate, fit


@dataclass
class Collapse:
    """The numbers of lessons 1 and 2.

    max_diff: max |two-layer scores - one-layer scores| with identity in between (float64).
    identity_residual / relu_residual: relative residual of the best single linear layer
    fitted to the two-layer scores, with the identity and with ReLU in between.
    W, b: the collapsed layer W' (K, D) = W2 W1 and b' (K,) = W2 b1 + b2.
    n_points: how many random inputs the scores were compared on.
    """

    max_diff: float
    identity_residual: float
    relu_residual: float
    W: np.ndarray
    b: np.ndarray
    n_points: int


def _random_net(
    input_size: int, hidden_size: int, num_classes: int, rng: np.random.Generator, activation: Any
) -> nn.TwoLayerNet:
    net = nn.TwoLayerNet(
        input_size, hidden_size, num_classes, rng, activation=activation, dtype=np.float64
    )
    # random biases too (they start at 0), so that b' = W2 b1 + b2 is put to the test
    net.b1.data[...] = rng.standard_normal(hidden_size)
    net.b2.data[...] = rng.standard_normal(num_classes)
    return net


def linear_fit_residual(X: np.ndarray, S: np.ndarray) -> float:
    """How far the scores S (N, K) are from any linear function of the inputs X (N, D).

    Fits S ~ X A + c by least squares and returns ||S - fit|| / ||S - mean(S)|| (Frobenius):
    0 when some single linear layer reproduces S exactly, 1 when none does better than a constant.
    """
    A = np.hstack([X, np.ones((len(X), 1))])  # the column of ones is the bias
    coef, *_ = np.linalg.lstsq(A, S, rcond=None)
    return float(np.linalg.norm(S - A @ coef) / np.linalg.norm(S - S.mean(axis=0)))


def collapse(
    rng: np.random.Generator,
    input_size: int = 8,
    hidden_size: int = 32,
    num_classes: int = 3,
    n_points: int = 4000,
) -> Collapse:
    """Lessons 1 and 2 on a random net (float64) and n_points random inputs (n_points, D).

    input_size D, hidden_size H, num_classes K: the net's sizes (W1 [H x D], W2 [K x H]); the
    weights, biases and inputs are drawn from ``rng``. Returns the numbers as a Collapse."""
    net = _random_net(input_size, hidden_size, num_classes, rng, nn.Identity())
    X = rng.standard_normal((n_points, input_size))
    W1, b1, W2, b2 = (p.data for p in net.parameters())
    W = W2 @ W1  # (K, H) @ (H, D) -> (K, D)
    b = W2 @ b1 + b2
    two_layer = net.scores(X)
    one_layer = X @ W.T + b
    max_diff = float(np.max(np.abs(two_layer - one_layer)))
    identity_residual = linear_fit_residual(X, two_layer)

    # Same weights, ReLU in between.
    relu_net = _random_net(input_size, hidden_size, num_classes, rng, nn.ReLU())
    relu_net.load_state_dict(net.state_dict())
    relu_residual = linear_fit_residual(X, relu_net.scores(X))
    return Collapse(max_diff, identity_residual, relu_residual, W, b, n_points)


def make_spiral(
    n_per_class: int, num_classes: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """CS231n's spiral: X (N, 2) float64, y (N,) int64, N = n_per_class * num_classes.

    Class j is an arm: radius r from 0 to 1, angle t from 4j to 4(j + 1) plus noise (std 0.2).
    """
    X = np.zeros((n_per_class * num_classes, 2))
    y = np.zeros(n_per_class * num_classes, dtype=np.int64)
    for j in range(num_classes):
        ix = slice(n_per_class * j, n_per_class * (j + 1))
        r = np.linspace(0.0, 1, n_per_class)
        t = np.linspace(j * 4, (j + 1) * 4, n_per_class) + rng.standard_normal(n_per_class) * 0.2
        X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        y[ix] = j
    return X, y


@dataclass
class SpiralSettings:
    """How both spiral classifiers are trained (softmax loss, SGD with momentum 0.9)."""

    n_per_class: int = 100
    num_classes: int = 3
    hidden_size: int = 100
    epochs: int = 200
    batch_size: int = 32
    linear_lr: float = 0.1
    net_lr: float = 0.1
    reg: float = 1e-3

    def describe(self) -> str:
        """The settings as one line, for the command's report."""
        return (
            f"{self.n_per_class * self.num_classes} points, softmax loss, momentum 0.9, "
            f"batch {self.batch_size}, {self.epochs} epochs, reg {self.reg:g}; "
            f"linear lr {self.linear_lr:g}; net: {self.hidden_size} ReLU units, lr {self.net_lr:g}"
        )


@dataclass
class Spiral:
    """Lesson 3: the data, both trained models and their accuracies on the training points."""

    X: np.ndarray
    y: np.ndarray
    linear: nn.LinearClassifier
    net: nn.TwoLayerNet
    linear_accuracy: float
    net_accuracy: float
    seconds: float


def spiral(rng: np.random.Generator, settings: SpiralSettings | None = None) -> Spiral:
    """Train a linear softmax classifier and a 2-layer ReLU net on the spiral (float64).

    The question is what each model CAN fit, so both are scored on the points they were trained
    on (the validation split fit() watches is the training data itself). settings: sizes and
    training settings (SpiralSettings() by default); rng: the data's, weights' and batches'
    randomness. Raises what ``fit`` raises (e.g. DivergenceError for a learning rate far too
    high).
    """
    s = settings or SpiralSettings()
    start = time.perf_counter()
    X, y = make_spiral(s.n_per_class, s.num_classes, rng)
    data = Splits(X, y, X, y)
    linear = nn.LinearClassifier(2, s.num_classes, rng, weight_scale=0.01, dtype=np.float64)
    net = nn.TwoLayerNet(2, s.hidden_size, s.num_classes, rng, dtype=np.float64)
    for model, lr in ((linear, s.linear_lr), (net, s.net_lr)):
        fit(
            model,
            data,
            loss=softmax_loss,
            optimizer=optim.Momentum(model.parameters(), lr),
            epochs=s.epochs,
            batch_size=s.batch_size,
            reg=s.reg,
            rng=rng,
            progress=False,
        )
    return Spiral(
        X,
        y,
        linear,
        net,
        evaluate(linear, X, y),
        evaluate(net, X, y),
        time.perf_counter() - start,
    )


CLASS_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


def plot_regions(result: Spiral, path: str | Path) -> Path:
    """Both models' decision regions side by side, with the points coloured by class; a PNG
    written atomically at ``path`` (returned). Raises OSError where it cannot be written."""
    from chainrule.lessons import plots  # matplotlib (Agg) imports slowly: only when drawing

    plt = plots.plt
    X, y = result.X, result.y
    k = int(y.max()) + 1
    panels = (
        (
            result.linear,
            f"linear softmax classifier\ntraining accuracy {result.linear_accuracy:.2f}",
        ),
        (
            result.net,
            f"2-layer net ({result.net.sizes[1]} ReLU units)\n"
            f"training accuracy {result.net_accuracy:.2f}",
        ),
    )
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.6))
    for ax, (model, title) in zip(axes, panels):
        _regions(ax, model, X, y, k)
        ax.set_title(title)
    handles = [
        plt.Line2D([], [], marker="o", ls="", color=CLASS_COLOURS[j], label=f"class {j}")
        for j in range(k)
    ]
    fig.legend(handles=handles, loc="lower center", ncol=k, frameon=False)
    fig.suptitle("the spiral: straight boundaries vs a 2-layer net")
    fig.subplots_adjust(bottom=0.1)
    return plots.save_figure(fig, path)


def _regions(ax: Any, model: nn.Module, X: np.ndarray, y: np.ndarray, k: int) -> None:
    """One panel: the class ``model`` predicts on a 300 x 300 grid over the points X (N, 2),
    shaded, and the points coloured by their class y (N,) of k."""
    from matplotlib.colors import ListedColormap

    colours = ListedColormap(CLASS_COLOURS[:k])
    low, high = X.min(axis=0) - 0.15, X.max(axis=0) + 0.15
    xx, yy = np.meshgrid(np.linspace(low[0], high[0], 300), np.linspace(low[1], high[1], 300))
    regions = model.predict(np.c_[xx.ravel(), yy.ravel()]).reshape(xx.shape)
    ax.contourf(xx, yy, regions, levels=np.arange(k + 1) - 0.5, cmap=colours, alpha=0.3)
    ax.scatter(
        X[:, 0],
        X[:, 1],
        c=y,
        cmap=colours,
        vmin=-0.5,
        vmax=k - 0.5,
        s=14,
        edgecolors="black",
        linewidths=0.3,
    )
    ax.set(xlim=(low[0], high[0]), ylim=(low[1], high[1]), aspect="equal")
    ax.set_xticks([])
    ax.set_yticks([])
