"""``chainrule compare``: the era table, raw pixels against hand-designed features (HOG + hue
histogram), linear classifiers against a 2-layer net, written to OUT/compare.md and .json."""

from __future__ import annotations

import argparse
import json
import sys

from chainrule.app.commands import common

HELP = "the era table: pixels vs HOG + colour features, linear classifiers vs a 2-layer net"
DESCRIPTION = (
    "Train a linear SVM, a softmax classifier and a 2-layer net on raw pixels "
    "and on hand-designed features (HOG + hue histogram), print the test accuracies and "
    "times, and write them to OUT/compare.md. The settings of each row are in the table."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``compare``'s arguments and options."""
    common.add_data_options(p, "cifar10-jpeg", "folder to look in for the data files first")
    p.add_argument("--epochs", type=int, help="override every row's number of epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, help="processes for feature extraction (default: CPUs)")
    p.add_argument("--cache-dir", help="where features are cached (default: the cache folder)")
    p.add_argument("--no-cache", action="store_true", help="compute features afresh, keep none")
    p.add_argument(
        "--out", help="folder for compare.md and compare.json (default runs/compare-DATASET-TIME)"
    )
    common.add_json(p)
    common.add_quiet(p, "no progress lines")


def run(args: argparse.Namespace) -> int:
    """Train the six rows, print the table (or one JSON object) and write compare.md and
    compare.json. Returns 0, or 128 + the signal's number after SIGINT or SIGTERM (the worker
    processes stopped, no table written). Raises ConfigError (exit status 2) for --workers
    below 1, a missing folder above --out or a bad data option, and what loading the data
    raises (DataError, DataNotFoundError)."""
    import signal

    from chainrule.engine.errors import ConfigError
    from chainrule.lessons import compare

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be a positive integer, got {args.workers}")
    try:
        with compare.signals_raise():  # SIGTERM unwinds like Ctrl-C: the workers are stopped
            return _compare(args)
    except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM, or either during a row's training
        common.ignore_signals()
        signum = getattr(e, "signum", signal.SIGINT)
        print(f"chainrule compare: interrupted by {signal.Signals(signum).name}", file=sys.stderr)
        return 128 + signum  # the shell's convention for a run ended by a signal


def _compare(args: argparse.Namespace) -> int:
    import os
    from datetime import datetime
    from pathlib import Path

    from chainrule.app import experiment
    from chainrule.data import files
    from chainrule.data.paths import cache_dir
    from chainrule.lessons import compare
    from chainrule.training.config import TrainConfig

    def log(line: str) -> None:
        if common.progress_enabled(args):
            print(line, file=sys.stderr)

    common.check_outputs((args.out, "--out"))  # checked now, not after minutes of work
    # The data settings of a training run, so that they are checked and loaded as train's are.
    names = ("dataset", "data_dir", "root", "seed", "max_train", "max_test")
    config = TrainConfig(**{name: getattr(args, name) for name in names})
    data = experiment.load_data(config, log, common.progress_enabled(args))
    result = compare.compare(
        data,
        epochs=args.epochs,
        seed=args.seed,
        cache_dir=None if args.no_cache else cache_dir(args.cache_dir),
        workers=args.workers or min(os.cpu_count() or 1, 8),
        log=log,
        progress=common.progress_enabled(args),
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
