"""Training on the real images, end to end through `chainrule train`, on subsets sized for CI.

Skipped when the data is missing, except under CI, where a missing dataset is a failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FASHION_DIR as FASHION
from conftest import SHARED_DATA, require

pytestmark = pytest.mark.slow


def train(tmp_path: Path, *args: str) -> dict:
    tmp_path.mkdir(parents=True, exist_ok=True)  # train makes the run folder, not its parents
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "chainrule",
            "train",
            *args,
            "--out",
            str(tmp_path / "run"),
            "--json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_fashion_mnist_two_layer_learns(tmp_path):
    require(FASHION)
    summary = train(
        tmp_path,
        "--dataset",
        "fashion-mnist",
        "--max-train",
        "12000",
        "--hidden",
        "128",
        "--optimizer",
        "adam",
        "--lr",
        "1e-3",
        "--epochs",
        "3",
        "--batch-size",
        "128",
    )
    assert summary["n_test"] == 10_000
    assert summary["test_accuracy"] > 0.82


def test_cifar10_jpeg_softmax_and_two_layer_learn(tmp_path):
    require(SHARED_DATA / "cifar10-jpeg.tar.gz")
    common = [
        "--dataset",
        "cifar10-jpeg",
        "--data-dir",
        str(SHARED_DATA),
        "--max-train",
        "10000",
        "--max-test",
        "2000",
        "--batch-size",
        "200",
        "--standardize",
    ]
    softmax = train(
        tmp_path / "a",
        *common,
        "--model",
        "softmax",
        "--optimizer",
        "sgd",
        "--lr",
        "0.005",
        "--reg",
        "1e-3",
        "--epochs",
        "5",
    )
    assert softmax["test_accuracy"] > 0.30  # chance is 0.10
    net = train(
        tmp_path / "b",
        *common,
        "--hidden",
        "200",
        "--lr",
        "0.01",
        "--epochs",
        "4",
        "--augment",
        "flip",
    )
    assert net["test_accuracy"] > 0.35
