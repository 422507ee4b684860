"""The command line: ``chainrule SUBCOMMAND ...`` (also ``python -m chainrule``).

Strings from the command line become library objects here and nowhere else. Errors we raise on
purpose print as one line; exit status 2 for a usage error (a bad option, name or expression),
1 for a failure at run time (missing or corrupt data, divergence). ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from chainrule.engine.errors import ChainruleError, ConfigError, ExpressionError

if TYPE_CHECKING:
    from pathlib import Path

USAGE_ERRORS = (ConfigError, ExpressionError)


def cmd_circuit(args: argparse.Namespace) -> int:
    """Run an expression through the gate engine and print the forward and backward passes."""
    from chainrule.app import runfolders
    from chainrule.lessons import circuit

    for path, option in ((args.svg, "--svg"), (args.dot, "--dot")):
        if path:
            runfolders.check_output_parent(path, option)
    values = circuit.parse_assignments(args.values)
    result = circuit.run(args.expression, values)
    drawings = []
    if args.svg or args.dot:
        from chainrule.lessons import graph

        drawn = graph.from_circuit(result)
        drawings = _write_drawings(drawn, args.svg, args.dot)
    if args.json:
        print(
            json.dumps({**result.to_json(), "drawings": drawings} if drawings else result.to_json())
        )
    else:
        print(result.table())
        for path in drawings:
            print(f"drawing: {path}")
    return 0


def _write_drawings(drawn: Any, svg: str | None, dot: str | None) -> list[str]:
    """Write a graph.Graph as SVG and/or DOT (their folders checked before); returns the paths."""
    from chainrule.data import files
    from chainrule.lessons import graph

    written = []
    for path, render in ((svg, graph.to_svg), (dot, graph.to_dot)):
        if path:
            files.atomic_write_text(path, render(drawn))
            written.append(str(path))
    return written


def _progress_enabled(args: argparse.Namespace) -> bool:
    return not (args.quiet or args.json)


def _print_summary(summary: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary))
        return
    stopped = (
        f"; stopped early, no better validation in its last {summary['patience']} epochs"
        if summary.get("stopped_early")
        else ""
    )
    print(
        f"{summary['model']} on {summary['dataset']}: test accuracy {summary['test_accuracy']:.4f}"
        f" (best validation {summary['val_accuracy']:.4f} at epoch {summary['best_epoch']} of "
        f"{summary['epochs']}{stopped}); {summary['seconds']:.1f} s training"
    )
    print(f"run folder: {summary['run_dir']}")
    for path in summary.get("figures", []):
        print(f"  figure: {path}")
    for line in summary.get("warnings", []):
        print(f"warning: {line}")


def _given(args: argparse.Namespace) -> set[str]:
    """The options typed on the command line (not left at their defaults)."""
    return getattr(args, "given_options", set())


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# What --resume may change; every other train option is the run's own, in its config.json.
RESUME_OPTIONS = {"resume", "epochs", "patience", "json", "quiet", "debug"}


def _train_config(args: argparse.Namespace) -> Any:
    """The TrainConfig of the options, refusing those that do not apply to the model or data."""
    from chainrule.training.config import LINEAR_MODELS, SETTINGS, TrainConfig

    given = _given(args)
    if args.model in LINEAR_MODELS:
        for name in ("hidden", "activation"):
            if name in given:
                raise ConfigError(
                    f"{_flag(name)} does not apply to --model {args.model}: a linear classifier "
                    "has no hidden layer (use --model two-layer or mlp)"
                )
    if args.data_dir is not None and args.dataset in ("digits", "image-folder"):
        where = "give its folder with --root" if args.root or args.dataset != "digits" else ""
        raise ConfigError(
            f"--data-dir does not apply to --dataset {args.dataset}"
            + (f" ({where})" if where else " (it comes with scikit-learn)")
        )
    return TrainConfig(**{name: getattr(args, name) for name in SETTINGS})


def cmd_train(args: argparse.Namespace) -> int:
    """Train a classifier and write its run folder, or continue a run with --resume."""
    from chainrule.app import experiment
    from chainrule.training.config import SETTINGS

    def log(line: str) -> None:
        print(line, file=sys.stderr)

    try:
        if args.resume is not None:
            # A resumed run continues with its saved settings; a changed option would be ignored.
            given = _given(args)
            options = [*SETTINGS, "out", "force"]
            changed = [_flag(n) for n in options if n in given and n not in RESUME_OPTIONS]
            if changed:
                raise ConfigError(
                    f"--resume continues {args.resume} with the settings in its config.json; "
                    f"drop {', '.join(changed)} (only --epochs and --patience can change)"
                )
            summary = experiment.resume_run(
                args.resume,
                epochs=args.epochs if "epochs" in given else None,
                patience=args.patience if "patience" in given else None,
                progress=_progress_enabled(args),
                log=log,
            )
        else:
            summary = experiment.train_run(
                _train_config(args),
                args.out,
                force=args.force,
                progress=_progress_enabled(args),
                log=log,
            )
    except experiment.TrainingInterrupted as e:
        print(f"chainrule train: {e} (chainrule train --resume {e.run_dir})", file=sys.stderr)
        return 128 + e.signum  # the shell's convention for a run ended by a signal
    _print_summary(summary, args.json)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a saved run's model again: accuracy, and precision and recall per class."""
    from chainrule.app import experiment

    result = experiment.evaluate_run(args.run, args.data_dir)
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"{result['run_dir']}: test accuracy {result['test_accuracy']:.4f} on "
        f"{result['n_test']} {result['dataset']} images "
        f"(validation {result['val_accuracy']:.4f})"
    )
    rows = result["per_class"]
    width = max(5, *(len(r["class"]) for r in rows))
    print(f"\n{'class':<{width}}  precision  recall      f1  support")
    for r in rows:
        print(
            f"{r['class']:<{width}}  {r['precision']:9.4f}  {r['recall']:6.4f}  {r['f1']:6.4f}"
            f"  {r['support']:7d}"
        )
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """List the run folders under a folder: dataset, model, test accuracy, epochs, date."""
    from pathlib import Path

    from chainrule.app import runfolders

    if args.dir == str(runfolders.DEFAULT_RUNS_DIR) and not Path(args.dir).exists():
        print("no runs yet: there is no runs/ folder here", file=sys.stderr)
        found = []
    else:
        found = runfolders.list_runs(args.dir, args.sort)
    if args.json:
        print(json.dumps([r.to_json() for r in found]))
        return 0
    if not found:
        print(f"no runs in {args.dir}", file=sys.stderr)
        return 0
    header = ("run", "dataset", "model", "test acc", "epochs", "status", "date")
    table = [header] + [
        (
            r.run,
            r.dataset or "?",
            r.model or "?",
            "-" if r.test_accuracy is None else f"{r.test_accuracy:.4f}",
            f"{r.epochs_done}/{r.epochs if r.epochs is not None else '?'}",
            r.status,
            r.date.replace("T", " "),
        )
        for r in found
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    right = {3, 4}  # numbers
    for row in table:
        cells = [
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        ]
        print("  ".join(cells).rstrip())
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Classify image files (or folders of them) with a saved run's model."""
    from chainrule.app import predict

    predictions = predict.predict_images(args.run, args.images, args.invert)
    failed = [p for p in predictions if p.error is not None]
    for p in failed:
        print(f"chainrule predict: error: {p.error}", file=sys.stderr)
    if args.json:
        print(json.dumps([p.to_json() for p in predictions]))
    else:
        for p in predictions:
            if p.error is not None:
                continue
            if p.notes:
                print(f"chainrule predict: note: {p.image}: {'; '.join(p.notes)}", file=sys.stderr)
            others = ", ".join(f"{c} {prob:.2f}" for c, prob in p.top3[1:])
            print(f"{p.image}: {p.class_name} ({p.probability:.2f}; then {others})")
    if failed:
        print(
            f"chainrule predict: {len(failed)} of {len(predictions)} "
            f"image{'s' if len(predictions) > 1 else ''} could not be read (named above)",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_gradcheck(args: argparse.Namespace) -> int:
    """Check every parameter of a small model against finite differences."""
    from chainrule.app import modelcheck
    from chainrule.training.config import TrainConfig, check_setting

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


def _figure_path(out: str | None, default_name: str) -> Path:
    """Where a figure goes: ``default_name`` in the current folder, or --out as a file (it has
    a suffix) or a folder (it exists or has none; one level is made, at write time). Checked
    before any work: the folder above must exist."""
    from pathlib import Path

    from chainrule.app import runfolders

    path = Path(out) if out else Path(default_name)
    if path.is_dir() or (out and not path.suffix):
        runfolders.check_output_parent(path, "--out")
        return path / default_name
    return runfolders.check_output_parent(path, "--out")


def cmd_collapse(args: argparse.Namespace) -> int:
    """Without a non-linearity two layers are one; with ReLU they are not; the spiral shows it."""
    import numpy as np

    from chainrule.lessons import collapse

    path = _figure_path(args.out, "spiral.png")
    rng = np.random.default_rng(args.seed)
    collapsed = collapse.collapse(rng)
    settings = collapse.SpiralSettings(epochs=args.epochs)
    spiral = collapse.spiral(rng, settings)
    path.parent.mkdir(exist_ok=True)
    figure = collapse.plot_regions(spiral, path)
    result = {
        "collapse_max_diff": collapsed.max_diff,
        "collapse_linear_fit_residual": collapsed.identity_residual,
        "relu_linear_fit_residual": collapsed.relu_residual,
        "spiral_linear_accuracy": spiral.linear_accuracy,
        "spiral_two_layer_accuracy": spiral.net_accuracy,
        "spiral_settings": settings.describe(),
        "spiral_seconds": spiral.seconds,
        "figure": str(figure),
    }
    if args.json:
        print(json.dumps(result))
        return 0
    K, D = collapsed.W.shape
    print(
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
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Save a run's weights as images: class templates or first-layer features."""
    from chainrule.app import runfolders
    from chainrule.lessons import show

    if args.compare:
        out = _figure_path(args.out, "templates-vs-features.png")
        out.parent.mkdir(exist_ok=True)
        paths = [str(show.plot_side_by_side(args.run, args.compare, out))]
        kind = "comparison"
    else:
        if args.out:
            runfolders.check_output_parent(args.out, "--out")
        shown = show.show_run(args.run, args.out)
        paths, kind = [str(p) for p in shown.paths], shown.kind
    if args.json:
        print(json.dumps({"kind": kind, "paths": paths}))
    else:
        for path in paths:
            print(path)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """The era table: pixels vs hand-designed features, linear classifiers vs a 2-layer net."""
    import signal

    from chainrule.lessons import compare

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be a positive integer, got {args.workers}")
    try:
        with compare.signals_raise():  # SIGTERM unwinds like Ctrl-C: the workers are stopped
            return _compare(args)
    except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM, or either during a row's training
        # The process ends now: a second signal must not interrupt the way out.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signum = getattr(e, "signum", signal.SIGINT)
        print(f"chainrule compare: interrupted by {signal.Signals(signum).name}", file=sys.stderr)
        return 128 + signum  # the shell's convention for a run ended by a signal


def _compare(args: argparse.Namespace) -> int:
    import os
    from datetime import datetime
    from pathlib import Path

    from chainrule import data as datasets
    from chainrule.app import runfolders
    from chainrule.data import files
    from chainrule.data.paths import cache_dir
    from chainrule.lessons import compare

    def log(line: str) -> None:
        if not (args.quiet or args.json):
            print(line, file=sys.stderr)

    if args.out:  # checked now, not after minutes of work
        runfolders.check_output_parent(args.out, "--out")
    progress = not (args.quiet or args.json)
    data = datasets.load(
        args.dataset,
        args.data_dir,
        root=args.root,
        seed=args.seed,
        max_train=args.max_train,
        max_test=args.max_test,
        log=log,
        progress=progress,
    )
    workers = args.workers or min(os.cpu_count() or 1, 8)
    result = compare.compare(
        data,
        epochs=args.epochs,
        seed=args.seed,
        cache_dir=None if args.no_cache else cache_dir(args.cache_dir),
        workers=workers,
        log=log,
        progress=progress,
    )
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or f"runs/compare-{args.dataset}-{stamp}")
    out.mkdir(parents=not args.out, exist_ok=True)  # the default's runs/ may be new
    files.atomic_write_text(out / "compare.md", result.markdown())
    files.atomic_write_text(out / "compare.json", json.dumps(result.to_json(), indent=2))
    if args.json:
        print(json.dumps({**result.to_json(), "markdown": str(out / "compare.md")}))
    else:
        print(result.table())
        print(f"\ntable: {out / 'compare.md'}")
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    """Draw the gates of one training step of a small model, with values and gradients."""
    from pathlib import Path

    import numpy as np
    from sklearn.datasets import load_digits

    from chainrule.app import runfolders
    from chainrule.lessons import graph
    from chainrule.nn import build_model
    from chainrule.nn.losses import LOSSES
    from chainrule.training.config import LINEAR_MODELS, TrainConfig, check_setting

    for path, option in ((args.svg, "--svg"), (args.dot, "--dot"), (args.out, "--out")):
        if path:
            runfolders.check_output_parent(path, option)
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
    sizes = (
        " x ".join(str(s) for s in (64, *hidden, 10))
        if args.model not in LINEAR_MODELS
        else "64 x 10"
    )
    title = (
        f"one training step of {args.model} ({sizes}, {config.loss_name} loss, reg {args.reg:g}) "
        f"on {args.batch} digits"
    )
    drawn = graph.step_graph(
        model, X, digits.target[rows], LOSSES[config.loss_name], args.reg, title, args.unfused
    )
    svg, dot = args.svg, args.dot
    if args.out:
        Path(args.out).mkdir(exist_ok=True)
        svg = svg or str(Path(args.out) / f"{args.model}.svg")
        dot = dot or str(Path(args.out) / f"{args.model}.dot")
    drawings = _write_drawings(drawn, svg, dot)
    if args.json:
        nodes = [
            {
                "id": n.id,
                "label": n.label,
                "kind": n.kind,
                "inputs": n.inputs,
                "name": n.name,
                "value": n.value,
                "grad": n.grad,
            }
            for n in drawn.nodes
        ]
        print(json.dumps({"title": title, "nodes": nodes, "drawings": drawings}))
    else:
        print(graph.table(drawn))
        for path in drawings:
            print(f"drawing: {path}")
    return 0


def _fraction_or_count(text: str) -> float | int:
    """--val-size: '0.1' is a fraction of the training data, '5000' a count of images."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a fraction or a count, got {text!r}")
    return int(value) if value >= 1 and value == int(value) else value


def _default_note(action: argparse.Action) -> str | None:
    """'(default: X)' for an option that takes a value and has a default."""
    default = action.default
    takes_value = (action.option_strings and action.nargs != 0) or action.nargs in ("?", "*")
    if not takes_value or default is None or default is argparse.SUPPRESS:
        return None
    shown = " ".join(map(str, default)) if isinstance(default, list | tuple) else str(default)
    return f"(default: {shown})".replace("%", "%%")


class _HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default (unless it already says it), and --json says
    what it prints: one place, for every subcommand."""

    def _format_action(self, action: argparse.Action) -> str:
        text = action.help
        if text is not argparse.SUPPRESS:
            if "--json" in action.option_strings and not text:
                text = "print the result as one JSON object"
            note = _default_note(action)
            if note and "default" not in (text or "").lower():
                text = f"{text} {note}" if text else note
            if text != action.help:
                action = copy.copy(action)
                action.help = text
        return super()._format_action(action)


class _Store(argparse._StoreAction):
    """argparse's store, noting that the option was given (``given_options``)."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        super().__call__(parser, namespace, values, option_string)
        _note_given(namespace, self.dest)


class _StoreTrue(argparse._StoreTrueAction):
    """argparse's store_true, noting that the flag was given (``given_options``)."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        super().__call__(parser, namespace, values, option_string)
        _note_given(namespace, self.dest)


def _note_given(namespace: argparse.Namespace, dest: str) -> None:
    given = set(getattr(namespace, "given_options", set()))
    namespace.given_options = given | {dest}


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error printed as one line (plus where to find help), defaults in
    every option's help, and a record of the options given (to tell `--epochs 50` from none)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)
        self.register("action", None, _Store)
        self.register("action", "store", _Store)
        self.register("action", "store_true", _StoreTrue)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n(see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    from chainrule import __version__

    parser = _Parser(
        prog="chainrule",
        description="Backpropagation from first principles: gates, gradients and classifiers.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
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
    p.add_argument("--svg", metavar="FILE", help="also draw the circuit: values and gradients")
    p.add_argument("--dot", metavar="FILE", help="also write it as DOT text (for graphviz)")
    p.set_defaults(func=cmd_circuit)

    from chainrule.app import predict, runfolders
    from chainrule.training.config import SETTINGS, TrainConfig

    # Every name and default of a setting comes from the one table (SETTINGS) and TrainConfig.
    defaults = TrainConfig()
    p = sub.add_parser(
        "train",
        help="train a classifier and write a run folder (default: 2-layer net on the 8x8 digits)",
        description="Train a classifier with mini-batch gradient descent; write config.json, "
        "metrics.csv, model.safetensors (best-validation weights), checkpoint.safetensors, "
        "summary.json and PNG figures to a run folder, and print the test accuracy.",
    )
    p.add_argument("--dataset", default=defaults.dataset, choices=SETTINGS["dataset"].choices)
    p.add_argument(
        "--data-dir",
        help="folder to look in first for the data files (default: $CHAINRULE_DATA, the cache "
        "folder, then a download)",
    )
    p.add_argument("--root", help="folder or archive of an image-folder dataset")
    p.add_argument("--model", default=defaults.model, choices=SETTINGS["model"].choices)
    p.add_argument(
        "--hidden",
        type=int,
        nargs="+",
        default=defaults.hidden,
        metavar="H",
        help="hidden layer size, several for --model mlp (not for linear models)",
    )
    p.add_argument(
        "--activation",
        default=defaults.activation,
        choices=SETTINGS["activation"].choices,
        help="the hidden layers' non-linearity (not for linear models)",
    )
    p.add_argument(
        "--loss",
        choices=SETTINGS["loss"].choices,
        help="for two-layer and mlp (default: softmax; linear-svm uses svm, softmax softmax)",
    )
    p.add_argument("--optimizer", default=defaults.optimizer, choices=SETTINGS["optimizer"].choices)
    p.add_argument("--lr", type=float, default=defaults.lr, help="learning rate")
    p.add_argument(
        "--lr-decay",
        default=defaults.lr_decay,
        help="learning-rate factor per epoch, e.g. 0.95, or 'cosine' (to 0 over --epochs)",
    )
    p.add_argument("--reg", type=float, default=defaults.reg, help="L2 strength on the weights")
    p.add_argument("--epochs", type=int, default=defaults.epochs, help="passes over the data")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size, help="mini-batch size")
    p.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="seeds the validation split, the initial weights and the batch order",
    )
    p.add_argument(
        "--val-size",
        type=_fraction_or_count,
        default=defaults.val_size,
        help="validation split: a fraction of the training data, or a count",
    )
    p.add_argument(
        "--standardize",
        action="store_true",
        help="divide each feature by its training std as well as centring it",
    )
    p.add_argument(
        "--max-train", type=int, help="use at most this many training images (default: all)"
    )
    p.add_argument("--max-test", type=int, help="use at most this many test images (default: all)")
    p.add_argument(
        "--augment",
        default=defaults.augment,
        choices=SETTINGS["augment"].choices,
        help="make each training batch anew: flip = mirror a random half",
    )
    p.add_argument(
        "--patience",
        type=int,
        metavar="N",
        help="stop early once validation accuracy has not improved for N epochs (default: "
        "train every epoch)",
    )
    p.add_argument(
        "--out",
        help="the run folder: new or empty, and its parent must exist (default: "
        "runs/DATASET-MODEL-TIME)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="with --out: replace the run there, or write beside files the run does not need "
        "(none of yours is ever overwritten or deleted)",
    )
    p.add_argument(
        "--resume",
        metavar="RUN",
        help="continue the run in this folder; with --epochs N, train it to N epochs in all",
    )
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress bars or lines")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate",
        help="score a saved run's model on its test split again, with precision and recall",
        description="Score a run's model.safetensors on the validation and test splits of its "
        "dataset again, and print its accuracy and each class's precision, recall and F1.",
    )
    p.add_argument("run", help="a run folder written by chainrule train")
    p.add_argument(
        "--data-dir", help="folder to look in first for the data files (default: the run's own)"
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "runs",
        help="list the runs in a folder: dataset, model, test accuracy, epochs, date",
        description="List every run folder under DIR (found at any depth) with its dataset, "
        "model, test accuracy, epochs done of those planned, status and date.",
    )
    p.add_argument(
        "dir",
        nargs="?",
        default=str(runfolders.DEFAULT_RUNS_DIR),
        metavar="DIR",
        help="where to look",
    )
    p.add_argument(
        "--sort",
        default=runfolders.RUN_SORTS[0],
        choices=runfolders.RUN_SORTS,
        help="date: newest first; accuracy: highest first; name: alphabetical",
    )
    p.add_argument("--json", action="store_true", help="print the runs as one JSON list")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser(
        "predict",
        help="classify your own image files with a saved run's model",
        description="Classify image files, and every image in a folder given, with a saved "
        "run's model. Each image is made the model's kind (grey or RGB) and size (resized, "
        "with a note on stderr); 16-bit, palette, alpha (composited on white) and CMYK images "
        "are converted with a note. A file that cannot be read is named on stderr, the others "
        "are still classified, and the exit status is then 1.",
    )
    p.add_argument("run", help="a run folder (or its model.safetensors)")
    p.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...) or folders"
    )
    p.add_argument(
        "--invert",
        choices=predict.INVERT_CHOICES,
        default=predict.INVERT_CHOICES[0],
        help="turn dark ink on white into the light ink on black that digits, MNIST and "
        "Fashion-MNIST models were trained on: auto does it, with a note, when the "
        "image's border and the training images' border disagree (grey models only)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "gradcheck",
        help="check every parameter of a small model against finite differences",
        description="Build a small model on a few rows of the 8x8 digits in float64, compute the "
        "analytic gradient of every parameter with one backward pass, and compare it with "
        "centred differences.",
    )
    _add_small_model_options(p, default=10)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_gradcheck)
    _add_lesson_commands(sub)
    for command in sub.choices.values():  # --debug after the subcommand too
        command.add_argument(
            "--debug",
            action="store_true",
            default=argparse.SUPPRESS,
            help="show full tracebacks on errors",
        )
    return parser


