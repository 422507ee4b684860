"""``chainrule gradcheck``: every parameter of a small model against finite differences."""

from __future__ import annotations

import argparse
import json

from chainrule.app.commands import common

HELP = "check every parameter of a small model against finite differences"
DESCRIPTION = (
    "Build a small model on a few rows of the 8x8 digits in float64, compute the "
    "analytic gradient of every parameter with one backward pass, and compare it with "
    "centred differences."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``gradcheck``'s arguments and options."""
    common.add_small_model_options(p, default=10)
    common.add_json(p)


def run(args: argparse.Namespace) -> int:
    """Print the check's table (or one JSON object). Returns 0 when every parameter passes, 1
    when one does not. Raises ConfigError (exit status 2) for a batch outside 1..200, a negative
    --reg, --hidden below 1, or --hidden/--activation with a linear model."""
    from chainrule.app import modelcheck
    from chainrule.engine.errors import ConfigError
    from chainrule.training.config import TrainConfig, check_setting

    common.refuse_hidden_layer_options(args)
    if not 1 <= args.batch <= 200:
        raise ConfigError(f"--batch must be between 1 and 200 examples, got {args.batch}")
    check_setting("reg", args.reg, "--reg")
    if args.hidden < 1:
        raise ConfigError(f"--hidden must be a positive integer, got {args.hidden}")
    config = TrainConfig(
        model=args.model, hidden=[args.hidden], activation=args.activation, loss=args.loss
    )
    report = modelcheck.check_model(config, batch=args.batch, reg=args.reg, seed=args.seed)
    if args.json:
        print(json.dumps(modelcheck.report_json(report)))
    else:
        print(report.table())
    return 0 if report.ok else 1
