"""``chainrule show RUN``: a run's weights as images (class templates, or first-layer features),
or a linear run's templates beside a net's features."""

from __future__ import annotations

import argparse
import json

from chainrule.app.commands import common

HELP = "a run's weights as images: class templates, or a net's first-layer features"
DESCRIPTION = (
    "For a linear run, save templates/<class>.png (one upscaled template per "
    "class) and templates.png; for a net, features.png (rows of W1). With --compare OTHER, "
    "put a linear run's templates and a net run's features side by side in one figure."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``show``'s arguments and options."""
    common.add_run(p)
    p.add_argument("--compare", metavar="OTHER_RUN", help="a second run (one linear, one net)")
    p.add_argument(
        "--out",
        help="folder for the images (default: the run folder); with "
        "--compare, the figure's path or folder",
    )
    common.add_json(p)


def run(args: argparse.Namespace) -> int:
    """Save the images and print their paths (or one JSON object: the kind and the paths).
    Returns 0. Raises ConfigError (exit status 2) when the folder above --out is missing, and
    what ``lessons.show`` raises for a folder that is not a run."""
    from chainrule.lessons import show

    if args.compare:
        out = common.figure_path(args.out, "templates-vs-features.png")
        out.parent.mkdir(exist_ok=True)
        paths = [str(show.plot_side_by_side(args.run, args.compare, out))]
        kind = "comparison"
    else:
        common.check_outputs((args.out, "--out"))
        shown = show.show_run(args.run, args.out)
        paths, kind = [str(p) for p in shown.paths], shown.kind
    if args.json:
        print(json.dumps({"kind": kind, "paths": paths}))
    else:
        for path in paths:
            print(path)
    return 0
