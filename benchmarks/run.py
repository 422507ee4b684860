"""Speed and memory of chainrule against PyTorch, scikit-learn and the matmul floor, side by side.

    python benchmarks/run.py                    # the full run (~15-20 min on 2 quiet cores)
    python benchmarks/run.py --quick            # checks that everything runs (under 2 minutes)
    python benchmarks/run.py --baseline REV     # also times chainrule at commit REV: new / old

Each measurement runs in its own child process (child.py) with its thread count fixed, in
interleaved rounds: round 1 runs every contender on every case, then round 2, and so on, the
contenders' order rotated each round, so a slow spell of a shared machine falls on all of them.
Writes results.json (every measurement, one per line) and RESULTS.md, made from it by report.py,
into --out. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import report
from contenders import CASES, QUICK_CASES

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CONTENDERS = ("chainrule", "torch", "sklearn", "floor")  # "baseline" joins with --baseline
# Set on some machines to steer OpenBLAS's kernel choice or cache blocking, they can slow NumPy's
# products down: every child runs without them.
BLAS_ENV_REMOVED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = p.add_argument
    add("--quick", action="store_true", help="small subsets, 1 round, 1 thread")
    add("--out", type=Path, help="for results.json, RESULTS.md (default: here; quick: ./quick)")
    add("--baseline", metavar="REV", help="also time chainrule at this git commit")
    add("--baseline-src", type=Path, metavar="DIR", help="or in this checkout (its src/)")
    add("--rounds", type=int, help="interleaved rounds (default 5; quick 1)")
    add("--threads", type=int, nargs="+", help="thread counts (default 2 1; quick 1)")
    add("--cases", nargs="+", choices=CASES, help="default: all (quick: 2)")
    add("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    add("--skip-accuracy", action="store_true", help="no time-to-89%% race")
    add("--data-dir", type=Path, default=REPO.parent / "shared" / "data", help="CIFAR-10 (JPEG)")
    add("--warmup-steps", type=int, default=20, help="untimed steps per child")
    add("--timed-epochs", type=int, help="per child; the fastest counts (default 2; quick 1)")
    add("--accuracy-rounds", type=int, help="default 3; quick 1")
    add("--accuracy-max-epochs", type=int, help="default 30; quick 2")
    args = p.parse_args(argv)
    if args.baseline and args.baseline_src:
        p.error("give --baseline or --baseline-src, not both")
    if args.baseline_src and not (args.baseline_src / "src" / "chainrule").is_dir():
        p.error(f"--baseline-src: no src/chainrule in {args.baseline_src}")
    if args.baseline:
        args.baseline = git("rev-parse", "--short", f"{args.baseline}^{{commit}}")
        if args.baseline is None:
            p.error("--baseline: no such commit in this repository")
    for name, full, quick in (
        ("out", HERE, HERE / "quick"),
        ("rounds", 5, 1),
        ("threads", [2, 1], [1]),
        ("cases", list(CASES), list(QUICK_CASES)),
        ("timed_epochs", 2, 1),
        ("accuracy_rounds", 3, 1),
        ("accuracy_max_epochs", 30, 2),
    ):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    try:
        args.out.mkdir(parents=True, exist_ok=True)  # fails now rather than after the run
    except OSError as err:
        p.error(f"--out: {err}")
    counts = (args.rounds, args.timed_epochs, args.accuracy_rounds, args.accuracy_max_epochs)
    if min(*counts, *args.threads) < 1 or args.warmup_steps < 0:
        p.error("rounds, epochs and thread counts must be positive")
    args.max_rows = (5000, 1000) if args.quick else (None, None)  # training, test
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def git(*args: str, cwd: Path = REPO) -> str | None:
    """git's output, or None where it fails (not a checkout, no such commit)."""
    run = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True)
    return run.stdout.strip() if run.returncode == 0 else None


def revision(tree: Path) -> str:
    """The commit of ``tree``, with '+dirty' when its tracked files have changes."""
    head = git("rev-parse", "--short", "HEAD", cwd=tree)
    dirty = git("status", "--porcelain", "--untracked-files=no", cwd=tree)
    return f"{head}{'+dirty' if dirty else ''}" if head else "unknown (not a git checkout)"


