"""``chainrule collapse``: without a non-linearity two layers are one; with ReLU they are not;
a linear classifier and a 2-layer net on the 2-D spiral show it."""

from __future__ import annotations

import argparse
import json
from typing import Any

from chainrule.app.commands import common

HELP = "why a net needs its non-linearity: collapse, ReLU, and the spiral"
DESCRIPTION = (
    "Show that two linear layers are one (W' = W2 W1, b' = W2 b1 + b2), that "
    "ReLU between them breaks this, and train a linear classifier and a 2-layer net on a "
    "2-D spiral of 3 classes; save both decision regions as a PNG."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``collapse``'s arguments and options."""
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--epochs", type=int, default=200, help="epochs on the spiral, both models (default 200)"
    )
    p.add_argument("--out", help="the figure's path, or a folder for spiral.png (default ./)")
    common.add_json(p, "print one JSON object")


def run(args: argparse.Namespace) -> int:
    """Compute the collapse, train both models on the spiral, save the figure; print the lesson
    with its numbers (or one JSON object). Returns 0. Raises ConfigError (exit status 2) when
    the folder above --out is missing."""
    import numpy as np

    from chainrule.lessons import collapse

    path = common.figure_path(args.out, "spiral.png")
    rng = np.random.default_rng(args.seed)
    collapsed = collapse.collapse(rng)
    settings = collapse.SpiralSettings(epochs=args.epochs)
    spiral = collapse.spiral(rng, settings)
    path.parent.mkdir(exist_ok=True)
    figure = collapse.plot_regions(spiral, path)
    if args.json:
        print(
            json.dumps(
                {
                    "collapse_max_diff": collapsed.max_diff,
                    "collapse_linear_fit_residual": collapsed.identity_residual,
                    "relu_linear_fit_residual": collapsed.relu_residual,
                    "spiral_linear_accuracy": spiral.linear_accuracy,
                    "spiral_two_layer_accuracy": spiral.net_accuracy,
                    "spiral_settings": settings.describe(),
                    "spiral_seconds": spiral.seconds,
                    "figure": str(figure),
                }
            )
        )
    else:
        print(lesson(collapsed, spiral, settings, figure))
    return 0


def lesson(collapsed: Any, spiral: Any, settings: Any, figure: Any) -> str:
    """The lesson in three numbered parts, with the numbers of ``collapse.collapse`` (W: (K, D)),
    ``collapse.spiral`` and the figure's path."""
    K, D = collapsed.W.shape
    return (
        "1. No non-linearity: s = W2 (W1 x + b1) + b2 is one linear layer s = W' x + b'\n"
        f"   with W' = W2 W1 ({K} x {D}) and b' = W2 b1 + b2 ({K}). Random float64 weights,\n"
        f"   {collapsed.n_points} random inputs: max |two-layer scores - one-layer scores| = "
        f"{collapsed.max_diff:.1e}\n"
        "   (float64 round-off)\n"
        f"   best single linear layer (least squares): relative residual "
        f"{collapsed.identity_residual:.1e}\n"
        "2. ReLU between the same layers: the best single linear layer now leaves a relative\n"
        f"   residual of {collapsed.relu_residual:.3f} (0 = an exact fit, 1 = no better than a "
        "constant)\n"
        "3. CS231n's 2-D spiral of 3 classes, both models trained alike:\n"
        f"   {settings.describe()}\n"
        f"   linear softmax classifier: training accuracy {spiral.linear_accuracy:.3f}\n"
        f"   2-layer net, {settings.hidden_size} ReLU units: training accuracy "
        f"{spiral.net_accuracy:.3f}\n"
        f"   figure: {figure}"
    )
