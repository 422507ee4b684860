"""Training a prepared run into its folder: ``fit`` with the hooks a run folder needs, then the
model file, the figures and the summary.

The hooks, in order: stop on SIGINT/SIGTERM, progress, health warnings through ``log``, the
checkpoint, the metrics CSV, and the best model so far (``model.safetensors``, rewritten when
validation improves). The checkpoint comes before the files that follow it, so a process
killed between them resumes to the same files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import data as datasets
from chainrule import nn
from chainrule.app.prepare import Prepared, make_augment
from chainrule.app.runfolders import METRICS_FILE, SUMMARY_FILE
from chainrule.data import files
from chainrule.nn.losses import LOSSES
from chainrule.training import checkpoints
from chainrule.training import diagnostics as diag
from chainrule.training.config import TrainConfig
from chainrule.training.history import EpochRecord, History
from chainrule.training.hooks import (
    Checkpoint,
    HealthLog,
    Hook,
    MetricsFile,
    StopOnSignal,
    TrainingInterrupted,
)
from chainrule.training.loop import fit
from chainrule.training.progress import Progress
from chainrule.training.state import Run


class BestModelFile(Hook):
    """Writes ``run_dir/model.safetensors`` after each epoch that is the best so far (fit has
    just put the best parameters in the model), with the data's preprocessing and classes."""

    def __init__(self, run_dir: Path, data: datasets.Dataset) -> None:
        self.run_dir, self.data = run_dir, data

    def on_epoch_end(self, run: Run, record: EpochRecord) -> None:
        """Save the model when this epoch is the new best."""
        if run.state.history.best_epoch == record.epoch:
            save_model(self.run_dir, run.model, self.data, record.epoch)


def run_hooks(
    run_dir: Path, data: datasets.Dataset, progress: bool, log: Callable[[str], None]
) -> list[Hook]:
    """The hooks of a run in ``run_dir`` (see the module docstring for their order)."""
    return [
        StopOnSignal(),
        *([Progress()] if progress else []),
        HealthLog(log),
        Checkpoint(run_dir / checkpoints.CHECKPOINT_FILE),
        MetricsFile(run_dir / METRICS_FILE),
        BestModelFile(run_dir, data),
    ]


def train_into(
    run_dir: Path,
    config: TrainConfig,
    prepared: Prepared,
    resume: bool,
    progress: bool,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Train (from the run's checkpoint when ``resume``), then write the model, the figures and
    ``summary.json``; returns the summary. Raises what ``fit`` raises; TrainingInterrupted
    carries ``run_dir``."""
    data, model = prepared.data, prepared.model
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
            resume=resume,
            augment=make_augment(config, data),
            patience=config.patience,
            hooks=run_hooks(run_dir, data, progress, log),
            device=config.device,
        )
    except TrainingInterrupted as e:
        e.run_dir = run_dir
        raise
    timings = {"wall_seconds": time.perf_counter() - start, "load_seconds": prepared.load_seconds}
    model.to("cpu")  # the figures and predictions read NumPy weights
    save_model(run_dir, model, data, history.best_epoch)
    with np.errstate(all="ignore"):
        test_pred = model.predict(data.X_test)
    figures = save_figures(run_dir, model, data, history, test_pred, config)
    warnings = diag.summarize_warnings(history, config.lr)
    warnings += diag.final_warnings(model, data.X_val[:1000])
    summary = {
        "run_dir": str(run_dir),
        **_outcome(config, data, history, test_pred),
        **timings,
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


def _outcome(
    config: TrainConfig, data: datasets.Dataset, history: History, test_pred: np.ndarray
) -> dict[str, Any]:
    """The summary's account of what was trained and how well (test_pred: (N_test,) labels)."""
    return {
        "dataset": data.name,
        "model": config.model,
        "loss": config.loss_name,
        "test_accuracy": float(np.mean(test_pred == data.y_test)),
        "val_accuracy": history.best_val_accuracy,
        "train_accuracy": history.epochs[history.best_epoch - 1].train_accuracy,
        "best_epoch": history.best_epoch,
        "epochs": len(history),
        "planned_epochs": config.epochs,
        "patience": config.patience,
        "stopped_early": history.stopped_early,
        "seconds": sum(r.seconds for r in history.epochs),
    }


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
