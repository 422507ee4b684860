"""A training run from settings to a folder on disk, and reading that folder back.

``TrainConfig`` (``training.config``) holds every setting of a run as plain values (what
``config.json`` stores), each checked against one table, ``SETTINGS``; ``train_run`` turns it into
objects, trains, and writes the run folder:

    config.json        the settings, marked as a chainrule run
    metrics.csv        one row per epoch
    checkpoint.safetensors   the full training state after the last epoch (for --resume)
    model.safetensors  the best-validation weights so far (rewritten when validation improves),
                       preprocessing and config in its metadata
    curves.png, diagnostics.png, weights.png, confusion.png
    summary.json       test accuracy, timings, warnings

Everything that can be checked is checked before the folder is made: the settings, the data, the
sizes of the splits, whether the model fits in memory. A run that fails before its first epoch
has finished removes what it wrote (and the folder, if it made it).

In pieces: ``app.prepare`` (settings to data, model and optimizer, checked), ``app.training_run``
(``fit`` with the run folder's hooks, then the model, figures and summary), ``app.evaluation``
(a saved run scored again); their public names are importable from here too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from chainrule.app import runfolders
from chainrule.app.evaluation import evaluate_run
from chainrule.app.prepare import (
    Prepared,
    available_memory,
    check_memory,
    check_splits,
    load_data,
    make_augment,
    prepare,
    read_config,
    smallest_pool,
)
from chainrule.app.runfolders import CONFIG_FILE, METRICS_FILE, SUMMARY_FILE
from chainrule.app.training_run import save_figures, save_model, train_into
from chainrule.data import files
from chainrule.engine.errors import ConfigError, DataNotFoundError
from chainrule.nn import optim
from chainrule.training import checkpoints
from chainrule.training.config import SETTINGS, TrainConfig
from chainrule.training.history import History
from chainrule.training.hooks import TrainingInterrupted
from chainrule.training.state import checkpoint_history

__all__ = [
    "Prepared",
    "TrainingInterrupted",
    "available_memory",
    "check_memory",
    "check_splits",
    "default_run_dir",
    "evaluate_run",
    "load_data",
    "make_augment",
    "prepare",
    "read_config",
    "resume_run",
    "save_figures",
    "save_model",
    "smallest_pool",
    "train_run",
]


# --- a run: new, or resumed ------------------------------------------------------------------

Log = Callable[[str], None]


def default_run_dir(config: TrainConfig) -> Path:
    """runs/DATASET-MODEL-YYYYMMDD-HHMMSS (not made; see ``runfolders.create_unique_folder``)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return runfolders.DEFAULT_RUNS_DIR / f"{config.dataset}-{config.model}-{stamp}"


def train_run(
    config: TrainConfig,
    out: str | Path | None = None,
    *,
    force: bool = False,
    progress: bool = True,
    log: Log | None = None,
) -> dict[str, Any]:
    """Train as ``config`` says into a new run folder; returns the summary (also saved).

    out: the run folder: new, empty, or a run that never finished an epoch; its parent must exist
    (chainrule's own ``runs/`` is made when needed). None: ``runs/DATASET-MODEL-TIME``, with a
    suffix when that name is taken. force: also replace a finished run's files, or write beside
    other files whose names the run does not use (none is ever overwritten or deleted).
    log: a callable taking one line of text (warnings, notes); default: nothing.
    Raises ConfigError (a setting, the folder), DataError/DataNotFoundError (the data),
    OutOfMemoryError, DivergenceError, TrainingInterrupted (with ``run_dir`` set).
    """
    log = log or (lambda line: None)
    if out is not None:
        out = _output_folder(out)
        runfolders.check_new_run_folder(out, force)
    prepared = prepare(config, log, progress)
    if out is None:
        runfolders.DEFAULT_RUNS_DIR.mkdir(exist_ok=True)
        run_dir, made = runfolders.create_unique_folder(default_run_dir(config)), True
    else:
        out.parent.mkdir(exist_ok=True)  # only chainrule's own runs/ can be missing here
        run_dir, made = out, not out.exists()
        run_dir.mkdir(exist_ok=True)
    ours = [run_dir / runfolders.LOCK_FILE] if not (run_dir / runfolders.LOCK_FILE).exists() else []
    with runfolders.run_lock(run_dir):
        try:
            # again under the lock: another process may have put something there meanwhile
            runfolders.check_new_run_folder(run_dir, force)
        except ConfigError:
            _remove_failed_start(run_dir, made, ours)
            raise
        if force:
            runfolders.clear_run_files(run_dir)
        ours += [run_dir / CONFIG_FILE, run_dir / METRICS_FILE]
        try:
            files.atomic_write_text(run_dir / CONFIG_FILE, json.dumps(config.to_json(), indent=2))
            return train_into(run_dir, config, prepared, False, progress, log)
        except BaseException:
            if not (run_dir / checkpoints.CHECKPOINT_FILE).exists():
                _remove_failed_start(run_dir, made, ours)
            raise


