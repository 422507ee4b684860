"""``chainrule predict RUN IMAGE...``: classify the user's own image files with a run's model."""

from __future__ import annotations

import argparse
import json
import sys

from chainrule.app.commands import common
from chainrule.app.predict import INVERT_CHOICES, predict_images

HELP = "classify your own image files with a saved run's model"
DESCRIPTION = (
    "Classify image files, and every image in a folder given, with a saved "
    "run's model. Each image is made the model's kind (grey or RGB) and size (resized, "
    "with a note on stderr); 16-bit, palette, alpha (composited on white) and CMYK images "
    "are converted with a note. A file that cannot be read is named on stderr, the others "
    "are still classified, and the exit status is then 1."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``predict``'s arguments and options."""
    p.add_argument("run", help="a run folder (or its model.safetensors)")
    p.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...) or folders"
    )
    p.add_argument(
        "--invert",
        choices=INVERT_CHOICES,
        default=INVERT_CHOICES[0],
        help="turn dark ink on white into the light ink on black that digits, MNIST and "
        "Fashion-MNIST models were trained on: auto does it, with a note, when the "
        "image's border and the training images' border disagree (grey models only)",
    )
    common.add_json(p)


def run(args: argparse.Namespace) -> int:
    """Print each image's class, its probability and the next two (or one JSON list); notes on
    stderr. Returns 0, or 1 when a file could not be read (each named on stderr; the others are
    still classified). Raises DataNotFoundError or DataError for a missing or bad model."""
    predictions = predict_images(args.run, args.images, args.invert)
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
