"""``chainrule graph``: the gates of one training step of a small model, with every tensor's
value and gradient, as a table and drawn as SVG or DOT."""

from __future__ import annotations

import argparse
import json
from typing import Any

from chainrule.app.commands import common

# The fields of a drawn node, in the order ``--json`` prints them.
NODE_FIELDS = ("id", "label", "kind", "inputs", "name", "value", "grad")


HELP = "draw the gates of one training step of a small model (SVG/DOT)"
DESCRIPTION = (
    "Run one training step of a small model on a few 8x8 digits, and print "
    "(and with --svg/--dot/--out draw) every gate from x and the weights through the loss "
    "and the L2 terms to the total loss: each tensor's shape or value and its gradient."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``graph``'s arguments and options."""
    common.add_small_model_options(p, nargs="+", metavar="H", help="default 10 (mlp: 10 10)")
    p.add_argument(
        "--unfused",
        action="store_true",
        help="draw affine and ReLU as two gates, as the lecture does (training fuses them)",
    )
    p.add_argument("--svg", metavar="FILE")
    p.add_argument("--dot", metavar="FILE")
    p.add_argument(
        "--html",
        metavar="FILE",
        help="write an explorer page: step through the step's passes gate by gate in a browser",
    )
    p.add_argument("--out", help="folder for MODEL.svg and MODEL.dot")
    common.add_json(p)


def step(args: argparse.Namespace, explore: bool = False) -> Any:
    """The ``lessons.graph.Graph`` of one training step of the model the options name, on
    --batch rows of the 8x8 digits (X: (batch, 64) float32, pixels / 16 - 0.3); with explore,
    its ``lessons.explorer.Explorer`` (whose ``graph`` is that Graph).
    Raises ConfigError (exit status 2) for a batch outside 1..1797 or a negative --reg."""
    import numpy as np
    from sklearn.datasets import load_digits

    from chainrule.engine.errors import ConfigError
    from chainrule.lessons import graph
    from chainrule.nn import build_model
    from chainrule.nn.losses import LOSSES
    from chainrule.training.config import LINEAR_MODELS, TrainConfig, check_setting

    hidden = args.hidden or ([10, 10] if args.model == "mlp" else [10])
    config = TrainConfig(
        model=args.model, hidden=hidden, activation=args.activation, loss=args.loss
    )
    digits = load_digits()
    if not 1 <= args.batch <= len(digits.target):
        raise ConfigError(f"--batch must be from 1 to {len(digits.target)}, got {args.batch}")
    check_setting("reg", args.reg, "--reg")
    rng = np.random.default_rng(args.seed)
    rows = rng.choice(len(digits.target), size=args.batch, replace=False)
    X = (digits.data[rows] / 16.0 - 0.3).astype(np.float32)
    model = build_model(config.model_config(X.shape[1], 10), config.weights_rng())
    sizes = "64 x 10" if args.model in LINEAR_MODELS else " x ".join(map(str, (64, *hidden, 10)))
    title = (
        f"one training step of {args.model} ({sizes}, {config.loss_name} loss, reg {args.reg:g}) "
        f"on {args.batch} digits"
    )
    loss = LOSSES[config.loss_name]
    if explore:
        from chainrule.lessons import explorer

        return explorer.training_step(
            model, X, digits.target[rows], loss, args.reg, title, args.unfused
        )
    return graph.step_graph(model, X, digits.target[rows], loss, args.reg, title, args.unfused)


def run(args: argparse.Namespace) -> int:
    """Print every gate of the step with its value and gradient (or one JSON object: the title,
    the nodes, the drawings) and write the drawings asked for. Returns 0. Raises ConfigError
    (exit status 2) for a bad option or a missing folder above --svg, --dot, --out or --html,
    OSError (exit status 1) for a file that cannot be written."""
    from pathlib import Path

    from chainrule.lessons import graph

    common.refuse_hidden_layer_options(args)
    outputs = ((args.svg, "--svg"), (args.dot, "--dot"), (args.out, "--out"), (args.html, "--html"))
    common.check_outputs(*outputs)
    shown = step(args, explore=bool(args.html))
    drawn = shown.graph if args.html else shown
    svg, dot = args.svg, args.dot
    if args.out:
        Path(args.out).mkdir(exist_ok=True)
        svg = svg or str(Path(args.out) / f"{args.model}.svg")
        dot = dot or str(Path(args.out) / f"{args.model}.dot")
    drawings = common.write_drawings(drawn, svg, dot)
    if args.html:
        drawings.append(str(shown.save(args.html)))
    if args.json:
        nodes = [{name: getattr(n, name) for name in NODE_FIELDS} for n in drawn.nodes]
        print(json.dumps({"title": drawn.title, "nodes": nodes, "drawings": drawings}))
    else:
        print(graph.table(drawn))
        for path in drawings:
            print(f"drawing: {path}")
    return 0
