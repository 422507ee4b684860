"""The command line: ``chainrule SUBCOMMAND ...`` (also ``python -m chainrule``).

Strings from the command line become library objects here and nowhere else. Errors we raise on
purpose print as one line; exit status 2 for a usage error (a bad option, name or expression),
1 for a failure at run time (missing or corrupt data, divergence). ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from chainrule.errors import ChainruleError, ConfigError, ExpressionError

USAGE_ERRORS = (ConfigError, ExpressionError)


def cmd_circuit(args: argparse.Namespace) -> int:
    """Run an expression through the gate engine and print the forward and backward passes."""
    from chainrule import circuit

    values = circuit.parse_assignments(args.values)
    result = circuit.run(args.expression, values)
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(result.table())
    return 0


def _progress_enabled(args: argparse.Namespace) -> bool:
    return not (args.quiet or args.json)


def _print_summary(summary: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary))
        return
    print(
        f"{summary['model']} on {summary['dataset']}: test accuracy {summary['test_accuracy']:.4f}"
        f" (best validation {summary['val_accuracy']:.4f} at epoch {summary['best_epoch']} of "
        f"{summary['epochs']}); {summary['seconds']:.1f} s training"
    )
    print(f"run folder: {summary['run_dir']}")
    for path in summary.get("figures", []):
        print(f"  figure: {path}")


def cmd_train(args: argparse.Namespace) -> int:
    """Train a classifier and write its run folder."""
    from datetime import datetime

    from chainrule import experiment

    if args.resume:
        out = args.resume
        config = None
    else:
        config = experiment.TrainConfig(
            dataset=args.dataset,
            data_dir=args.data_dir,
            root=args.root,
            model=args.model,
            hidden=args.hidden,
            activation=args.activation,
            loss=args.loss,
            optimizer=args.optimizer,
            lr=args.lr,
            lr_decay=args.lr_decay,
            reg=args.reg,
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=args.seed,
            val_size=args.val_size,
            standardize=args.standardize,
            max_train=args.max_train,
            max_test=args.max_test,
            augment=args.augment,
        )
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        out = args.out or f"runs/{args.dataset}-{args.model}-{stamp}"
    try:
        summary = experiment.train_run(
            config or experiment.TrainConfig(),
            out,
            resume=bool(args.resume),
            progress=_progress_enabled(args),
            log=lambda line: print(line, file=sys.stderr),
        )
    except experiment.TrainingInterrupted as e:
        print(f"chainrule train: {e}", file=sys.stderr)
        return 130
    _print_summary(summary, args.json)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a saved run's model again."""
    from chainrule import experiment

    result = experiment.evaluate_run(args.run, args.data_dir)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['run_dir']}: test accuracy {result['test_accuracy']:.4f} on "
            f"{result['n_test']} {result['dataset']} images "
            f"(validation {result['val_accuracy']:.4f})"
        )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Classify image files with a saved run's model."""
    from chainrule import experiment

    results = experiment.predict_images(args.run, args.images)
    if args.json:
        print(json.dumps(results))
    else:
        for r in results:
            others = ", ".join(f"{t['class']} {t['probability']:.2f}" for t in r["top3"][1:])
            print(f"{r['image']}: {r['class']} ({r['probability']:.2f}; then {others})")
    return 0


