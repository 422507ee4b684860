"""A training run from settings to a folder on disk, and reading that folder back.

``TrainConfig`` holds every setting of a run as plain values (what ``config.json`` stores);
``train_run`` turns it into objects, trains, and writes the run folder:

    config.json        the settings
    metrics.csv        one row per epoch
    checkpoint.safetensors   the full training state after the last epoch (for --resume)
    model.safetensors  the best-validation weights, preprocessing and config in its metadata
    curves.png, weights.png, confusion.png
    summary.json       test accuracy and timings
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import data as datasets
from chainrule import nn, optim, runs
from chainrule.augment import HorizontalFlip
from chainrule.errors import ConfigError, DataError, DataNotFoundError
from chainrule.losses import LOSSES
from chainrule.train import (
    EpochRecord,
    TrainingInterrupted,
    checkpoint_history,
    evaluate,
    fit,
    write_metrics_row,
)

MODELS = ("linear-svm", "softmax", "two-layer", "mlp")
AUGMENTATIONS = ("none", "flip")
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
SUMMARY_FILE = "summary.json"


@dataclass
class TrainConfig:
    """Every setting of a training run, as JSON-able values."""

    dataset: str = "digits"
    data_dir: str | None = None
    root: str | None = None
    model: str = "two-layer"
    hidden: list[int] = field(default_factory=lambda: [100])
    activation: str = "relu"
    loss: str | None = None  # None: svm for linear-svm, softmax otherwise
    optimizer: str = "momentum"
    lr: float = 0.05
    lr_decay: str = "1.0"  # a factor per epoch, or "cosine"
    reg: float = 1e-3
    epochs: int = 50
    batch_size: int = 64
    seed: int = 0
    val_size: float = 0.1
    standardize: bool = False
    max_train: int | None = None
    max_test: int | None = None
    augment: str = "none"  # or "flip"

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r} (choose from {', '.join(MODELS)})")
        if self.model == "linear-svm" and self.loss not in (None, "svm"):
            raise ConfigError("linear-svm is trained with the svm loss; use --model softmax")
        if self.model == "softmax" and self.loss not in (None, "softmax"):
            raise ConfigError(
                "the softmax classifier uses the softmax loss; use --model linear-svm"
            )
        if self.loss is not None and self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r} (choose from {', '.join(LOSSES)})")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ConfigError(f"hidden sizes must be positive integers, got {self.hidden}")
        if self.model == "two-layer" and len(self.hidden) != 1:
            raise ConfigError(
                f"two-layer takes one hidden size, got {self.hidden}; use --model mlp"
            )
        nn.activation_from_name(self.activation)
        if self.optimizer not in optim.OPTIMIZERS:
            raise ConfigError(
                f"unknown optimizer {self.optimizer!r} (choose from {', '.join(optim.OPTIMIZERS)})"
            )
        if not self.lr > 0:
            raise ConfigError(f"learning rate must be a positive number, got {self.lr!r}")
        if not self.reg >= 0:
            raise ConfigError(f"regularization strength must be >= 0, got {self.reg!r}")
        if self.epochs < 1:
            raise ConfigError(f"epochs must be a positive integer, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be a positive integer, got {self.batch_size}")
        if self.augment not in AUGMENTATIONS:
            raise ConfigError(
                f"unknown augmentation {self.augment!r} (choose from {', '.join(AUGMENTATIONS)})"
            )
        self.schedule()

    @property
    def loss_name(self) -> str:
        return self.loss or ("svm" if self.model == "linear-svm" else "softmax")

    def schedule(self) -> optim.Schedule:
        """The learning-rate schedule that ``lr_decay`` names."""
        if str(self.lr_decay) == "cosine":
            return optim.CosineDecay(self.epochs)
        try:
            gamma = float(self.lr_decay)
        except ValueError:
            raise ConfigError(
                f"--lr-decay takes a factor per epoch in (0, 1] or 'cosine', got {self.lr_decay!r}"
            ) from None
        return optim.Constant() if gamma == 1 else optim.StepDecay(gamma)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in obj.items() if k in known})


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


def build_model(config: TrainConfig, input_size: int, num_classes: int) -> nn.Module:
    """The model a config names, initialized from the run's seed."""
    rng = np.random.default_rng([config.seed, 1])
    if config.model in ("linear-svm", "softmax"):
        return nn.LinearClassifier(input_size, num_classes, rng)
    activation = nn.activation_from_name(config.activation)
    if config.model == "two-layer":
        return nn.TwoLayerNet(input_size, config.hidden[0], num_classes, rng, activation)
    return nn.MLP([input_size, *config.hidden, num_classes], rng, activation)


def make_augment(config: TrainConfig, data: datasets.Dataset) -> HorizontalFlip | None:
    """The batch augmentation a config names (None for "none")."""
    if config.augment == "flip":
        p = data.preprocessing
        return HorizontalFlip(data.image_shape, p.mean, p.std)
    return None


