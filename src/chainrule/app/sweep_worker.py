"""A sweep worker: it takes trials from the study until the count is reached, training each with
``training.fit`` and feeding each epoch's validation accuracy to Optuna's pruner.

One worker is one process: ``run_worker`` in the command's own process (``--jobs 1``), or in
each of J processes started with spawn (``run_workers``), whose BLAS threads are limited
(threadpoolctl) so that the J of them share the cores instead of fighting over them.

Signals: SIGINT (Ctrl-C reaches every process of the terminal's group) and SIGTERM stop a worker
at the next training step; its trial is marked FAIL (and runs again from the start when the
sweep is started again), and the worker ends without a traceback. A worker whose parent dies
gets SIGTERM from the kernel (Linux), so no orphan trains on.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.app import experiment, sweep_storage
from chainrule.app.sweep_space import SearchSpace, trial_config
from chainrule.engine.errors import DivergenceError
from chainrule.nn import build_model, optim
from chainrule.nn.losses import LOSSES
from chainrule.training.config import TrainConfig
from chainrule.training.loop import EpochRecord, fit

POLL_SECONDS = 1.0  # how often a worker waiting on others' trials looks at the study again


@dataclass(frozen=True)
class SweepPlan:
    """Everything a worker needs, picklable (it is sent to spawned processes).

    base: the fixed settings of every trial; space: the searched ones; trials: how many COMPLETE
    or PRUNED trials the study should end with; storage: a database URL, or None for the journal
    file in ``folder``; threads: BLAS threads per worker; lines: print a line per trial."""

    study: str
    folder: str
    storage: str | None
    base: TrainConfig
    space: SearchSpace
    trials: int
    depth: int = 2
    threads: int = 1
    lines: bool = False


@dataclass
class WorkerResult:
    """What one worker did: trials it finished, and the signal that stopped it, if one did."""

    finished: int = 0
    signum: int | None = None
    numbers: list[int] = field(default_factory=list)


class _Surplus(Exception):
    """A trial that started after the count was reached elsewhere (failed on purpose)."""


class _TrialSeeded:
    """Optuna's default sampler (TPE), seeded anew for each trial from (seed, trial number).

    One seeded TPESampler shared by many workers would make each of them draw the same first
    points; seeding by trial number keeps a sweep repeatable whichever worker runs a trial.
    """

    def __new__(cls, seed: int) -> Any:
        import optuna

        class Sampler(optuna.samplers.BaseSampler):
            def __init__(self) -> None:
                self.inner = optuna.samplers.TPESampler(seed=seed)

            def before_trial(self, study: Any, trial: Any) -> None:
                entropy = np.random.SeedSequence([seed, trial.number]).generate_state(1)[0]
                self.inner = optuna.samplers.TPESampler(seed=int(entropy))
                self.inner.before_trial(study, trial)

            def infer_relative_search_space(self, study: Any, trial: Any) -> Any:
                return self.inner.infer_relative_search_space(study, trial)

            def sample_relative(self, study: Any, trial: Any, space: Any) -> Any:
                return self.inner.sample_relative(study, trial, space)

            def sample_independent(self, study: Any, trial: Any, name: str, dist: Any) -> Any:
                return self.inner.sample_independent(study, trial, name, dist)

            def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
                self.inner.after_trial(study, trial, state, values)

        return Sampler()


def open_study(plan: SweepPlan, create: bool = False) -> Any:
    """The plan's Optuna study (maximizing validation accuracy), made when ``create`` and it
    does not exist, with the per-trial seeded TPE sampler and a median pruner (from the sixth
    trial on, never on a trial's first epoch: a slow start is not a bad run). Raises what
    ``sweep_storage.open_storage`` raises, and KeyError for a missing study unless ``create``."""
    from pathlib import Path

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our lines say what happened
    storage = sweep_storage.open_storage(plan.storage, Path(plan.folder))
    sampler = _TrialSeeded(plan.base.seed)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    try:  # loaded first: creating writes to the storage even when the study exists
        return optuna.load_study(
            study_name=plan.study, storage=storage, sampler=sampler, pruner=pruner
        )
    except KeyError:
        if not create:
            raise
    return optuna.create_study(
        study_name=plan.study,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        direction="maximize",
        load_if_exists=True,  # another worker may make it first
    )


@contextlib.contextmanager
def _stop_flag() -> Iterator[list[int]]:
    """SIGINT and SIGTERM noted in the list the block gets (fit turns one into a
    TrainingInterrupted at its next step while it trains); the handlers from before, after."""
    noted: list[int] = []
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            previous[sig] = signal.signal(sig, lambda signum, frame: noted.append(signum))
    try:
        yield noted
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_worker(
    plan: SweepPlan, on_trial: Callable[[Any], None] | None = None, spawned: bool = False
) -> WorkerResult:
    """Run trials of the plan's study in this process until it has ``plan.trials`` COMPLETE or
    PRUNED trials (waiting for the RUNNING trials of other workers to end), or a signal stops it.

    on_trial: called with each FrozenTrial this worker finishes. spawned: a worker process of
    a sweep, which also stops when its parent is gone. Raises what loading the data
    or opening the study raises (ConfigError, DataError, StorageError), and ConfigError when
    the data cannot take the largest batch or hidden size of the search space."""
    from optuna.trial import TrialState

    from chainrule.training.loop import TrainingInterrupted

    result = WorkerResult()
    parent = os.getppid()
    with _stop_flag() as noted:
        study = open_study(plan)
        data = None  # loaded when a trial is to run: not at all when the study is complete
        while not noted and (not spawned or os.getppid() == parent):
            sweep_storage.fail_dead_trials(study)
            counts = sweep_storage.count_trials(study.get_trials(deepcopy=False))
            if counts.done >= plan.trials:
                break
            if counts.done + counts["running"] >= plan.trials:
                _sleep(POLL_SECONDS, noted)  # the last trials run elsewhere: one may still fail
                continue
            data = data if data is not None else _load_checked(plan)
            try:
                study.optimize(
                    functools.partial(_objective, plan=plan, data=data),
                    n_trials=1,
                    catch=(_Surplus,),
                    callbacks=[lambda s, t: _finished(t, plan, result, on_trial)],
                )
            except TrainingInterrupted as e:  # marked FAIL by Optuna already
                noted.append(e.signum)
            except KeyboardInterrupt:  # a second Ctrl-C, outside fit's steps
                noted.append(signal.SIGINT)
        result.signum = noted[0] if noted else None
    if result.signum is None:
        return result
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    mine = [t for t in running if t.user_attrs.get("worker") == sweep_storage.this_worker()]
    for t in mine:  # a signal between Optuna's ask and our training: the trial is ours to end
        study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
    return result


def _sleep(seconds: float, noted: list[int]) -> None:
    end = time.monotonic() + seconds
    while not noted and time.monotonic() < end:
        time.sleep(0.1)


def _load_checked(plan: SweepPlan) -> Any:
    """The data of the plan, checked against the largest batch and hidden size searched."""
    data = experiment.load_data(plan.base)
    largest = dict(plan.space.to_json())
    widest = trial_config(
        plan.base,
        {"batch_size": max(largest["batch_size"]), "hidden": max(largest["hidden"])},
        plan.depth,
    )
    experiment.check_splits(widest, data)
    experiment.check_memory(widest, data.num_features, data.num_classes)
    return data


def _objective(trial: Any, plan: SweepPlan, data: Any) -> float:
    """One trial: its settings drawn, a model trained; returns the best validation accuracy.
    Raises optuna.TrialPruned when the pruner stops it or training diverges (a diverging
    learning rate is an answer, not an error: Optuna learns from it as from a pruned trial)."""
    import optuna

    trial.set_user_attr("worker", sweep_storage.this_worker())
    trials = trial.study.get_trials(deepcopy=False)
    if sweep_storage.is_surplus(trials, trial.number, plan.trials):
        trial.set_user_attr("surplus", True)
        raise _Surplus(f"trial {trial.number} is beyond the {plan.trials} trials asked for")
    config = trial_config(plan.base, plan.space.suggest(trial, plan.base.model), plan.depth)
    model = build_model(
        config.model_config(data.num_features, data.num_classes), config.weights_rng()
    )
    start = time.perf_counter()

    def note(epochs: int) -> None:  # at the end only: each write is a round trip to a database
        trial.set_user_attr("epochs", epochs)
        trial.set_user_attr("seconds", time.perf_counter() - start)

    trained = [0]  # epochs finished, for a trial that diverges after some

    def on_epoch(record: EpochRecord) -> None:
        trained[0] = record.epoch
        trial.report(record.val_accuracy, record.epoch)
        if trial.should_prune():
            note(record.epoch)
            raise optuna.TrialPruned(f"pruned after epoch {record.epoch}")

    try:
        history = fit(
            model,
            data,
            loss=LOSSES[config.loss_name],
            optimizer=optim.optimizer_from_name(config.optimizer, model.parameters(), config.lr),
            epochs=config.epochs,
            batch_size=config.batch_size,
            reg=config.reg,
            rng=np.random.default_rng([config.seed, 2]),  # as train_run: a trial is a run
            schedule=config.schedule(),
            progress=False,
            on_epoch=on_epoch,
            augment=experiment.make_augment(config, data),
            patience=config.patience,
        )
    except DivergenceError as e:
        note(trained[0] + 1)  # the epoch that diverged counts: it was trained
        trial.set_user_attr("diverged", str(e))
        raise optuna.TrialPruned(f"diverged: {e}") from None
    note(len(history))
    return history.best_val_accuracy


def _finished(trial: Any, plan: SweepPlan, result: WorkerResult, on_trial: Any) -> None:
    if trial.user_attrs.get("surplus"):
        return
    if trial.state.name in sweep_storage.COUNTED:
        result.finished += 1
        result.numbers.append(trial.number)
    if plan.lines:
        print(trial_line(trial), file=sys.stderr, flush=True)
    if on_trial is not None:
        on_trial(trial)


def trial_line(trial: Any) -> str:
    """One line for a finished trial: number, state, validation accuracy, epochs, seconds and
    its settings."""
    value = f"val {trial.value:.4f}" if trial.value is not None else "no value"
    settings = " ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
    epochs, seconds = trial.user_attrs.get("epochs", 0), trial.user_attrs.get("seconds", 0.0)
    return (
        f"trial {trial.number}: {trial.state.name.lower()}, {value}, {epochs} epochs, "
        f"{seconds:.1f} s; {settings}"
    )


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
