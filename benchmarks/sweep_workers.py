"""Two sweep workers against one: does `--jobs 2` finish 2N trials in about the time one worker
takes for N? (Issue 21's target: at most 1.15 times, on a 2-core machine, one BLAS thread each.)

    python benchmarks/sweep_workers.py                 # N = 16 digits trials of 50 epochs, 3 rounds
    python benchmarks/sweep_workers.py --trials 4 --rounds 1   # a quick look

Every trial has the same settings (fixed lr, reg, hidden size, optimizer and batch size), so the
two sweeps do the same work per trial, and every worker has one BLAS thread. `chainrule sweep`
gives each worker cores / J BLAS threads, counting the cores this process may run on, so the
one-worker sweep runs pinned to one core (Linux): with both cores a digits worker gets a second
BLAS thread, which slows it rather than helping, and that would flatter the two workers.
Each round runs both, one after the other, the order
swapped every round so a slow spell of a shared machine falls on both; the ratio is taken per
round, then the median. Two times per sweep: the trials' own span (from the first trial's start
to the last one's end, read from the study: what the workers do) and the whole command (adds
start-up, the best trial trained again and the figures, which do not grow with N).
Prints one table; nothing is written outside a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Set on some machines to steer OpenBLAS's kernel choice or cache blocking, they slow NumPy.
BLAS_ENV_REMOVED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
FIXED = ("--lr", "0.02", "--reg", "1e-4", "--hidden", "128", "--optimizer", "momentum")
FIXED += ("--batch-size", "32", "--dataset", "digits", "--quiet")


def run_sweep(folder: Path, trials: int, jobs: int, epochs: int) -> tuple[float, float]:
    """(trials' span, command's wall time) in seconds of one sweep into ``folder``."""
    import optuna

    from chainrule.app import sweep_storage

    env = {k: v for k, v in os.environ.items() if k not in BLAS_ENV_REMOVED}
    args = ["--trials", str(trials), "--jobs", str(jobs), "--epochs", str(epochs)]
    pin = None
    if jobs == 1:  # one core, so one BLAS thread (see the module docstring)
        one_core = {min(os.sched_getaffinity(0))}
        pin = lambda: os.sched_setaffinity(0, one_core)  # noqa: E731
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "chainrule", "sweep", *FIXED, *args, "--out", str(folder)],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
        preexec_fn=pin,
    )
    wall = time.perf_counter() - start
    storage = sweep_storage.open_storage(None, folder)
    study = optuna.load_study(study_name="digits-two-layer", storage=storage)
    trials_done = [t for t in study.get_trials() if t.state.name == "COMPLETE"]
    first = min(t.datetime_start for t in trials_done)
    last = max(t.datetime_complete for t in trials_done)
    return (last - first).total_seconds(), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=16, help="N: one worker's trials")
    parser.add_argument("--rounds", type=int, default=3)
    # About a second a trial: with much shorter ones the study's own bookkeeping and the workers'
    # start-up are what is timed, not the trials.
    parser.add_argument("--epochs", type=int, default=50, help="epochs per trial")
    args = parser.parse_args()
    span_ratios, wall_ratios, rows = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = [(1, args.trials), (2, 2 * args.trials)]
            times = {}
            for jobs, trials in order if r % 2 == 0 else order[::-1]:
                folder = Path(tmp) / f"r{r}-jobs{jobs}"
                times[jobs] = run_sweep(folder, trials, jobs, args.epochs)
                print(f"round {r + 1}: --jobs {jobs}, {trials} trials: span {times[jobs][0]:.1f} s,"
                      f" command {times[jobs][1]:.1f} s", file=sys.stderr)  # fmt: skip
            span_ratios.append(times[2][0] / times[1][0])
            wall_ratios.append(times[2][1] / times[1][1])
            rows.append(times)
    n = args.trials
    print(f"| sweep (digits, {args.epochs} epochs a trial) | trials' span (median) | command |")
    print("| --- | --- | --- |")
    for jobs, trials in ((1, n), (2, 2 * n)):
        span = statistics.median(t[jobs][0] for t in rows)
        wall = statistics.median(t[jobs][1] for t in rows)
        print(f"| --jobs {jobs}, {trials} trials | {span:.1f} s | {wall:.1f} s |")
    print(
        f"| ratio (2 workers, 2N / 1 worker, N; median of {args.rounds} rounds) | "
        f"{statistics.median(span_ratios):.2f} | {statistics.median(wall_ratios):.2f} |"
    )


if __name__ == "__main__":
    main()