def train_run(
    config: TrainConfig,
    out: str | Path,
    resume: bool = False,
    progress: bool = True,
    log: Any = None,
) -> dict[str, Any]:
    """Train as ``config`` says into the run folder ``out``; returns the summary (also saved).

    resume: continue from ``out``'s checkpoint (the config is read from ``out``).
    log: a callable taking one line of text (warnings, progress notes); default: nothing.
    """
    out = Path(out)
    log = log or (lambda line: None)
    if resume and not (out / CONFIG_FILE).is_file():
        raise DataNotFoundError(f"cannot resume: {out} has no {CONFIG_FILE}")
    out.mkdir(parents=True, exist_ok=True)
    # Lock first, then look: two processes starting on one folder cannot both pass the checks.
    with runs.run_lock(out):
        if resume:
            config = TrainConfig.from_json(json.loads((out / CONFIG_FILE).read_text()))
        elif (out / runs.CHECKPOINT_FILE).exists() or (out / runs.MODEL_FILE).exists():
            raise ConfigError(f"{out} already holds a run; use --resume {out} or another --out")
        else:  # new, or a start that failed before its first checkpoint: (re)write the config
            runs.atomic_write_text(
                out / CONFIG_FILE, json.dumps(dataclasses.asdict(config), indent=2)
            )
        start = time.perf_counter()
        data = load_data(config, log, progress)
        load_seconds = time.perf_counter() - start
        model = build_model(config, data.num_features, data.num_classes)
        optimizer = optim.optimizer_from_name(config.optimizer, model.parameters(), config.lr)
        metrics = out / METRICS_FILE
        checkpoint = out / runs.CHECKPOINT_FILE
        # The metrics file restarts from what the checkpoint knows: a process killed between
        # saving a checkpoint and appending its row must neither lose nor repeat an epoch.
        metrics.unlink(missing_ok=True)
        if resume and checkpoint.exists():
            for record in checkpoint_history(checkpoint).epochs:
                write_metrics_row(metrics, record)

        def on_epoch(record: EpochRecord) -> None:
            write_metrics_row(metrics, record)

        start = time.perf_counter()
        history = fit(
            model,
            data,
            loss=LOSSES[config.loss_name],
            optimizer=optimizer,
            epochs=config.epochs,
            batch_size=config.batch_size,
            reg=config.reg,
            rng=np.random.default_rng([config.seed, 2]),
            schedule=config.schedule(),
            checkpoint=checkpoint,
            resume=resume and checkpoint.exists(),
            progress=progress,
            on_epoch=on_epoch,
            log=log,
            augment=make_augment(config, data),
        )
        train_seconds = time.perf_counter() - start
        runs.save_model(
            out / runs.MODEL_FILE,
            model,
            data.preprocessing,
            data.classes,
            data.image_shape,
            {"dataset": data.name, "best_epoch": history.best_epoch},
        )
        test_pred = model.predict(data.X_test)
        test_accuracy = float(np.mean(test_pred == data.y_test))
        figures = save_figures(out, model, data, history, test_pred, config)
        summary = {
            "run_dir": str(out),
            "dataset": data.name,
            "model": config.model,
            "loss": config.loss_name,
            "test_accuracy": test_accuracy,
            "val_accuracy": history.best_val_accuracy,
            "train_accuracy": history.epochs[history.best_epoch - 1].train_accuracy,
            "best_epoch": history.best_epoch,
            "epochs": len(history),
            "seconds": sum(r.seconds for r in history.epochs),
            "wall_seconds": train_seconds,
            "load_seconds": load_seconds,
            "n_train": len(data.X_train),
            "n_val": len(data.X_val),
            "n_test": len(data.X_test),
            "figures": [str(p) for p in figures],
        }
        runs.atomic_write_text(out / SUMMARY_FILE, json.dumps(summary, indent=2))
    return summary


def save_figures(
    out: Path,
    model: nn.Module,
    data: datasets.Dataset,
    history: Any,
    test_pred: np.ndarray,
    config: TrainConfig,
) -> list[Path]:
    """The run's PNGs: curves, learned weights as images, the test confusion matrix."""
    from chainrule import plots  # matplotlib imports slowly: only where a figure is drawn

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


def evaluate_run(run_dir: str | Path, data_dir: str | None = None) -> dict[str, Any]:
    """Score a saved run's model again on its dataset's validation and test splits."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise DataNotFoundError(f"{run_dir} is not a run folder (no {CONFIG_FILE})")
    config = TrainConfig.from_json(json.loads((run_dir / CONFIG_FILE).read_text()))
    if data_dir is not None:
        config.data_dir = data_dir
    saved = runs.load_model(run_dir / runs.MODEL_FILE)
    data = load_data(config)
    saved_mean = saved.preprocessing.mean
    if saved_mean.shape != data.preprocessing.mean.shape or not np.array_equal(
        saved_mean, data.preprocessing.mean
    ):
        raise DataError(
            f"the {config.dataset} data differ from the data {run_dir} was trained on "
            "(their training means disagree)"
        )
    return {
        "run_dir": str(run_dir),
        "dataset": data.name,
        "val_accuracy": evaluate(saved.model, data.X_val, data.y_val),
        "test_accuracy": evaluate(saved.model, data.X_test, data.y_test),
        "n_test": len(data.y_test),
    }


__all__ = [
    "MODELS",
    "TrainConfig",
    "TrainingInterrupted",
    "build_model",
    "evaluate_run",
    "load_data",
    "train_run",
]
