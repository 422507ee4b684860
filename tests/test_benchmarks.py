"""The benchmark harness: its fairness, its arithmetic, its report, and that a quick run works.

Nothing here asserts anything about speed: timings on a shared machine say nothing reliable, and
the point is that the benchmark is fair and runs, not what it finds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
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


def run(contender: str, rnd: int, seconds: list[float], **more: object) -> dict:
    """One epoch measurement as results.json holds it."""
    row = {"round": rnd, "case": "fmnist-128", "threads": 2, "contender": contender}
    return row | {"status": "ok", "seconds": seconds, "maxrss_mib": 100.0} | more


def test_ratios_are_taken_per_round_then_the_median() -> None:
    report = import_bench("report")
    # chainrule / floor per round: 2, 3, 10 -> median 3 (a ratio of the medians would say 2).
    # Each child counts its fastest epoch: round 1's chainrule took 2.0, not 5.0.
    runs = [run("chainrule", 1, [5.0, 2.0]), run("chainrule", 2, [6.0]), run("chainrule", 3, [4.0])]
    runs += [run("floor", 1, [1.0], gather_seconds=0.5), run("floor", 2, [2.0])]
    runs += [run("floor", 3, [0.4]), run("torch", 1, [], status="skipped", reason="no torch")]
    cell = report.summarize(runs)[("fmnist-128", 2)]
    floor = cell["floor"]["ratio"]
    assert floor["median"] == pytest.approx(3.0)
    assert (floor["low"], floor["high"]) == (pytest.approx(2.0), pytest.approx(10.0))
    assert floor["fastest"] == pytest.approx(2.0 / 0.4)  # each side's fastest epoch
    assert report.cell_text(floor) == "3.00 (2.00-10.00; 5.00)"
    assert cell["torch"]["ratio"] is None and cell["torch"]["why"] == {"skipped: no torch"}
    assert cell["chainrule"]["seconds"] == {1: 2.0, 2: 6.0, 3: 4.0}
    # a round where one side failed gives no ratio, rather than pairing it with another round
    assert report.ratio({1: (2.0, 1.0), 2: (None, 1.0), 3: (3.0, None)})["median"] == 2.0
    assert report.ratio({1: (None, 1.0)}) is None


def test_targets_judge_the_median_at_two_threads() -> None:
    report = import_bench("report")
    runs = [run("chainrule", r, [s]) for r, s in ((1, 1.04), (2, 1.2), (3, 1.0))]
    runs += [run("baseline", r, [1.0]) for r in (1, 2, 3)]
    runs += [run(who, r, [1.0], threads=1) for who in ("chainrule", "torch") for r in (1, 2)]
    results = {"cases": {"fmnist-128": {"title": "F128", "dataset": "fashion-mnist"}}}
    lines = report.targets(results, report.summarize(runs), {})
    (row,) = [line for line in lines if "baseline" in line]
    assert row.startswith("| chainrule / baseline <= 1.05 on F128 (2 threads) |")
    assert row.endswith("| 1.04 (1.00-1.20; 1.00) | yes |")
    assert not any("torch" in line for line in lines)  # measured at 1 thread only
    assert report.verdict(1.26, 1.2) == "no, by 5%"


def test_time_to_accuracy_is_judged_on_the_median_of_per_round_ratios() -> None:
    report = import_bench("report")

    def race(rnd: int, contender: str, seconds: float, reached: bool = True) -> dict:
        accuracy = [0.85, 0.895 if reached else 0.885]
        return {"round": rnd, "contender": contender, "status": "ok"} | {
            "seconds": [seconds / 2] * 2,
            "accuracy": accuracy,
        }

    # per round chainrule / torch: 0.8, 1.5 (a slow spell), 0.9 -> median 0.9
    runs = [race(1, "chainrule", 8.0), race(1, "torch", 10.0)]
    runs += [race(2, "chainrule", 15.0), race(2, "torch", 10.0)]
    runs += [race(3, "chainrule", 9.0), race(3, "torch", 10.0), race(3, "torch-fused", 6.0)]
    ratios = report.accuracy_summary({"threads": 2, "runs": runs})
    assert ratios["torch"]["median"] == pytest.approx(0.9)
    assert (ratios["torch"]["low"], ratios["torch"]["high"]) == (0.8, 1.5)
    assert ratios["torch-fused"]["median"] == pytest.approx(1.5)
    # a contender that never reached the target has no ratio; the table says so
    slow = {"threads": 2, "runs": [race(1, "chainrule", 9.0), race(1, "torch", 30.0, False)]}
    summary = report.accuracy_summary(slow)
    assert "torch" not in summary
    # the seconds per epoch compare still: what the target's crossing, a matter of rounding on a
    # plateau of test accuracy, does not decide
    assert summary["torch per epoch"]["median"] == pytest.approx(9.0 / 30.0)
    assert "| 1 | PyTorch (CPU, eager) | 2 | not reached | 15.000 | 0.8500, 0.8850 |" in "\n".join(
        report.accuracy_section(slow, summary)
    )


def test_sklearn_alpha_matches_our_reg() -> None:
    contenders = import_bench("contenders")
    # scikit-learn's alpha / 2 * ||W||^2 / batch must equal our reg * ||W||^2
    reg, batch = 1e-4, 128
    assert contenders.sklearn_alpha(reg, batch) / 2 / batch == pytest.approx(reg)


def tiny_case(contenders: ModuleType, hidden_size: int | None) -> tuple:
    case = contenders.Case("tiny", "fashion-mnist", 20, hidden_size, 4, 8, 0.05, 0.01)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((96, 20)).astype(np.float32)
    y = rng.integers(0, 4, 96)
    data = SimpleNamespace(X_train=X, y_train=y, X_val=X[:16], y_val=y[:16], X_test=X, y_test=y)
    return case, data


@pytest.mark.parametrize("hidden_size", [16, None])
def test_chainrule_and_torch_train_the_same_maths_in_the_benchmark(hidden_size: int | None) -> None:
    # The comparison is fair only if both do the same work: the same initial weights, batches,
    # loss with its L2 term (each library's own way) and SGD steps. Two epochs on a small case,
    # after the warm-up: the per-epoch mean losses (the L2 value included) must agree.
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    contenders = import_bench("contenders")
    case, data = tiny_case(contenders, hidden_size)
    ours = contenders.time_chainrule(case, data, warmup_steps=2, timed_epochs=2)
    theirs = contenders.time_torch(case, data, warmup_steps=2, timed_epochs=2)
    np.testing.assert_allclose(ours["loss"], theirs["loss"], rtol=1e-4)
    assert ours["loss"][1] < ours["loss"][0]  # it trains
    assert len(ours["seconds"]) == 2 and all(s > 0 for s in ours["seconds"])
    floor = contenders.time_floor(case, data, warmup_steps=2, timed_epochs=3)
    assert len(floor["seconds"]) == 3 and floor["gather_seconds"] > 0
    sklearn = contenders.time_sklearn(case, data, warmup_steps=2, timed_epochs=2)
    assert len(sklearn["loss"]) == 2


def test_chainrule_and_torch_run_the_same_adam_in_the_accuracy_race(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    contenders = import_bench("contenders")
    rng = np.random.default_rng(1)
    X = rng.standard_normal((1280, 784)).astype(np.float32)
    y = rng.integers(0, 10, 1280)
    X[np.arange(1280), y] += 4.0  # learnable: pixel y stands out
    data = SimpleNamespace(X_train=X[:1024], y_train=y[:1024], X_val=X[1024:], y_val=y[1024:])
    data.X_test, data.y_test = X[1024:], y[1024:]
    monkeypatch.setattr(contenders, "ACCURACY_TARGET", 2.0)  # never reached: run every epoch
    ours = contenders.accuracy_chainrule(data, max_epochs=3)
    theirs = contenders.accuracy_torch(data, max_epochs=3, fused=False)
    assert len(ours["accuracy"]) == len(theirs["accuracy"]) == 3
    np.testing.assert_allclose(ours["accuracy"], theirs["accuracy"], atol=2 / 256)
    assert ours["accuracy"] == sorted(ours["accuracy"]) and ours["accuracy"][-1] > 0.3  # learns


def test_results_md_is_made_from_results_json() -> None:
    # RESULTS.md is never edited by hand: it is what report.py makes from results.json.
    report = import_bench("report")
    results = json.loads((BENCH / "results.json").read_text())
    assert (BENCH / "RESULTS.md").read_text() == report.markdown(results)
    assert report.dumps(results) == (BENCH / "results.json").read_text()
    lines = len(report.dumps(results).splitlines())
    assert lines < len(report.measurements(results)) + 60  # one line per measurement


@pytest.mark.slow
def test_quick_run_with_a_baseline_tree(tmp_path: Path) -> None:
    # The before/after mode: a second chainrule contender imports chainrule from another tree
    # (here a copy of this one's src/) and is timed beside the first, round by round.
    baseline = tmp_path / "old"
    shutil.copytree(BENCH.parent / "src", baseline / "src")
    out = tmp_path / "out"
    command = [sys.executable, str(BENCH / "run.py"), "--quick", "--out", str(out)]
    command += ["--baseline-src", str(baseline)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = import_bench("report")
    results = json.loads((out / "results.json").read_text())
    assert (out / "RESULTS.md").read_text() == report.markdown(results)
    assert results["settings"]["quick"] is True and "--quick" in results["command"]
    assert results["machine"]["cpu"] and results["revision"]
    assert "**A `--quick` run**" in (out / "RESULTS.md").read_text()
    if not FASHION_DIR.exists() and not os.environ.get("CI"):
        pytest.skip("Fashion-MNIST is not installed here: no case could run")

    ran = {r["contender"] for r in results["runs"] if r["status"] == "ok"}
    assert {"chainrule", "baseline", "sklearn", "floor"} <= ran  # torch is optional
    assert all(r["status"] in ("ok", "skipped") for r in report.measurements(results))
    assert results["blas"]["chainrule"]["chainrule"] == str(BENCH.parent / "src")
    assert results["blas"]["baseline"]["chainrule"] == str(baseline / "src")
    for name, blas in results["blas"].items():
        assert blas["pools"], name  # each contender reports the BLAS it ran on
    cell = report.summarize(results["runs"])[("fmnist-128", 1)]
    assert cell["baseline"]["ratio"]["median"] > 0 and cell["floor"]["ratio"]["median"] > 0
    chainrule = next(r for r in results["runs"] if r["contender"] == "chainrule")
    assert chainrule["maxrss_mib"] > 0 and len(chainrule["seconds"]) == 1

    races = {r["contender"]: r for r in results["accuracy"]["runs"]}
    assert races["chainrule"]["status"] == "ok" and len(races["chainrule"]["accuracy"]) == 2
    if "torch" in races and races["torch"]["status"] == "ok":  # the same maths, the same batches
        np.testing.assert_allclose(
            races["chainrule"]["accuracy"], races["torch"]["accuracy"], atol=0.01
        )
