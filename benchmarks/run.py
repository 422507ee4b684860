"""Speed and memory of chainrule against PyTorch, scikit-learn and the matmul floor, side by side.

    python benchmarks/run.py            # the full run (~15 min on 2 idle cores, more when busy)
    python benchmarks/run.py --quick    # a short check that everything runs (under 2 minutes)

Every measurement runs in its own child process (``child.py``) with the thread counts fixed, in
interleaved rounds: round 1 runs every contender on every case, then round 2 again, and so on,
so a slow spell of a shared machine falls on all contenders alike. Writes RESULTS.md and
results.json (every raw number, per round) into --out (default: this folder). Progress goes to
stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import report
import sysinfo
from cases import CASES, QUICK_CASES, AccuracyRecipe

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
CHILD_TIMEOUT_S = 3600


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a short run: small subsets, 1 round")
    p.add_argument("--out", type=Path, default=HERE, help="folder for RESULTS.md, results.json")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 5; quick 1)")
    p.add_argument("--threads", type=int, nargs="+", help="thread counts (default 2 1; quick 1)")
    p.add_argument("--cases", nargs="+", choices=sorted(CASES), help="default: all (quick: 2)")
    p.add_argument("--skip-torch", action="store_true", help="leave PyTorch out")
    p.add_argument("--skip-sklearn", action="store_true", help="leave scikit-learn out")
    p.add_argument("--skip-accuracy", action="store_true", help="no time-to-accuracy runs")
    p.add_argument("--skip-scalar", action="store_true", help="no scalar-engine runs")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="CIFAR-10 (JPEG)")
    p.add_argument("--max-train", type=int, help="cap the training rows (quick: 5000)")
    p.add_argument("--warmup-steps", type=int, help="untimed steps per child (default 20)")
    p.add_argument(
        "--timed-epochs", type=int, help="per child; the fastest counts (default 2; quick 1)"
    )
    p.add_argument("--accuracy-max-epochs", type=int, help="cap (default 30; quick 2)")
    p.add_argument(
        "--accuracy-rounds",
        type=int,
        help="interleaved time-to-accuracy rounds (default 3; quick 1)",
    )
    p.add_argument("--scalar-terms", type=int, help="terms of the wide graph (default 1e5)")
    p.add_argument("--scalar-depth", type=int, help="depth of the chain (default 1e5)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    quick = args.quick

    def default(name: str, full: Any, short: Any) -> None:
        if getattr(args, name) is None:
            setattr(args, name, short if quick else full)

    default("rounds", 5, 1)
    default("threads", [2, 1], [1])
    default("cases", list(CASES), list(QUICK_CASES))
    default("max_train", None, 5000)
    default("warmup_steps", 20, 5)
    default("timed_epochs", 2, 1)
    default("accuracy_max_epochs", AccuracyRecipe.max_epochs, 2)
    default("accuracy_rounds", 3, 1)
    default("scalar_terms", 100_000, 10_000)
    default("scalar_depth", 100_000, 10_000)
    args.max_test = 1000 if quick else None
    args.scalar_rounds = 1 if quick else 3
    if min(args.rounds, args.timed_epochs, args.accuracy_rounds, *args.threads) < 1:
        p.error("--rounds, --timed-epochs, --accuracy-rounds and --threads must be positive")
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Children:
    """Starts child processes and collects their JSON results."""

    def __init__(self, args: argparse.Namespace, scratch: Path) -> None:
        self.args, self.scratch, self.count = args, scratch, 0

    def run(self, task: dict[str, Any], threads: int) -> dict[str, Any]:
        self.count += 1
        out = self.scratch / f"child-{self.count}.json"
        task = {
            **task,
            "threads": threads,
            "out": str(out),
            "data_dir": str(self.args.data_dir),
            "max_train": self.args.max_train,
            "max_test": self.args.max_test,
            "seed": self.args.seed,
        }
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                [sys.executable, str(HERE / "child.py"), json.dumps(task)],
                env=sysinfo.child_env(threads),
                cwd=REPO,
                stdout=subprocess.DEVNULL,  # results come back in the file `out`
                stderr=None,  # a child's progress and tracebacks go straight to ours
                text=True,
                timeout=CHILD_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            return {"status": "error", "error": f"timed out after {CHILD_TIMEOUT_S} s"}
        wall = time.perf_counter() - start
        if proc.returncode != 0 or not out.exists():
            return {"status": "error", "error": f"exit {proc.returncode} (traceback above)"}
        result = json.loads(out.read_text())
        result["child_wall_seconds"] = wall
        return result


def available(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The contenders to run, and a note for each one left out."""
    contenders, notes = [], []
    for name in report.CONTENDERS:
        module = {"torch": "torch", "sklearn": "sklearn"}.get(name)
        if getattr(args, f"skip_{name}", False):
            notes.append(f"{report.LABELS[name]} left out (--skip-{name}).")
        elif module and find_spec(module) is None:
            notes.append(f"{report.LABELS[name]} skipped: `{module}` is not installed here.")
        else:
            contenders.append(name)
    return contenders, notes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    contenders, notes = available(args)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "command": "python " + shlex.join(["benchmarks/run.py", *sys.argv[1:]])
        if argv is None
        else "python " + shlex.join(["benchmarks/run.py", *argv]),
        "machine": sysinfo.machine(),
        "versions": sysinfo.versions(),
        "git_revision": sysinfo.git_revision(REPO),
        "settings": {
            "quick": args.quick,
            "rounds": args.rounds,
            "threads": args.threads,
            "cases": {name: CASES[name].to_json() for name in args.cases},
            "contenders": contenders,
            "warmup_steps": args.warmup_steps,
            "timed_epochs": args.timed_epochs,
            "accuracy_rounds": args.accuracy_rounds,
            "max_train": args.max_train,
            "max_test": args.max_test,
            "seed": args.seed,
        },
        "thread_env": list(sysinfo.THREAD_ENV),
        "blas_env_removed": list(sysinfo.BLAS_ENV_REMOVED),
        "blas_env_in_parent": ", ".join(
            f"{k}={os.environ[k]}" for k in sysinfo.BLAS_ENV_REMOVED if k in os.environ
        ),
        "notes": notes,
        # Other work on the machine skews every timing; the load average says how much there was.
        "load_average_start": os.getloadavg(),
    }
    failures = 0
    with tempfile.TemporaryDirectory(prefix="chainrule-bench-") as scratch:
        children = Children(args, Path(scratch))

        # Load each data set once first: builds the decoded-image cache outside any timing, and
        # finds the cases whose data are not on this machine.
        datasets = sorted({CASES[c].dataset for c in args.cases})
        log(f"preparing data: {', '.join(datasets)}")
        prepared = children.run({"kind": "prepare", "datasets": datasets}, 1)
        if prepared.get("status") != "ok":
            log(f"preparing the data failed: {prepared.get('error')}")
            return 1
        results["datasets"] = prepared["datasets"]
        cases = []
        for name in args.cases:
            found = prepared["datasets"][CASES[name].dataset]
            if found["status"] == "ok":
                cases.append(name)
            else:
                notes.append(f"{CASES[name].title} skipped: {found['reason']}")

        runs: list[dict[str, Any]] = []
        blas: dict[str, Any] = {}
        total = args.rounds * len(cases) * len(args.threads) * len(contenders)
        done = 0
        rounds_started = time.perf_counter()
        for r in range(args.rounds):
            # Rotate the order each round, so no contender always runs first (or last).
            order = contenders[r % len(contenders) :] + contenders[: r % len(contenders)]
            for case in cases:
                for threads in args.threads:
                    for contender in order:
                        done += 1
                        log(
                            f"[{done}/{total}] round {r + 1}/{args.rounds} {case} "
                            f"threads={threads} {contender} ..."
                        )
                        task = {"kind": "epoch", "case": case, "contender": contender}
                        task |= {
                            "warmup_steps": args.warmup_steps,
                            "timed_epochs": args.timed_epochs,
                        }
                        res = children.run(task, threads)
                        res |= {
                            "round": r + 1,
                            "case": case,
                            "threads": threads,
                            "contender": contender,
                        }
                        runs.append(res)
                        failures += res["status"] == "error"
                        seconds = report.round_seconds(res)
                        spent = time.perf_counter() - rounds_started
                        log(
                            f"    {contender}: "
                            + (
                                f"{seconds:.3f} s/epoch, peak {res['maxrss_mib']:.0f} MiB"
                                if seconds is not None
                                else f"{res['status']}: {res.get('reason') or res.get('error')}"
                            )
                            + f" (rounds: {spent / 60:.1f} min so far, "
                            f"~{spent / done * (total - done) / 60:.1f} min left)"
                        )
                        if "blas" in res and threads == max(args.threads):
                            blas.setdefault(
                                contender,
                                {"pools": res["blas"], "torch_config": res.get("torch_config")},
                            )
        results["runs"] = runs
        results["blas"] = blas
        results["summary"] = report.summarize(runs)
        results["memory"] = chainrule_memory(results["summary"])

        if not args.skip_accuracy:
            results["accuracy"] = time_to_accuracy(args, children, contenders)
            failures += sum(
                res["status"] == "error"
                for runs in results["accuracy"]["rounds"]
                for res in runs.values()
            )
        if not args.skip_scalar:
            log("scalar engine ...")
            task = {
                "kind": "scalar",
                "terms": args.scalar_terms,
                "depth": args.scalar_depth,
                "rounds": args.scalar_rounds,
            }
            results["scalar"] = children.run(task, 1)
            failures += results["scalar"]["status"] == "error"

    results["total_seconds"] = time.perf_counter() - started
    results["load_average_end"] = os.getloadavg()
    write(args.out, results)
    log(
        f"wrote {args.out / 'RESULTS.md'} and {args.out / 'results.json'} "
        f"in {results['total_seconds']:.0f} s"
    )
    if failures:
        log(f"{failures} measurement(s) failed; see the errors above and in results.json")
    return 1 if failures else 0