def _output_folder(out: str | Path) -> Path:
    """--out checked: its parent must exist, unless it is chainrule's own runs/ (made later)."""
    out = Path(out).expanduser()
    if out.parent == runfolders.DEFAULT_RUNS_DIR and not out.parent.exists():
        return out
    return runfolders.check_output_parent(out)


def _remove_failed_start(run_dir: Path, made: bool, written: list[Path]) -> None:
    """Undo a start that failed before its first epoch finished: the files it wrote, and the
    folder if this run made it and nothing else is in it."""
    for path in written:
        path.unlink(missing_ok=True)
    if made:
        with contextlib.suppress(OSError):  # not empty: something else was put there
            run_dir.rmdir()


def resume_run(
    run_dir: str | Path,
    *,
    epochs: int | None = None,
    patience: int | None = None,
    progress: bool = True,
    log: Log | None = None,
) -> dict[str, Any]:
    """Continue the run in ``run_dir`` from its checkpoint; returns the summary (also saved).

    Unchanged, a resumed run ends bit for bit as if it had never stopped. epochs: train to this
    many epochs in all (more than it has done; a cosine schedule is stretched to the new length
    from here on). patience: a new early-stopping patience. A run that has finished (and has its
    summary) trains nothing: ``log`` says so and its summary is returned.
    Raises DataNotFoundError (not a run, no checkpoint), DataError (a damaged config.json),
    ConfigError (fewer epochs than done), and what ``train_run`` raises.
    """
    log = log or (lambda line: None)
    run_dir = Path(run_dir)
    if not runfolders.is_run_folder(run_dir):
        # a run starting right now: the lock says whose
        if (run_dir / runfolders.LOCK_FILE).exists():
            with runfolders.run_lock(run_dir):
                pass
        raise DataNotFoundError(f"cannot resume: {run_dir} is not a run folder")
    # Lock first, then look: two processes resuming one folder cannot both pass the checks.
    with runfolders.run_lock(run_dir):
        config = read_config(run_dir)
        checkpoint = run_dir / checkpoints.CHECKPOINT_FILE
        if not checkpoint.exists():
            raise DataNotFoundError(
                f"nothing to resume: no epoch of {run_dir} finished, so it has no checkpoint; "
                f"start it again with chainrule train --out {run_dir} and its settings"
            )
        done = checkpoint_history(checkpoint)
        new = _extended(config, done, epochs, patience, log, run_dir)
        summary = _read_summary(run_dir)
        if _finished(new, done) and summary is not None:
            log(_finished_line(run_dir, new, done))
            return summary
        prepared = prepare(new, log, progress)
        if new != config:
            files.atomic_write_text(run_dir / CONFIG_FILE, json.dumps(new.to_json(), indent=2))
        return train_into(run_dir, new, prepared, True, progress, log)


def _extended(
    config: TrainConfig,
    done: History,
    epochs: int | None,
    patience: int | None,
    log: Log,
    run_dir: Path,
) -> TrainConfig:
    """The config with a new epoch count and patience, checked against what was done."""
    changes: dict[str, Any] = {}
    if patience is not None:
        changes["patience"] = patience
    if epochs is not None:
        if SETTINGS["epochs"].accepts(epochs) and epochs < len(done):
            raise ConfigError(
                f"{run_dir} has already trained {len(done)} epochs; --epochs {epochs} cannot "
                f"take them back (give more than {len(done)} to extend it)"
            )
        changes["epochs"] = epochs
    new = dataclasses.replace(config, **changes)
    if new.lr_decay == "cosine" and new.epochs != config.epochs and len(done) < new.epochs:
        factor = optim.CosineDecay(new.epochs).factor(len(done))
        log(
            f"note: cosine decay now spans {new.epochs} epochs, not {config.epochs}: epoch "
            f"{len(done) + 1} trains at {factor:.3g} x the base learning rate (epochs 1-"
            f"{len(done)} followed the {config.epochs}-epoch curve)"
        )
    return new


def _finished(config: TrainConfig, done: History) -> bool:
    return len(done) >= config.epochs or _stalled(config, done)


def _stalled(config: TrainConfig, done: History) -> bool:
    return config.patience is not None and len(done) - done.best_epoch >= config.patience


def _finished_line(run_dir: Path, config: TrainConfig, done: History) -> str:
    if _stalled(config, done) and len(done) < config.epochs:
        return (
            f"{run_dir} stopped early after epoch {len(done)} ({config.patience} epochs without "
            "a better validation accuracy); nothing to resume (a larger --patience continues it)"
        )
    return (
        f"{run_dir} has finished its {len(done)} epochs; nothing to resume (--epochs N, more "
        f"than {len(done)}, trains it further)"
    )


def _read_summary(run_dir: Path) -> dict[str, Any] | None:
    try:
        summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None
