"""``chainrule sweep``: search learning rate, regularization, hidden size, optimizer and batch
size with Optuna; the sweep itself is ``app.sweep``'s."""

from __future__ import annotations

import argparse
import json
import sys

from chainrule.app.commands import common

HELP = "search hyperparameters with Optuna, on one machine or many (PostgreSQL)"
DESCRIPTION = (
    "Train TRIALS models with settings drawn by Optuna (learning rate and regularization on a "
    "log scale, hidden size, optimizer, batch size), prune the hopeless ones by their "
    "validation accuracy, then train the best again as a run folder and report its test "
    "accuracy. The study lives in the sweep folder, or in PostgreSQL with --storage, where "
    "workers on many machines join it. The same command, started again, continues the sweep."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``sweep``'s arguments and options."""
    from chainrule.app.sweep_space import DEFAULTS, SEARCHED
    from chainrule.training.config import TrainConfig

    defaults = TrainConfig()
    common.add_data_options(p, defaults.dataset, "folder to look in first for the data files")
    common.add_named(p, "model", defaults.model)
    p.add_argument("--trials", type=int, default=20, help="trials the study should hold")
    p.add_argument("--jobs", type=int, default=1, help="worker processes on this machine")
    p.add_argument(
        "--storage",
        help="database URL shared by workers anywhere, e.g. postgresql://USER@HOST/DB "
        "(default: a study file in the sweep folder)",
    )
    p.add_argument("--study", help="the study's name (default: DATASET-MODEL)")
    p.add_argument("--out", help="the sweep folder (default: sweeps/STUDY)")
    ranges = p.add_argument_group("search space (LOW:HIGH on a log scale; a,b,c: choices)")
    for name, (flag, kind) in SEARCHED.items():
        metavar = "LOW:HIGH" if kind == "log" else "A,B,..."
        ranges.add_argument(flag, metavar=metavar, help=f"(default {DEFAULTS[name]})")
    ranges.add_argument("--space", help="a TOML or JSON file of ranges (options above win)")
    fixed = p.add_argument_group("every trial's fixed settings")
    fixed.add_argument("--epochs", type=int, default=10, help="epochs per trial")
    fixed.add_argument("--depth", type=int, default=2, help="hidden layers of --model mlp")
    common.add_named(fixed, "activation", defaults.activation)
    fixed.add_argument("--val-size", type=float, default=defaults.val_size)
    fixed.add_argument("--standardize", action="store_true", help="per-feature mean and std")
    fixed.add_argument("--lr-decay", default=defaults.lr_decay, help="factor per epoch, or cosine")
    common.add_named(fixed, "augment", defaults.augment)
    fixed.add_argument("--patience", type=int, help="stop a trial after N epochs without gain")
    fixed.add_argument("--seed", type=int, default=defaults.seed)
    final = p.add_argument_group("the best trial's run folder")
    final.add_argument("--final-epochs", type=int, help="train it this long (default: --epochs)")
    final.add_argument(
        "--final-all-data", action="store_true", help="train it on all the data (no --max-train)"
    )
    common.add_json(p)
    common.add_quiet(p, "no progress bar or lines")


def run(args: argparse.Namespace) -> int:
    """Run the sweep, print the table of the best trials (or one JSON object). Returns 0, or
    128 + the signal's number after SIGINT or SIGTERM (the workers stopped, their trials
    marked failed, nothing lost). Raises ConfigError (exit status 2) for a bad setting or
    range, --trials or --jobs below 1, another sweep's study, a refused database login;
    StorageError (exit status 1) for a database that cannot be reached; ChainruleError (exit
    status 1) without Optuna or threadpoolctl; what loading the data raises."""
    import signal

    from chainrule.engine.errors import ChainruleError

    try:
        import optuna  # noqa: F401
        import threadpoolctl  # noqa: F401
    except ImportError as e:
        raise ChainruleError(
            f"sweep needs the sweep extra ({e.name} is missing): pip install 'chainrule[sweep]'"
        ) from None
    from chainrule.app import sweep, sweep_results

    common.refuse_hidden_layer_options(args)
    common.check_outputs((args.out, "--out"))

    def log(line: str) -> None:
        if common.progress_enabled(args):
            print(line, file=sys.stderr)

    val_size = int(args.val_size) if args.val_size >= 1 else args.val_size
    fixed = ("data_dir", "root", "max_train", "max_test", "epochs", "activation", "seed")
    fixed += ("standardize", "patience", "lr_decay", "augment")
    given = ("jobs", "storage", "study", "out", "space", "depth")
    options = {name: getattr(args, name) for name in (*fixed, *given)}
    try:
        summary = sweep.sweep(
            args.dataset,
            args.model,
            args.trials,
            ranges={name: getattr(args, name) for name in sweep.SEARCHED},
            final=_final(args),
            progress=common.progress_enabled(args),
            log=log,
            val_size=val_size,
            **options,
        )
    except sweep.SweepInterrupted as e:
        common.ignore_signals()
        print(f"chainrule sweep: {e}", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:  # before the workers started: nothing of the study changed
        common.ignore_signals()
        print("chainrule sweep: interrupted by SIGINT", file=sys.stderr)
        return 128 + signal.SIGINT
    if args.json:
        print(json.dumps(summary))
    else:
        print(sweep_results.report(summary))
    return 0


def _final(args: argparse.Namespace) -> dict[str, object]:
    """What the best trial's run folder changes of the trials' settings."""
    final: dict[str, object] = {}
    if args.final_epochs is not None:
        final["epochs"] = args.final_epochs
    if args.final_all_data:
        final["max_train"] = None
    return final