def export(rev: str, scratch: Path) -> Path:
    """The src/ folder of commit ``rev`` unpacked into ``scratch`` (git archive: no worktree)."""
    tar, tree = scratch / "baseline.tar", scratch / "baseline"
    tree.mkdir()
    subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(tar), rev, "src"], check=True)
    subprocess.run(["tar", "-xf", str(tar), "-C", str(tree)], check=True)
    return tree / "src"


def machine() -> dict[str, Any]:
    """CPU model and vector extensions, usable cores, memory, OS and Python."""
    found: dict[str, Any] = {"cpu": platform.processor() or "unknown", "simd": []}
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        flags = next(line for line in lines if line.startswith("flags")).split()
        found["cpu"] = next(line for line in lines if line.startswith("model name")).split(": ")[1]
        found["simd"] = [f for f in ("avx512f", "avx2", "fma") if f in flags]
        mem = Path("/proc/meminfo").read_text().split()
        found["memory_gib"] = round(int(mem[mem.index("MemTotal:") + 1]) / 2**20, 1)
    except (OSError, StopIteration, ValueError, IndexError):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return found | {
        "cpus": f"{usable} usable of {os.cpu_count()}",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def versions() -> dict[str, str]:
    found = {}
    for name in ("chainrule", "numpy", "torch", "scikit-learn", "threadpoolctl"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


class Bench:
    """One run: its settings, its scratch folder, and the results as they come in."""

    def __init__(self, args: argparse.Namespace, scratch: Path, results: dict[str, Any]) -> None:
        self.args, self.scratch, self.results, self.count = args, scratch, results, 0
        self.sources = {"chainrule": REPO / "src"}  # where each contender imports chainrule from
        self.contenders = [c for c in CONTENDERS if c in args.contenders]
        self.data: dict[str, str] = {}  # data set -> the folder of its .npy arrays

    def child(self, task: dict[str, Any], threads: int, src: Path = REPO / "src") -> dict[str, Any]:
        """Runs one child: fixed threads, no OpenBLAS overrides, chainrule imported from ``src``."""
        self.count += 1
        out = self.scratch / f"child-{self.count}.json"
        env = {k: v for k, v in os.environ.items() if k not in BLAS_ENV_REMOVED}
        env |= {name: str(threads) for name in THREAD_ENV}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
        task = json.dumps(task | {"threads": threads})
        proc = subprocess.run([sys.executable, str(HERE / "child.py"), task, str(out)], env=env)
        if proc.returncode != 0 or not out.exists():
            return {"status": "error", "error": f"exit {proc.returncode} (traceback above)"}
        return json.loads(out.read_text())

    def baseline(self) -> None:
        """The second chainrule contender: the tree of --baseline-src, or --baseline's commit."""
        args = self.args
        if args.baseline_src:
            self.sources["baseline"] = args.baseline_src.resolve() / "src"
            self.results["baseline"] = f"{revision(args.baseline_src)} ({args.baseline_src})"
        else:
            self.sources["baseline"] = export(args.baseline, self.scratch)
            self.results["baseline"] = args.baseline
        self.contenders.insert(1, "baseline")

    def prepare(self) -> None:
        """Each data set loaded once, outside any timing, and saved as .npy for the children."""
        needed = {CASES[c].dataset for c in self.args.cases}
        needed |= set() if self.args.skip_accuracy else {"fashion-mnist"}
        datasets = self.results["datasets"] = {}
        for dataset in sorted(needed):
            log(f"preparing {dataset} ...")
            folder = str(self.scratch / dataset)
            task = {"kind": "prepare", "dataset": dataset, "folder": folder}
            task |= {"data_dir": str(self.args.data_dir), "max_rows": self.args.max_rows}
            found = self.child(task, 2)
            if found["status"] == "ok":
                self.data[dataset] = folder
                datasets[dataset] = {k: found[k] for k in ("train_rows", "data_mib")}
            else:
                reason = found.get("reason") or found.get("error")
                self.results["notes"].append(f"{dataset} not measured: {reason}")

    def interleaved(self, rounds: int, names: list[str], jobs: list[dict[str, Any]]) -> list:
        """Every job for every contender, round after round, the contenders' order rotating so
        that none always runs first (or last); one child each, chainrule from its own source."""
        runs: list[dict[str, Any]] = []
        total, start = rounds * len(jobs) * len(names), time.perf_counter()
        for r in range(1, rounds + 1):
            k = (r - 1) % len(names)
            for job in jobs:
                for name in names[k:] + names[:k]:
                    row = {"round": r} | {k: job[k] for k in ("case", "threads") if k in job}
                    what = f"round {r}, {job.get('case', 'time to 89%')}, {job['threads']} thr."
                    log(f"[{len(runs) + 1}/{total}] {what}: {name}")
                    src = self.sources.get(name, REPO / "src")
                    res = self.child(job | {"contender": name}, job["threads"], src)
                    blas = res.pop("blas", None)
                    if blas and job["threads"] == max(self.args.threads):
                        self.results.setdefault("blas", {}).setdefault(name, blas)
                    runs.append(row | {"contender": name} | res)
                    left = (time.perf_counter() - start) / len(runs) * (total - len(runs)) / 60
                    log(f"    {report.describe(runs[-1])} (~{left:.1f} min left)")
        return runs

    def epochs(self) -> None:
        """Seconds per epoch: every contender on every case and thread count."""
        args = self.args
        epoch = {"kind": "epoch", "warmup_steps": args.warmup_steps}
        epoch["timed_epochs"] = args.timed_epochs
        jobs = [
            epoch | {"case": c, "data": self.data[CASES[c].dataset], "threads": threads}
            for c in args.cases
            if CASES[c].dataset in self.data
            for threads in args.threads
        ]
        self.results["runs"] = self.interleaved(args.rounds, self.contenders, jobs)

    def accuracy(self) -> None:
        """The time to 89%: chainrule, torch's default Adam and its fused one, at the largest
        thread count, in interleaved rounds."""
        names = [n for n in report.ACCURACY_CONTENDERS if n.split("-")[0] in self.contenders]
        job = {"kind": "accuracy", "data": self.data["fashion-mnist"]}
        job |= {"max_epochs": self.args.accuracy_max_epochs, "threads": max(self.args.threads)}
        runs = self.interleaved(self.args.accuracy_rounds, names, [job])
        self.results["accuracy"] = {"threads": job["threads"], "runs": runs}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    settings = ("quick", "rounds", "threads", "warmup_steps", "timed_epochs", "max_rows")
    results: dict[str, Any] = {
        "command": shlex.join(
            ["python", "benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "revision": revision(REPO),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        # other work on the machine skews every timing: the load average says how much there was
        "load_average": [[round(x, 2) for x in os.getloadavg()]],
        "blas_env_in_parent": [f"{k}={os.environ[k]}" for k in BLAS_ENV_REMOVED if k in os.environ],
        "settings": {k: getattr(args, k) for k in settings},
        "cases": {name: CASES[name].to_json() for name in args.cases},
        "notes": [],
    }
    with tempfile.TemporaryDirectory(prefix="chainrule-bench-") as scratch:
        bench = Bench(args, Path(scratch), results)
        if args.baseline or args.baseline_src:
            bench.baseline()
        bench.prepare()
        bench.epochs()
        if not args.skip_accuracy and "fashion-mnist" in bench.data:
            bench.accuracy()
    results["load_average"].append([round(x, 2) for x in os.getloadavg()])
    results["minutes"] = round((time.perf_counter() - started) / 60, 1)
    for name, write in ("results.json", report.dumps), ("RESULTS.md", report.markdown):
        (args.out / f"{name}.tmp").write_text(write(results))
        (args.out / f"{name}.tmp").replace(args.out / name)  # no half-written file, ever
    log(f"wrote {args.out}/RESULTS.md and results.json in {results['minutes']:.1f} min")
    failed = [r for r in report.measurements(results) if r.get("status") == "error"]
    if failed:
        log(f"{len(failed)} measurement(s) failed: see the tracebacks above")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