def _add_small_model_options(p: argparse.ArgumentParser, **hidden: Any) -> None:
    """gradcheck's and graph's options: a small model on a few 8x8 digits, its names and defaults
    from the one table. hidden: how --hidden is read (one size, or several)."""
    from chainrule.training.config import SETTINGS, TrainConfig

    defaults = TrainConfig()
    p.add_argument("--model", default=defaults.model, choices=SETTINGS["model"].choices)
    p.add_argument("--hidden", type=int, **hidden)
    p.add_argument(
        "--activation", default=defaults.activation, choices=SETTINGS["activation"].choices
    )
    p.add_argument("--loss", choices=SETTINGS["loss"].choices)
    p.add_argument("--batch", type=int, default=8, help="number of examples (default 8)")
    p.add_argument("--reg", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)


def _add_lesson_commands(sub: Any) -> None:
    """The commands that show the lessons: collapse, show, compare, graph."""
    from chainrule.training.config import SETTINGS

    p = sub.add_parser(
        "collapse",
        help="why a net needs its non-linearity: collapse, ReLU, and the spiral",
        description="Show that two linear layers are one (W' = W2 W1, b' = W2 b1 + b2), that "
        "ReLU between them breaks this, and train a linear classifier and a 2-layer net on a "
        "2-D spiral of 3 classes; save both decision regions as a PNG.",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--epochs", type=int, default=200, help="epochs on the spiral, both models (default 200)"
    )
    p.add_argument("--out", help="the figure's path, or a folder for spiral.png (default ./)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_collapse)

    p = sub.add_parser(
        "show",
        help="a run's weights as images: class templates, or a net's first-layer features",
        description="For a linear run, save templates/<class>.png (one upscaled template per "
        "class) and templates.png; for a net, features.png (rows of W1). With --compare OTHER, "
        "put a linear run's templates and a net run's features side by side in one figure.",
    )
    p.add_argument("run", help="a run folder written by chainrule train")
    p.add_argument("--compare", metavar="OTHER_RUN", help="a second run (one linear, one net)")
    p.add_argument(
        "--out",
        help="folder for the images (default: the run folder); with "
        "--compare, the figure's path or folder",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser(
        "compare",
        help="the era table: pixels vs HOG + colour features, linear classifiers vs a 2-layer net",
        description="Train a linear SVM, a softmax classifier and a 2-layer net on raw pixels "
        "and on hand-designed features (HOG + hue histogram), print the test accuracies and "
        "times, and write them to OUT/compare.md. The settings of each row are in the table.",
    )
    p.add_argument("--dataset", default="cifar10-jpeg", choices=SETTINGS["dataset"].choices)
    p.add_argument("--data-dir", help="folder to look in for the data files first")
    p.add_argument("--root", help="folder or archive of an image-folder dataset")
    p.add_argument("--max-train", type=int, help="use at most this many training images")
    p.add_argument("--max-test", type=int, help="use at most this many test images")
    p.add_argument("--epochs", type=int, help="override every row's number of epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, help="processes for feature extraction (default: CPUs)")
    p.add_argument("--cache-dir", help="where features are cached (default: the cache folder)")
    p.add_argument("--no-cache", action="store_true", help="compute features afresh, keep none")
    p.add_argument(
        "--out", help="folder for compare.md and compare.json (default runs/compare-DATASET-TIME)"
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "graph",
        help="draw the gates of one training step of a small model (SVG/DOT)",
        description="Run one training step of a small model on a few 8x8 digits, and print "
        "(and with --svg/--dot/--out draw) every gate from x and the weights through the loss "
        "and the L2 terms to the total loss: each tensor's shape or value and its gradient.",
    )
    _add_small_model_options(p, nargs="+", metavar="H", help="default 10 (mlp: 10 10)")
    p.add_argument(
        "--unfused",
        action="store_true",
        help="draw affine and ReLU as two gates, as the lecture does (training fuses them)",
    )
    p.add_argument("--svg", metavar="FILE")
    p.add_argument("--dot", metavar="FILE")
    p.add_argument("--out", help="folder for MODEL.svg and MODEL.dot")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_graph)


@contextlib.contextmanager
def _warnings_as_lines(command: str) -> Any:
    """Show a Python warning from anywhere (a library's, NumPy's) as one line of ours."""

    def show(message: Any, category: Any, filename: Any, lineno: Any, *rest: Any) -> None:
        print(f"chainrule {command}: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chainrule`` script. Returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        if args.debug:
            return func(args)
        with _warnings_as_lines(args.command):
            return func(args)
    except ChainruleError as e:
        if args.debug:
            raise
        print(f"chainrule {args.command}: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, USAGE_ERRORS) else 1
    except MemoryError as e:  # NumPy's "Unable to allocate 77 GiB for an array with shape..."
        if args.debug:
            raise
        print(f"chainrule {args.command}: error: out of memory ({e})", file=sys.stderr)
        return 1
    except OSError as e:  # a folder that cannot be written, a full disk...
        if args.debug:
            raise
        where = f" ({e.filename})" if e.filename else ""
        print(f"chainrule {args.command}: error: {e.strerror or e}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"chainrule {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
