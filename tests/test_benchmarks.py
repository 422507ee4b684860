"""The benchmark script: its quick run works end to end and writes its files.

Nothing here asserts anything about speed: timings on a shared machine say nothing reliable,
and the point is that the benchmark runs, not what it finds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def import_bench(name: str) -> ModuleType:
    """A module of benchmarks/ (a folder of scripts, not a package)."""
    sys.path.insert(0, str(BENCH))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(BENCH))


def test_ratios_are_taken_per_round_then_the_median() -> None:
    report = import_bench("report")

    def run(contender: str, rnd: int, seconds: float) -> dict:
        return {
            "status": "ok",
            "case": "fmnist-128",
            "threads": 1,
            "contender": contender,
            "round": rnd,
            "epoch_seconds": [seconds],
            "maxrss_mib": 100.0,
            "train_peak_mib": 90.0,
            "data_mib": 50.0,
        }

    # chainrule / floor per round: 2, 3, 10 -> median 3 (a ratio of medians would be 4 / 2 = 2).
    runs = [run("chainrule", 1, 2.0), run("chainrule", 2, 6.0), run("chainrule", 3, 4.0)]
    runs += [run("floor", 1, 1.0), run("floor", 2, 2.0), run("floor", 3, 0.4)]
    skipped = {"status": "skipped", "reason": "no torch", "contender": "torch", "round": 1}
    runs.append(skipped | {"case": "fmnist-128", "threads": 1})
    cell = report.summarize(runs)["fmnist-128"]["1"]
    floor = cell["ratios"]["chainrule/floor"]
    assert floor["median"] == pytest.approx(3.0)
    assert (floor["low"], floor["high"]) == (pytest.approx(2.0), pytest.approx(10.0))
    assert floor["fastest"] == pytest.approx(2.0 / 0.4)  # each side's fastest epoch
    assert report._ratio_cell(floor) == "3.00 (2.00-10.00; 5.00)"
    assert "chainrule/torch" not in cell["ratios"]
    chainrule = cell["contenders"]["chainrule"]
    assert (chainrule["min"], chainrule["median"], chainrule["max"]) == (2.0, 4.0, 6.0)
    assert cell["contenders"]["torch"]["status"] == "no torch"


def test_a_child_counts_its_fastest_epoch() -> None:
    report = import_bench("report")
    assert report.round_seconds({"status": "ok", "epoch_seconds": [3.0, 2.0, 2.5]}) == 2.0
    assert report.round_seconds({"status": "skipped", "epoch_seconds": [1.0]}) is None


def test_a_missed_ratio_target_says_what_meeting_it_would_take() -> None:
    report = import_bench("report")

    def cell(floor: float, torch: float, sklearn: float) -> dict:
        ratios = {"chainrule/floor": floor, "chainrule/torch": torch, "chainrule/sklearn": sklearn}
        return {"2": {"ratios": {k: {"median": v} for k, v in ratios.items()}}}

    summary = {"fmnist-128": cell(1.3, 0.5, 0.65), "cifar-200": cell(1.1, 0.7, 0.8)}
    lines = "\n".join(report._what_a_miss_would_take({"summary": summary}))
    assert "chainrule / floor on Fashion-MNIST, batch 128: 1.30, 0.10 of the floor's" in lines
    # sklearn at 1.3 / 0.65 = 2.00x the floor: 0.6 of that is 1.20x; met by nobody below 1.2
    assert "sklearn ran at about 2.00x the floor, so 0.6 of its time is 1.20x" in lines
    # CIFAR: sklearn at 1.1 / 0.8 = 1.375x; 0.6 of it is 0.825x: below the floor
    assert "so 0.6 of its time is 0.82x the floor; chainrule ran at 1.10x. Below the floor" in lines
    assert "torch" not in lines  # both torch targets met
    assert report._what_a_miss_would_take({"summary": {}}) == []


def test_time_to_accuracy_is_judged_on_the_median_of_per_round_ratios() -> None:
    report = import_bench("report")

    def run(seconds: float, epochs: int = 9, reached: bool = True) -> dict:
        accuracy = [0.85] * (epochs - 1) + [0.895 if reached else 0.885]
        per_epoch = [seconds / epochs] * epochs
        return {
            "status": "ok",
            "reached": reached,
            "epochs": epochs if reached else None,
            "train_seconds": seconds if reached else None,
            "epochs_run": epochs,
            "epoch_seconds": per_epoch,
            "test_accuracy": accuracy,
        }

    # per round chainrule / torch: 0.8, 1.5 (a slow spell), 0.9 -> median 0.9, met
    rounds = [
        {"chainrule": run(8.0), "torch": run(10.0), "torch-fused": run(6.0)},
        {"chainrule": run(15.0), "torch": run(10.0), "torch-fused": run(7.5)},
        {"chainrule": run(9.0), "torch": run(10.0), "torch-fused": run(6.0)},
    ]
    summary = report.accuracy_summary(rounds)
    ratio = summary["ratios"]["chainrule/torch"]
    assert ratio["median"] == pytest.approx(0.9)
    assert (ratio["low"], ratio["high"]) == (pytest.approx(0.8), pytest.approx(1.5))
    assert ratio["fastest"] == pytest.approx(0.8)
    assert summary["contenders"]["chainrule"]["median"] == pytest.approx(9.0)
    recipe = {"target": 0.89, "input_size": 784, "hidden_size": 512, "num_classes": 10}
    recipe |= {"learning_rate": 1e-3, "batch_size": 128, "reg": 0.0, "max_epochs": 30}
    acc = {"recipe": recipe, "threads": 2, "rounds": rounds, "summary": summary}

    def target_row(acc: dict) -> str:
        lines = report._targets_section({"summary": {}, "accuracy": acc})
        (row,) = [line for line in lines if "89%" in line]
        return row

    row = target_row(acc)
    assert "0.90: 9.00 s vs 10.00 s (9 vs 9 epochs) | yes | 0.80 |" in row
    section = "\n".join(report._accuracy_section(acc))
    assert (
        "3 interleaved round(s)" in section
        and "| 2 | chainrule (fit) | yes | 9 | 15.00 |" in section
    )

    # A tie is not "less wall time"; a contender that never got there has no ratio.
    tie = report.accuracy_summary([{"chainrule": run(10.0), "torch": run(10.0)}])
    assert "| no, by 0.0% |" in target_row(acc | {"summary": tie})

    def without_ratio(rounds: list) -> str:
        return target_row(acc | {"rounds": rounds, "summary": report.accuracy_summary(rounds)})

    slow, skipped = run(30.0, 30, reached=False), {"status": "skipped", "reason": "no data"}
    assert "chainrule did not reach it in 30 epochs | no |" in without_ratio(
        [{"chainrule": slow, "torch": run(10.0)}]
    )
    assert "9.00 s; torch did not reach it in 30 epochs | yes |" in without_ratio(
        [{"chainrule": run(9.0), "torch": slow}]
    )
    assert "| chainrule did not run | not measured |" in without_ratio(
        [{"chainrule": skipped, "torch": run(10.0)}]
    )
    error = {"status": "error", "error": "exit 1"}
    assert "never in the same round | not measured |" in without_ratio(
        [{"chainrule": run(9.0), "torch": error}, {"chainrule": error, "torch": run(10.0)}]
    )

    # results.json from before the rounds: one run per contender under "runs"
    pair = {"chainrule": run(8.0), "torch": run(10.0)}
    old = {"recipe": recipe, "threads": 2, "runs": pair}
    assert report.accuracy_rounds(old) == [pair]
    assert "| 1 | PyTorch (CPU, eager) | yes | 9 | 10.00 |" in "\n".join(
        report._accuracy_section(old)
    )


def test_sklearn_alpha_matches_our_reg() -> None:
    contenders = import_bench("contenders")
    # alpha/2 * ||W||^2 / B must equal reg * ||W||^2
    reg, batch = 1e-4, 128
    assert contenders.sklearn_alpha(reg, batch) / 2 / batch == pytest.approx(reg)


@pytest.mark.slow
def test_quick_run_writes_results(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    text = (tmp_path / "RESULTS.md").read_text()
    results = json.loads((tmp_path / "results.json").read_text())
    for key in ("command", "machine", "versions", "settings", "runs", "summary", "blas"):
        assert key in results
    assert results["settings"]["quick"] is True
    assert "--quick" in results["command"]
    assert results["machine"]["cpu_model"]
    assert "## Seconds per epoch" in text and "## BLAS" in text

    if not FASHION_DIR.exists() and not os.environ.get("CI"):
        pytest.skip("Fashion-MNIST is not installed here: no case could run")
    ran = {run["contender"] for run in results["runs"] if run["status"] == "ok"}
    # Every installed contender ran (torch is optional: the test extra does not install it).
    assert {"chainrule", "sklearn", "floor"} <= ran
    for run in results["runs"]:
        assert run["status"] in ("ok", "skipped"), run
        if run["status"] == "ok":
            assert run["epoch_seconds"] and all(s > 0 for s in run["epoch_seconds"])
            assert run["maxrss_mib"] > 0
            assert any(pool.get("user_api") == "blas" for pool in run["blas"])
    cell = results["summary"]["fmnist-128"]["1"]
    assert cell["ratios"]["chainrule/floor"]["median"] > 0
    assert cell["ratios"]["chainrule/sklearn"]["median"] > 0

    (acc_round,) = results["accuracy"]["rounds"]  # quick: one round
    acc = acc_round["chainrule"]
    assert acc["status"] == "ok" and all(0 <= a <= 1 for a in acc["test_accuracy"])
    scalar = results["scalar"]
    assert scalar["status"] == "ok"
    chain = scalar["runs"]["chainrule"]["deep"][0]
    assert chain["grad"] == 1.0  # d(x * 1.0 * ... * 1.0)/dx, through 10^4 gates, no recursion
    if "micrograd" in scalar["runs"]:
        assert scalar["agreement"]["max_abs_diff"] < 1e-12
    assert "Time to 89%" in text and "Scalar engine" in text


def test_chainrule_and_torch_train_the_same_maths_in_the_benchmark() -> None:
    # The speed comparison is fair only if both contenders do the same work: same initial
    # weights, batches, loss with its L2 term (each library's own way) and SGD steps. One epoch
    # on a small case; the per-epoch mean losses (the L2 value included) must agree.
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    import numpy as np

    cases, contenders = import_bench("cases"), import_bench("contenders")
    case = cases.Case("tiny", "tiny", "none", 20, 16, 4, 8, 0.05, 0.01)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((96, 20)).astype(np.float32)
    y = rng.integers(0, 4, 96)
    data = contenders._warmup_data(
        type("D", (), {"X_train": X, "y_train": y, "X_val": X[:16], "y_val": y[:16]}), 96
    )
    ours = contenders.time_chainrule(case, data, warmup_steps=2, timed_epochs=2, seed=0)
    theirs = contenders.time_torch(case, data, 1, warmup_steps=2, timed_epochs=2, seed=0)
    np.testing.assert_allclose(ours["loss"], theirs["loss"], rtol=1e-4)
    assert ours["loss"][1] < ours["loss"][0]  # it trains
