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
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import data as datasets
from chainrule import nn
from chainrule.app import runfolders
from chainrule.app.runfolders import CONFIG_FILE, METRICS_FILE, SUMMARY_FILE
from chainrule.data import files
from chainrule.engine.errors import ConfigError, DataError, DataNotFoundError, OutOfMemoryError
from chainrule.nn import optim
from chainrule.nn.losses import LOSSES
from chainrule.training import checkpoints
from chainrule.training import diagnostics as diag
from chainrule.training.augment import HorizontalFlip
from chainrule.training.config import LINEAR_MODELS, SETTINGS, TrainConfig
from chainrule.training.loop import (
    EpochRecord,
    History,
    TrainingInterrupted,
    checkpoint_history,
    fit,
    write_metrics_row,
)


def read_config(run_dir: str | Path) -> TrainConfig:
    """The TrainConfig saved in a run folder. Raises DataNotFoundError when there is none and
    DataError when config.json is not valid JSON or not a valid config."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise DataNotFoundError(f"{run_dir} is not a run folder (no {CONFIG_FILE})")
    try:
        obj = json.loads(path.read_bytes())
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        raise DataError(f"{path} is not valid JSON ({e})") from None
    return TrainConfig.from_json(obj, str(path))


# --- from a config to the objects that train ------------------------------------------------


def load_data(config: TrainConfig, log: Any = None, progress: bool = False) -> datasets.Dataset:
    """The dataset a config names, split and preprocessed as it says.

    log, progress: as ``data.load`` takes them (lines and a bar for a long first decoding).
    """
    return datasets.load(
        config.dataset,
        config.data_dir,
        root=config.root,
        val_size=config.val_size,
        seed=config.seed,
        standardize=config.standardize,
        max_train=config.max_train,
        max_test=config.max_test,
        log=log,
        progress=progress,
    )


def make_augment(config: TrainConfig, data: datasets.Dataset) -> HorizontalFlip | None:
    """The batch augmentation a config names (None for "none")."""
    if config.augment == "flip":
        p = data.preprocessing
        return HorizontalFlip(data.image_shape, p.mean, p.std)
    return None


def check_splits(config: TrainConfig, data: datasets.Dataset) -> None:
    """Refuse splits training cannot use, saying why and what would work (ConfigError): it needs
    one validation image or more (it keeps the best validation epoch's weights) and a batch."""
    n_val, n_train = len(data.y_val), len(data.y_train)
    if n_val and config.batch_size <= n_train:
        return
    if n_val == 0:
        why = (
            "leaves no validation image, and training keeps the weights of the best "
            "validation epoch"
        )
    else:
        why = f"leaves {n_train} training images, fewer than --batch-size {config.batch_size}"
    if config.max_train is not None:
        need = smallest_pool(config.val_size, config.batch_size)
        raise ConfigError(
            f"--max-train {config.max_train} with --val-size {config.val_size} {why}: use "
            f"--max-train {need} or more"
            + (f", or --batch-size {n_train} or less" if n_val and n_train else "")
        )
    if n_val == 0:
        raise ConfigError(
            f"--val-size {config.val_size} of {n_train} images {why}: use --val-size 1 or more"
        )
    raise ConfigError(
        f"batch size {config.batch_size} is larger than the {n_train} training examples "
        f"({n_val} more are held out for validation): use --batch-size {n_train} or less"
    )


def smallest_pool(val_size: float | int, batch_size: int) -> int:
    """The fewest images (train + validation) that give one validation image or more and a full
    training batch, for a validation fraction or count as ``datasets.split_indices`` takes it."""
    if isinstance(val_size, int):
        return batch_size + max(val_size, 1)
    n = max(2, int(batch_size / (1 - val_size)) - 2)
    while round(val_size * n) < 1 or n - round(val_size * n) < batch_size:
        n += 1
    return n


def check_memory(config: TrainConfig, input_size: int, num_classes: int) -> None:
    """Refuse a model whose training would not fit in the memory available now.

    Counts float32 parameters times the copies training keeps: the weights, the optimizer's
    scratch, the best-validation copy, the checkpoint being written, and the optimizer's own state
    (velocity; Adam's two moments). A lower bound: activations and the data come on top.
    Raises OutOfMemoryError (exit status 1 on the command line).
    """
    hidden = [] if config.model in LINEAR_MODELS else config.hidden
    sizes = [input_size, *hidden, num_classes]
    params = sum((a + 1) * b for a, b in itertools.pairwise(sizes))
    need = params * 4 * (4 + optim.OPTIMIZER_STATE[config.optimizer])
    available = available_memory()
    if available is not None and need > available:
        raise OutOfMemoryError(
            f"the model is too large for this machine: {params:,} parameters "
            f"({' x '.join(map(str, sizes))}) need at least {need / 2**30:,.1f} GiB to train "
            f"with {config.optimizer}, and {available / 2**30:,.1f} GiB is available; "
            "use a smaller --hidden"
        )


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now (Linux's MemAvailable), or None."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None


@dataclass
class _Prepared:
    """What a run trains with, all made before its folder is."""

    data: datasets.Dataset
    model: nn.Module
    optimizer: optim.Optimizer
    load_seconds: float


def _prepare(config: TrainConfig, log: Log | None = None, progress: bool = False) -> _Prepared:
    start = time.perf_counter()
    data = load_data(config, log, progress)
    load_seconds = time.perf_counter() - start
    check_splits(config, data)
    check_memory(config, data.num_features, data.num_classes)
    try:
        model = nn.build_model(
            config.model_config(data.num_features, data.num_classes), config.weights_rng()
        )
        optimizer = optim.optimizer_from_name(config.optimizer, model.parameters(), config.lr)
    except MemoryError:
        raise OutOfMemoryError(
            f"out of memory building the {config.model} model; use a smaller --hidden"
        ) from None
    return _Prepared(data, model, optimizer, load_seconds)


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
    prepared = _prepare(config, log, progress)
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
            return _train(run_dir, config, prepared, None, progress, log)
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
        prepared = _prepare(new, log, progress)
        if new != config:
            files.atomic_write_text(run_dir / CONFIG_FILE, json.dumps(new.to_json(), indent=2))
        return _train(run_dir, new, prepared, done, progress, log)


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


def _train(
    run_dir: Path,
    config: TrainConfig,
    prepared: _Prepared,
    done: History | None,
    progress: bool,
    log: Log,
) -> dict[str, Any]:
    """Train (from the checkpoint when ``done`` is its history), then write the model, figures
    and summary."""
    data, model = prepared.data, prepared.model
    metrics = run_dir / METRICS_FILE
    checkpoint = run_dir / checkpoints.CHECKPOINT_FILE
    # The metrics file restarts from what the checkpoint knows: a process killed between
    # saving a checkpoint and appending its row must neither lose nor repeat an epoch.
    metrics.unlink(missing_ok=True)
    for record in done.epochs if done else []:
        write_metrics_row(metrics, record)
    best = {"val": done.best_val_accuracy if done else -1.0}

    def on_epoch(record: EpochRecord) -> None:
        write_metrics_row(metrics, record)
        if record.val_accuracy > best["val"]:  # fit's rule: the model now holds the new best
            best["val"] = record.val_accuracy
            save_model(run_dir, model, data, record.epoch)

    started = datetime.now().isoformat(timespec="seconds")
    start = time.perf_counter()
    try:
        history = fit(
            model,
            data,
            loss=LOSSES[config.loss_name],
            optimizer=prepared.optimizer,
            epochs=config.epochs,
            batch_size=config.batch_size,
            reg=config.reg,
            rng=np.random.default_rng([config.seed, 2]),
            schedule=config.schedule(),
            checkpoint=checkpoint,
            resume=done is not None,
            progress=progress,
            on_epoch=on_epoch,
            log=log,
            augment=make_augment(config, data),
            patience=config.patience,
            device=config.device,
        )
    except TrainingInterrupted as e:
        e.run_dir = run_dir
        raise
    train_seconds = time.perf_counter() - start
    model.to("cpu")  # issue 24: the figures and predictions read NumPy weights
    save_model(run_dir, model, data, history.best_epoch)
    with np.errstate(all="ignore"):
        test_pred = model.predict(data.X_test)
    test_accuracy = float(np.mean(test_pred == data.y_test))
    figures = save_figures(run_dir, model, data, history, test_pred, config)
    warnings = diag.summarize_warnings(history, config.lr)
    warnings += diag.final_warnings(model, data.X_val[:1000])
    summary = {
        "run_dir": str(run_dir),
        "dataset": data.name,
        "model": config.model,
        "loss": config.loss_name,
        "test_accuracy": test_accuracy,
        "val_accuracy": history.best_val_accuracy,
        "train_accuracy": history.epochs[history.best_epoch - 1].train_accuracy,
        "best_epoch": history.best_epoch,
        "epochs": len(history),
        "planned_epochs": config.epochs,
        "patience": config.patience,
        "stopped_early": history.stopped_early,
        "seconds": sum(r.seconds for r in history.epochs),
        "wall_seconds": train_seconds,
        "load_seconds": prepared.load_seconds,
        "n_train": len(data.X_train),
        "n_val": len(data.X_val),
        "n_test": len(data.X_test),
        "figures": [str(p) for p in figures],
        "warnings": warnings,
        "started": started,
        "finished": datetime.now().isoformat(timespec="seconds"),
    }
    files.atomic_write_text(run_dir / SUMMARY_FILE, json.dumps(summary, indent=2))
    return summary


def save_model(run_dir: Path, model: nn.Module, data: datasets.Dataset, best_epoch: int) -> None:
    """Write the model as it is now to ``run_dir/model.safetensors`` (atomically)."""
    checkpoints.save_model(
        run_dir / checkpoints.MODEL_FILE,
        model,
        data.preprocessing,
        data.classes,
        data.image_shape,
        {"dataset": data.name, "best_epoch": best_epoch},
    )


def save_figures(
    out: Path,
    model: nn.Module,
    data: datasets.Dataset,
    history: Any,
    test_pred: np.ndarray,
    config: TrainConfig,
) -> list[Path]:
    """The run's PNGs: curves, learned weights as images, the test confusion matrix."""
    from chainrule.lessons import plots  # matplotlib imports slowly: only where a figure is drawn

    title = f"{config.model} on {data.name}"
    paths = [
        plots.plot_curves(history, out / "curves.png", title),
        plots.plot_diagnostics(history, out / "diagnostics.png", f"{title}: training health"),
    ]
    if isinstance(model, nn.LinearClassifier):
        paths.append(
            plots.plot_templates(
                model.W.data,
                data.image_shape,
                data.classes,
                out / "weights.png",
                f"{title}: one template per class (rows of W)",
            )
        )
    elif isinstance(model, nn.MLP):
        paths.append(
            plots.plot_features(
                model.W1.data,
                data.image_shape,
                out / "weights.png",
                title=f"{title}: first-layer features (rows of W1)",
            )
        )
    paths.append(
        plots.plot_confusion(
            data.y_test, test_pred, data.classes, out / "confusion.png", f"{title}: test confusion"
        )
    )
    return paths


# --- reading a run back ----------------------------------------------------------------------


def evaluate_run(run_dir: str | Path, data_dir: str | None = None) -> dict[str, Any]:
    """Score a saved run's model again on its dataset's validation and test splits.

    Returns run_dir, dataset, val_accuracy, test_accuracy, n_test and per_class: for each class
    (in order) its precision, recall, F1 and support on the test split (scikit-learn's
    ``precision_recall_fscore_support``; 0 where a class is never predicted).
    """
    from sklearn.metrics import precision_recall_fscore_support

    run_dir = Path(run_dir)
    config = read_config(run_dir)
    if data_dir is not None:
        config.data_dir = data_dir
    if not (run_dir / checkpoints.MODEL_FILE).exists():
        then = (
            f"chainrule train --resume {run_dir} continues it"
            if (run_dir / checkpoints.CHECKPOINT_FILE).exists()
            else f"start it again with chainrule train --out {run_dir}"
        )
        raise DataNotFoundError(f"{run_dir} has no model yet: no epoch has finished ({then})")
    saved = checkpoints.load_model(run_dir / checkpoints.MODEL_FILE)
    data = load_data(config)
    saved_mean = saved.preprocessing.mean
    if saved_mean.shape != data.preprocessing.mean.shape or not np.array_equal(
        saved_mean, data.preprocessing.mean
    ):
        raise DataError(
            f"the {config.dataset} data differ from the data {run_dir} was trained on "
            "(their training means disagree)"
        )
    with np.errstate(all="ignore"):
        val_pred = saved.model.predict(data.X_val)
        test_pred = saved.model.predict(data.X_test)
    labels = list(range(len(saved.classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        data.y_test, test_pred, labels=labels, zero_division=0
    )
    per_class = [
        {
            "class": name,
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(saved.classes)
    ]
    return {
        "run_dir": str(run_dir),
        "dataset": data.name,
        "val_accuracy": float(np.mean(val_pred == data.y_val)),
        "test_accuracy": float(np.mean(test_pred == data.y_test)),
        "n_test": len(data.y_test),
        "per_class": per_class,
    }


__all__ = [
    "TrainingInterrupted",
    "evaluate_run",
    "load_data",
    "read_config",
    "resume_run",
    "train_run",
]
