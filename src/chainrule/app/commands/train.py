"""``chainrule train``: train a classifier into a run folder, or continue one with --resume.

Every name and default of a setting comes from the one table (``training.config.SETTINGS``) and
``TrainConfig``; the training run itself is ``app.experiment``'s.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from chainrule.app.commands import common

HELP = "train a classifier and write a run folder (default: 2-layer net on the 8x8 digits)"
DESCRIPTION = (
    "Train a classifier with mini-batch gradient descent; write config.json, "
    "metrics.csv, model.safetensors (best-validation weights), checkpoint.safetensors, "
    "summary.json and PNG figures to a run folder, and print the test accuracy."
)


# What --resume may change; every other train option is the run's own, in its config.json.
RESUME_OPTIONS = {"resume", "epochs", "patience", "json", "quiet", "debug"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``train``'s arguments and options."""
    from chainrule.training.config import TrainConfig

    defaults = TrainConfig()
    common.add_data_options(
        p,
        defaults.dataset,
        "folder to look in first for the data files (default: $CHAINRULE_DATA, the cache "
        "folder, then a download)",
        limit_note=" (default: all)",
    )
    _add_model_options(p, defaults)
    _add_training_options(p, defaults)
    _add_run_options(p)


def _add_model_options(p: argparse.ArgumentParser, defaults: Any) -> None:
    """--model, --hidden, --activation, --loss: the model and what it is trained to lower."""
    common.add_named(p, "model", defaults.model)
    p.add_argument(
        "--hidden",
        type=int,
        nargs="+",
        default=defaults.hidden,
        metavar="H",
        help="hidden layer size, several for --model mlp (not for linear models)",
    )
    common.add_named(
        p,
        "activation",
        defaults.activation,
        help="the hidden layers' non-linearity (not for linear models)",
    )
    common.add_named(
        p,
        "loss",
        help="for two-layer and mlp (default: softmax; linear-svm uses svm, softmax softmax)",
    )


def _add_training_options(p: argparse.ArgumentParser, defaults: Any) -> None:
    """The optimizer, its schedule, L2, the epochs and batches, the split and augmentation."""
    common.add_named(p, "optimizer", defaults.optimizer)
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
        type=fraction_or_count,
        default=defaults.val_size,
        help="validation split: a fraction of the training data, or a count",
    )
    p.add_argument(
        "--standardize",
        action="store_true",
        help="divide each feature by its training std as well as centring it",
    )
    common.add_named(
        p,
        "augment",
        defaults.augment,
        help="make each training batch anew: flip = mirror a random half",
    )
    p.add_argument(
        "--patience",
        type=int,
        metavar="N",
        help="stop early once validation accuracy has not improved for N epochs (default: "
        "train every epoch)",
    )
    p.add_argument(  # issue 24
        "--device",
        default=defaults.device,
        help="cpu (NumPy, the default) or cuda (CuPy on the GPU: pip install 'chainrule[gpu]')",
    )


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """Where the run goes (--out, --force), --resume, and what is printed."""
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
    common.add_json(p, "print the summary as one JSON object")
    common.add_quiet(p, "no progress bars or lines")


def fraction_or_count(text: str) -> float | int:
    """--val-size: '0.1' is a fraction of the training data, '5000' a count of images.

    Raises argparse.ArgumentTypeError (a usage error, exit status 2) for a word, NaN or inf.
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a fraction or a count, got {text!r}")
    return int(value) if value >= 1 and value == int(value) else value


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def train_config(args: argparse.Namespace) -> Any:
    """The ``TrainConfig`` of the parsed options, refusing those that do not apply to the model
    or the dataset. Raises ConfigError (exit status 2) naming the option."""
    from chainrule.engine.errors import ConfigError
    from chainrule.training.config import SETTINGS, TrainConfig

    common.refuse_hidden_layer_options(args)
    if args.data_dir is not None and args.dataset in ("digits", "image-folder"):
        where = "give its folder with --root" if args.root or args.dataset != "digits" else ""
        raise ConfigError(
            f"--data-dir does not apply to --dataset {args.dataset}"
            + (f" ({where})" if where else " (it comes with scikit-learn)")
        )
    return TrainConfig(**{name: getattr(args, name) for name in SETTINGS})


def _resume(args: argparse.Namespace, log: Any) -> dict[str, Any]:
    """Continue the run ``args.resume`` names; only --epochs and --patience may change."""
    from chainrule.app import experiment
    from chainrule.engine.errors import ConfigError
    from chainrule.training.config import SETTINGS

    # A resumed run continues with its saved settings; a changed option would be ignored.
    given = common.given(args)
    options = [*SETTINGS, "out", "force"]
    changed = [_flag(n) for n in options if n in given and n not in RESUME_OPTIONS]
    if changed:
        raise ConfigError(
            f"--resume continues {args.resume} with the settings in its config.json; "
            f"drop {', '.join(changed)} (only --epochs and --patience can change)"
        )
    return experiment.resume_run(
        args.resume,
        epochs=args.epochs if "epochs" in given else None,
        patience=args.patience if "patience" in given else None,
        progress=common.progress_enabled(args),
        log=log,
    )


def run(args: argparse.Namespace) -> int:
    """Train a classifier and write its run folder, or continue a run with --resume; print the
    summary. Returns 0, or 128 + the signal's number when SIGINT/SIGTERM stopped training (the
    run is kept and can be resumed). Raises what ``experiment.train_run`` raises."""
    from chainrule.app import experiment

    def log(line: str) -> None:
        print(line, file=sys.stderr)

    try:
        if args.resume is not None:
            summary = _resume(args, log)
        else:
            summary = experiment.train_run(
                train_config(args),
                args.out,
                force=args.force,
                progress=common.progress_enabled(args),
                log=log,
            )
    except experiment.TrainingInterrupted as e:
        print(f"chainrule train: {e} (chainrule train --resume {e.run_dir})", file=sys.stderr)
        return 128 + e.signum  # the shell's convention for a run ended by a signal
    print_summary(summary, args.json)
    return 0


def print_summary(summary: dict[str, Any], as_json: bool) -> None:
    """Print a run's summary (``experiment.train_run``'s dict) as one JSON object, or as lines:
    the accuracies, the run folder, each figure and each warning."""
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
