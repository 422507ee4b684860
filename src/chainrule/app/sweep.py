"""``sweep``: a hyperparameter search on Optuna, from one process to many machines.

A sweep is an Optuna study that maximizes validation accuracy. Its trials train the model the
sweep names with settings drawn from the search space (``sweep_space``); workers take trials
until the study holds the number asked for (``sweep_worker``); the study lives in a journal file
in the sweep folder or in PostgreSQL (``sweep_storage``). At the end the best trial is trained
again as an ordinary run folder (the only time the test split is read) and the table, figures and
summary are written (``sweep_results``). The same command, started again, continues the study.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chainrule.app import sweep_storage
from chainrule.app.sweep_space import SEARCHED, search_space
from chainrule.app.sweep_worker import SweepPlan, WorkerResult, open_study, run_worker
from chainrule.engine.errors import ConfigError
from chainrule.training.config import TrainConfig

DEFAULT_SWEEPS_DIR = Path("sweeps")
# The settings a study records and refuses to mix: another value makes trials incomparable.
# (Folders are left out: the same data may sit elsewhere on each machine.)
RECORDED = (
    "dataset",
    "model",
    "activation",
    "loss",
    "epochs",
    "seed",
    "val_size",
    "standardize",
    "max_train",
    "max_test",
    "augment",
    "patience",
    "lr_decay",
)

Log = Callable[[str], None]


class SweepInterrupted(KeyboardInterrupt):
    """A sweep stopped by SIGINT or SIGTERM: its workers stopped, the trials they were running
    marked failed (they run again when the sweep is started again). signum: the signal;
    done: COMPLETE or PRUNED trials in the study now; wanted: the trials asked for."""

    def __init__(self, signum: int, done: int, wanted: int) -> None:
        name = signal.Signals(signum).name
        super().__init__(
            f"interrupted by {name}: {done} of {wanted} trials done, none lost (the same "
            "command continues the sweep)"
        )
        self.signum, self.done, self.wanted = signum, done, wanted


def cores() -> int:
    """The CPU cores this process may run on (its affinity, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _checked(
    dataset: str, model: str, numbers: dict[str, Any], final: dict[str, Any], settings: Any
) -> TrainConfig:
    """The fixed settings of every trial, after checking the sweep's own numbers (--trials,
    --jobs, --depth: positive integers) and the best run's changes. Raises ConfigError."""
    for name, value in numbers.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"--{name} must be a positive integer, got {value!r}")
    searched = sorted(set(settings) & set(SEARCHED))
    if searched:
        raise ConfigError(f"{searched[0]} is searched: give its range, not a fixed setting")
    base = TrainConfig(dataset=dataset, model=model, **settings)
    try:  # in the command line's words
        dataclasses.replace(base, **final)
    except ConfigError as e:
        raise ConfigError(str(e).replace("--", "--final-", 1)) from None
    return base


def recorded_settings(plan: SweepPlan) -> dict[str, Any]:
    """What the study records of a sweep's fixed settings (``RECORDED``, and the depth of an
    mlp)."""
    settings = {name: getattr(plan.base, name) for name in RECORDED}
    if plan.base.model == "mlp":
        settings["depth"] = plan.depth
    return settings


