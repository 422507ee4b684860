"""From a run's settings to the objects that train: the data, the model, the optimizer, each
checked before a run folder is made (the splits, the memory the model needs), and the config a
run folder holds (``read_config``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chainrule import data as datasets
from chainrule import nn
from chainrule.app.runfolders import CONFIG_FILE
from chainrule.engine.errors import ConfigError, DataError, DataNotFoundError, OutOfMemoryError
from chainrule.nn import optim
from chainrule.training.augment import HorizontalFlip
from chainrule.training.config import LINEAR_MODELS, TrainConfig


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


def load_data(config: TrainConfig, log: Any = None, progress: bool = False) -> datasets.Dataset:
    """The dataset a config names, split and preprocessed as it says (X float32 (N, D), y (N,)).

    log, progress: as ``data.load`` takes them (lines and a bar for a long first decoding).
    Raises DataNotFoundError and DataError as ``data.load`` does.
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
class Prepared:
    """What a run trains with, all made before its folder is (load_seconds: reading the data)."""

    data: datasets.Dataset
    model: nn.Module
    optimizer: optim.Optimizer
    load_seconds: float


def prepare(
    config: TrainConfig, log: Callable[[str], None] | None = None, progress: bool = False
) -> Prepared:
    """The data, model and optimizer a config names, checked (``check_splits``,
    ``check_memory``) before any run folder is made. Raises what ``load_data`` raises,
    ConfigError, and OutOfMemoryError."""
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
    return Prepared(data, model, optimizer, load_seconds)