def chainrule_memory(summary: dict[str, Any]) -> dict[str, Any]:
    """chainrule's peak memory as a multiple of its data, on the CIFAR-10 (JPEG) cases."""
    memory = {}
    for case, by_threads in summary.items():
        if CASES[case].dataset != "cifar10-jpeg":
            continue
        entries = [
            c["contenders"]["chainrule"]
            for c in by_threads.values()
            if "median" in c["contenders"].get("chainrule", {})
        ]
        if not entries:
            continue
        data = max(e["data_mib"] for e in entries)
        peak = max(e["maxrss_mib"] for e in entries)
        train = [e["train_peak_mib"] for e in entries if e["train_peak_mib"] is not None]
        memory[case] = {
            "data_mib": data,
            "maxrss_mib": peak,
            "maxrss_ratio": peak / data,
            "train_peak_mib": max(train) if train else None,
            "train_peak_ratio": max(train) / data if train else None,
        }
    return memory


def time_to_accuracy(
    args: argparse.Namespace, children: Children, contenders: list[str]
) -> dict[str, Any]:
    """The one recipe, run by chainrule and torch (its default Adam, and its fused one) in
    interleaved rounds, one process each, until the test accuracy reaches the target."""
    recipe = AccuracyRecipe(max_epochs=args.accuracy_max_epochs)
    threads = max(args.threads)
    names = list(report.ACCURACY_CONTENDERS)
    rounds = []
    for r in range(args.accuracy_rounds):
        runs: dict[str, Any] = {}
        # Rotate the order each round, as for the epochs.
        for contender in names[r % len(names) :] + names[: r % len(names)]:
            if contender.split("-")[0] not in contenders:  # torch-fused comes with torch
                runs[contender] = {"status": "skipped", "reason": "not run (see the notes)"}
                continue
            log(
                f"time to {recipe.target:.0%}, round {r + 1}/{args.accuracy_rounds}: "
                f"{contender} (up to {recipe.max_epochs} epochs) ..."
            )
            task = {"kind": "accuracy", "contender": contender, "recipe": recipe.to_json()}
            res = children.run(task, threads)
            runs[contender] = res
            if res.get("status") == "ok":
                log(
                    f"    {contender}: "
                    + (
                        f"{res['epochs']} epochs, {res['train_seconds']:.1f} s"
                        if res["reached"]
                        else f"not reached in {res['epochs_run']} epochs"
                    )
                )
        rounds.append({name: runs[name] for name in names})  # the same key order every round
    return {
        "recipe": recipe.to_json(),
        "threads": threads,
        "rounds": rounds,
        "summary": report.accuracy_summary(rounds),
    }


def write(out: Path, results: dict[str, Any]) -> None:
    """results.json and RESULTS.md, each written to a temporary file and renamed."""
    for name, text in (
        ("results.json", json.dumps(results, indent=1, default=str)),
        ("RESULTS.md", report.markdown(results)),
    ):
        tmp = out / f"{name}.tmp"
        tmp.write_text(text)
        tmp.replace(out / name)


if __name__ == "__main__":
    sys.exit(main())
