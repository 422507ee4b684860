"""Reproduce the README's results table: each row is one documented `chainrule train` command.

    python docs/results.py [--only NAME ...] [--data-dir ../shared/data]

Runs the commands one after another (each writes runs/results/NAME), then writes
docs/results.md: dataset, model, the exact command, test accuracy, and training time.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name, dataset, command-line options (besides --dataset, --out, --json, --quiet)
ROWS: list[tuple[str, str, str]] = [
    ("digits-two-layer", "digits", ""),  # the defaults: `chainrule train`
    ("digits-softmax", "digits", "--model softmax"),
    ("digits-svm", "digits", "--model linear-svm"),
    (
        "fashion-two-layer",
        "fashion-mnist",
        "--hidden 512 --optimizer adam --lr 1e-3 --lr-decay cosine --epochs 30 "
        "--batch-size 128 --reg 1e-4",
    ),
    (
        "cifar-softmax",
        "cifar10-jpeg",
        "--model softmax --optimizer sgd --lr 0.005 --reg 1e-3 --epochs 30 --batch-size 200 "
        "--standardize",
    ),
    (
        "cifar-svm",
        "cifar10-jpeg",
        "--model linear-svm --optimizer sgd --lr 0.0005 --reg 1e-2 --epochs 30 --batch-size 200 "
        "--standardize",
    ),
    (
        "cifar-two-layer",
        "cifar10-jpeg",
        "--hidden 1000 --optimizer momentum --lr 0.01 --reg 5e-4 --epochs 30 --batch-size 200 "
        "--lr-decay cosine --standardize --augment flip",
    ),
]

DATASET_NAMES = {
    "digits": "digits (8x8)",
    "fashion-mnist": "Fashion-MNIST",
    "cifar10-jpeg": "CIFAR-10 (JPEG)",
}


def row_options(dataset: str, options: str) -> str:
    """A row's options as the table shows them (`chainrule train` + these)."""
    data_dir = " --data-dir ../shared/data" if dataset == "cifar10-jpeg" else ""
    return f"--dataset {dataset}{data_dir} {options} --seed 0".replace("  ", " ")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", help="run only these rows (by name)")
    parser.add_argument(
        "--data-dir",
        default=str(ROOT.parent / "shared" / "data"),
        help="where cifar10-jpeg.tar.gz is (default ../shared/data)",
    )
    parser.add_argument("--out", default=str(ROOT / "runs" / "results"))
    args = parser.parse_args()
    rows = [r for r in ROWS if not args.only or r[0] in args.only]
    Path(args.out).mkdir(parents=True, exist_ok=True)  # chainrule makes only the run folder
    for name, dataset, options in rows:
        out = Path(args.out) / name
        if (out / "summary.json").exists():
            print(f"{name}: already done ({out})", file=sys.stderr)
            continue
        if out.exists():
            subprocess.run(["rm", "-rf", str(out)], check=True)
        data_dir = ["--data-dir", args.data_dir] if dataset == "cifar10-jpeg" else []
        command = ["chainrule", "train", "--dataset", dataset, *shlex.split(options), "--seed", "0"]
        print(f"{name}: {' '.join(command)}", file=sys.stderr)
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "chainrule",
                *command[1:],
                *data_dir,
                "--out",
                str(out),
                "--json",
                "--quiet",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(f"{name}: done in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    lines = [
        "| dataset | model | command (`chainrule train` ...) | test accuracy | train time |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, dataset, options in ROWS:
        summary_file = Path(args.out) / name / "summary.json"
        if not summary_file.exists():
            continue
        s = json.loads(summary_file.read_text())
        command = row_options(dataset, options)
        lines.append(
            f"| {DATASET_NAMES[dataset]} | {s['model']} | `{command}` | "
            f"**{s['test_accuracy']:.4f}** | {s['seconds']:.1f} s ({s['epochs']} epochs) |"
        )
    table = "\n".join(lines)
    machine = f"{platform.machine()}, {platform.python_version()}, 2 cores"
    (ROOT / "docs" / "results.md").write_text(
        f"# Results\n\nMade by `python docs/results.py` on {machine}.\n\n{table}\n"
    )
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
