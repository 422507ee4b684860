"""``chainrule evaluate RUN``: score a saved run's model again, with each class's precision,
recall and F1."""

from __future__ import annotations

import argparse
import json

from chainrule.app.commands import common

HELP = "score a saved run's model on its test split again, with precision and recall"
DESCRIPTION = (
    "Score a run's model.safetensors on the validation and test splits of its "
    "dataset again, and print its accuracy and each class's precision, recall and F1."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``evaluate``'s arguments and options."""
    common.add_run(p)
    p.add_argument(
        "--data-dir", help="folder to look in first for the data files (default: the run's own)"
    )
    common.add_json(p, "print the result as one JSON object")


def run(args: argparse.Namespace) -> int:
    """Print the accuracies and a table of precision, recall, F1 and support per class (or one
    JSON object); returns 0. Raises what ``experiment.evaluate_run`` raises (DataNotFoundError
    for a folder that is not a run or has no model, DataError for other data)."""
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