def sweep(
    dataset: str = "digits",
    model: str = "two-layer",
    trials: int = 20,
    *,
    jobs: int = 1,
    storage: str | None = None,
    study: str | None = None,
    out: str | Path | None = None,
    ranges: dict[str, Any] | None = None,
    space: str | Path | None = None,
    depth: int = 2,
    final: dict[str, Any] | None = None,
    progress: bool = True,
    log: Log | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Search learning rate, regularization, hidden size, optimizer and batch size; returns the
    summary (also in OUT/summary.json; see ``sweep_results.summarize``).

    trials: COMPLETE or PRUNED trials the study should hold (those already in it count).
    jobs: worker processes on this machine, the cores split between them. storage: a database
    URL (postgresql://USER@HOST/DB) that workers anywhere may share; None: a journal
    file in the sweep folder. study: the study's name (default DATASET-MODEL). out: the sweep
    folder (default sweeps/STUDY): the journal, trials.csv, the figures, summary.json and the
    best trial's run folder. ranges: {name: "LOW:HIGH" | "a,b,c" | list} for lr, reg, hidden,
    optimizer, batch_size (see ``sweep_space``); space: a TOML or JSON file of them. depth:
    hidden layers of an mlp. final: settings that the best trial's run folder changes, e.g.
    {"epochs": 30, "max_train": None} (trials cut short to fit a machine, the best trained in
    full). settings: the fixed settings of every trial (``TrainConfig``'s:
    epochs, seed, max_train...). progress: a bar over trials on a terminal, a line per trial
    elsewhere. log: a callable taking one line (how the cores were split, notes).
    Raises ConfigError (a setting, a range, another sweep's study, a refused login),
    StorageError (a database that cannot be reached), DataError/DataNotFoundError (the data),
    SweepInterrupted (SIGINT/SIGTERM: the workers stopped, their trials marked failed).
    """
    # Over 60 lines by its signature and docstring alone (the public entry, every argument
    # said); the body is the steps, each a function of its own.
    from chainrule.app import sweep_results

    log = log or (lambda line: None)
    tty = progress and sys.stderr.isatty()
    final = final or {}
    base = _checked(
        dataset, model, {"trials": trials, "jobs": jobs, "depth": depth}, final, settings
    )
    if storage is not None:
        sweep_storage.database_url(storage)  # refuses what is not a URL, before any work
    name = study or f"{dataset}-{model}"
    folder = Path(out) if out is not None else DEFAULT_SWEEPS_DIR / name
    space_ = search_space(ranges or {}, space)
    plan = SweepPlan(name, str(folder), storage, base, space_, trials, depth,
                     threads=max(1, cores() // jobs), lines=progress and not tty)  # fmt: skip
    where, handle, done = _open(plan, jobs, out is None, log)
    start = time.perf_counter()
    bar = _bar(tty, trials, done)
    try:
        results = _run(plan, jobs, handle, bar)
    finally:
        bar.close()
    signum = next((r.signum for r in results if r.signum is not None), None)
    if signum is not None:
        counts = sweep_storage.count_trials(handle.get_trials(deepcopy=False))
        raise SweepInterrupted(signum, counts.done, trials)
    return sweep_results.summarize(
        handle, plan, where, time.perf_counter() - start, jobs, final, progress, log
    )


def _open(plan: SweepPlan, jobs: int, default_folder: bool, log: Log) -> tuple[str, Any, int]:
    """The sweep folder made, the study opened (made if new) and checked against the plan, its
    dead trials failed, and a line saying where it is and how the cores are split. Returns
    where the study is (for messages), the study, and its trials done so far."""
    Path(plan.folder).mkdir(parents=default_folder, exist_ok=True)
    where = sweep_storage.shown_url(plan.storage) if plan.storage else plan.folder
    handle = open_study(plan, create=True)
    sweep_storage.check_study(handle, recorded_settings(plan), plan.study, where)
    sweep_storage.fail_dead_trials(handle)
    done = sweep_storage.count_trials(handle.get_trials(deepcopy=False)).done
    threads = plan.threads
    log(
        f"study {plan.study!r} in {where}: {done} of {plan.trials} trials done; {cores()} "
        f"cores: {jobs} worker{'s' * (jobs > 1)} x {threads} BLAS thread{'s' * (threads > 1)}"
    )
    return where, handle, done


def _run(plan: SweepPlan, jobs: int, study: Any, bar: Any) -> list[WorkerResult]:
    """The workers: this process alone for one job, else ``jobs`` spawned processes."""
    from threadpoolctl import threadpool_limits

    def seen(trial: Any) -> None:
        bar.n = sweep_storage.count_trials(study.get_trials(deepcopy=False)).done
        bar.refresh()

    if jobs == 1:
        with threadpool_limits(plan.threads):
            return [run_worker(plan, seen)]
    return _run_pool(plan, jobs, seen)


def _run_pool(plan: SweepPlan, jobs: int, seen: Callable[[Any], None]) -> list[WorkerResult]:
    """``jobs`` worker processes (spawn: no threads or connections copied by a fork); the bar
    follows the study meanwhile. A signal here is passed on to the workers as SIGTERM (Ctrl-C
    reaches them directly too); an error in one stops the others and is raised here."""
    import multiprocessing
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

    from chainrule.app.sweep_worker import _stop_flag

    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(jobs, mp_context=context)
    with _stop_flag() as noted:
        futures = [pool.submit(_pool_worker, plan) for _ in range(jobs)]
        try:
            while True:
                finished, pending = wait(futures, timeout=POLL, return_when=FIRST_EXCEPTION)
                if noted:
                    break
                seen(None)
                if not pending or any(f.exception() for f in finished):
                    break
        finally:
            if noted or any(f.done() and f.exception() for f in futures):
                for child in multiprocessing.active_children():
                    child.terminate()  # SIGTERM: the worker marks its trial failed and ends
            pool.shutdown(wait=True)
    results = [f.result() for f in futures]  # raises a worker's error, as one line
    if noted:  # first: the signal the sweep got, not the SIGTERM it passed on
        results.insert(0, WorkerResult(signum=noted[0]))
    return results


POLL = 0.5  # seconds between looks at the study while workers run


def _pool_worker(plan: SweepPlan) -> WorkerResult:
    """A spawned worker: dies with its parent (SIGTERM from the kernel, Linux), its BLAS
    threads limited to ``plan.threads``."""
    from threadpoolctl import threadpool_limits

    _die_with_parent()
    with threadpool_limits(plan.threads):
        return run_worker(plan, spawned=True)


def _die_with_parent() -> None:
    """Stop this worker when its parent sweep dies (killed with SIGKILL, say) instead of
    training on as an orphan: a daemon thread watches the parent's pid and, once the worker has
    been handed to another parent, sends this process SIGTERM, which ends the trial as failed."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class _NoBar:
    n = 0

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(enabled: bool, total: int, initial: int) -> Any:
    """A tqdm bar over trials on stderr (a terminal), else a stand-in."""
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc="trials", unit="trial", file=sys.stderr)