def cmd_gradcheck(args: argparse.Namespace) -> int:
    """Check every parameter of a small model against finite differences."""
    from chainrule import experiment, modelcheck

    config = experiment.TrainConfig(
        model=args.model, hidden=[args.hidden], activation=args.activation, loss=args.loss
    )
    report = modelcheck.check_model(config, batch=args.batch, reg=args.reg, seed=args.seed)
    if args.json:
        print(json.dumps(modelcheck.report_json(report)))
    else:
        print(report.table())
    return 0 if report.ok else 1


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error printed as one line (plus where to find help), not the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n(see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = _Parser(
        prog="chainrule",
        description="Backpropagation from first principles: gates, gradients and classifiers.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "circuit",
        help="forward and backward pass of an expression, gate by gate",
        description="Build EXPR as a circuit of gates, run it forward with the given values, then "
        "backward, and print every gate's value and gradient. Example: "
        'chainrule circuit "(x+y)*z" x=-2 y=5 z=-4',
    )
    p.add_argument("expression", help="e.g. '(x+y)*z'; + - * / **, exp log relu sigmoid tanh max")
    p.add_argument("values", nargs="*", metavar="NAME=VALUE", help="a value for each variable")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=cmd_circuit)

    from chainrule import data as datasets
    from chainrule import experiment, optim

    defaults = experiment.TrainConfig()
    p = sub.add_parser(
        "train",
        help="train a classifier and write a run folder (default: 2-layer net on the 8x8 digits)",
        description="Train a classifier with mini-batch gradient descent; write config.json, "
        "metrics.csv, model.safetensors (best-validation weights) and PNG figures to a run "
        "folder, and print the test accuracy.",
    )
    p.add_argument("--dataset", default=defaults.dataset, choices=datasets.DATASETS)
    p.add_argument("--data-dir", help="folder to look in for the data files first")
    p.add_argument("--root", help="folder or archive of an image-folder dataset")
    p.add_argument("--model", default=defaults.model, choices=experiment.MODELS)
    p.add_argument(
        "--hidden",
        type=int,
        nargs="+",
        default=defaults.hidden,
        metavar="H",
        help="hidden layer size (several for --model mlp); default 100",
    )
    p.add_argument(
        "--activation", default=defaults.activation, choices=("relu", "sigmoid", "tanh", "identity")
    )
    p.add_argument(
        "--loss", choices=("softmax", "svm"), help="for two-layer and mlp (default softmax)"
    )
    p.add_argument("--optimizer", default=defaults.optimizer, choices=optim.OPTIMIZERS)
    p.add_argument("--lr", type=float, default=defaults.lr, help="learning rate (default 0.05)")
    p.add_argument(
        "--lr-decay",
        default=defaults.lr_decay,
        help="learning-rate factor per epoch, e.g. 0.95, or 'cosine' (default 1.0)",
    )
    p.add_argument("--reg", type=float, default=defaults.reg, help="L2 strength (default 1e-3)")
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument(
        "--val-size",
        type=float,
        default=defaults.val_size,
        help="validation split: a fraction of the training data, or a count",
    )
    p.add_argument(
        "--standardize",
        action="store_true",
        help="divide each feature by its training std as well as centring it",
    )
    p.add_argument("--max-train", type=int, help="use at most this many training images")
    p.add_argument("--max-test", type=int, help="use at most this many test images")
    p.add_argument(
        "--augment",
        default="none",
        choices=experiment.AUGMENTATIONS,
        help="make each training batch anew: flip = mirror a random half",
    )
    p.add_argument("--out", help="the run folder (default runs/DATASET-MODEL-TIME)")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this folder")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="score a saved run's model on its test split again")
    p.add_argument("run", help="a run folder written by chainrule train")
    p.add_argument("--data-dir", help="folder to look in for the data files first")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify your own image files with a saved run's model")
    p.add_argument("run", help="a run folder (or its model.safetensors)")
    p.add_argument("images", nargs="+", help="PNG or JPEG files of the model's image size")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "gradcheck",
        help="check every parameter of a small model against finite differences",
        description="Build a small model on a few rows of the 8x8 digits in float64, compute the "
        "analytic gradient of every parameter with one backward pass, and compare it with "
        "centred differences.",
    )
    p.add_argument("--model", default="two-layer", choices=experiment.MODELS)
    p.add_argument("--hidden", type=int, default=10)
    p.add_argument("--activation", default="relu", choices=("relu", "sigmoid", "tanh", "identity"))
    p.add_argument("--loss", choices=("softmax", "svm"))
    p.add_argument("--batch", type=int, default=8, help="number of examples (default 8)")
    p.add_argument("--reg", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_gradcheck)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chainrule`` script. Returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ChainruleError as e:
        if args.debug:
            raise
        print(f"chainrule {args.command}: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, USAGE_ERRORS) else 1
    except KeyboardInterrupt:
        print(f"chainrule {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
