"""``chainrule runs [DIR]``: the run folders under a folder, one line each."""

from __future__ import annotations

import argparse
import json
import sys

from chainrule.app import runfolders
from chainrule.app.commands import common

HEADER = ("run", "dataset", "model", "test acc", "epochs", "status", "date")
RIGHT_ALIGNED = {3, 4}  # the numbers


HELP = "list the runs in a folder: dataset, model, test accuracy, epochs, date"
DESCRIPTION = (
    "List every run folder under DIR (found at any depth) with its dataset, "
    "model, test accuracy, epochs done of those planned, status and date."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``runs``'s arguments and options."""
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
    common.add_json(p, "print the runs as one JSON list")


def run(args: argparse.Namespace) -> int:
    """Print a table of the runs under ``args.dir`` (or one JSON list); returns 0, also when
    there are none (said on stderr). Raises DataNotFoundError when DIR is not a folder."""
    from pathlib import Path

    if args.dir == str(runfolders.DEFAULT_RUNS_DIR) and not Path(args.dir).exists():
        print("no runs yet: there is no runs/ folder here", file=sys.stderr)
        found = []
    else:
        found = runfolders.list_runs(args.dir, args.sort)
    if args.json:
        print(json.dumps([r.to_json() for r in found]))
        return 0
    if not found:
        if Path(args.dir).exists():  # (else the line above said it)
            print(f"no runs in {args.dir}", file=sys.stderr)
        return 0
    for line in table(found):
        print(line)
    return 0


def table(found: list[runfolders.RunInfo]) -> list[str]:
    """The lines of the runs table: a header, then one row per run, columns aligned (numbers
    to the right), trailing spaces stripped."""
    rows = [HEADER] + [
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
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    return [
        "  ".join(
            cell.rjust(w) if i in RIGHT_ALIGNED else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        ).rstrip()
        for row in rows
    ]
