"""The era table: raw pixels vs hand-designed features, linear classifiers vs a 2-layer net.

Before 2012 the recipe was: design features by hand (HOG, colour histograms), then train a
linear classifier on them. A net learns its features from the pixels instead. Six rows, each
trained with the settings written in the table (SGD with momentum 0.9, mini-batches, L2 on the
weights, the best-validation epoch kept) and scored once on the test split:

    linear SVM / softmax on pixels     (the images as preprocessed by ``data.load``)
    linear SVM / softmax on features   (HOG + hue histogram, standardized with train-only numbers)
    2-layer net on pixels / on features

Features are computed from the images (``preprocessing.invert`` gives the pixels back) and cached
in the cache folder, keyed by a hash of the data, so a second comparison skips the extraction.
This module trains the rows and keeps the feature cache; ``compare_table`` holds the rows and
writes the table, ``extraction`` runs the worker processes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import nn
from chainrule.data import Dataset
from chainrule.engine.errors import ConfigError
from chainrule.lessons import features
from chainrule.lessons.atomic import save_atomically
from chainrule.lessons.compare_table import DEFAULT_ROWS, MODELS, Comparison, RowResult, RowSpec
from chainrule.lessons.extraction import extract_all, signals_raise, to_images
from chainrule.nn import optim
from chainrule.nn.losses import LOSSES
from chainrule.training import config
from chainrule.training.loop import Splits, evaluate, fit

__all__ = [
    "DEFAULT_ROWS",
    "MODELS",
    "Comparison",
    "RowResult",
    "RowSpec",
    "compare",
    "feature_splits",
    "images_of",
    "signals_raise",
    "train_row",
]

FEATURES_VERSION = 1  # part of the cache key: bump it when the recipe in features.py changes
CHUNK_ROWS = 5000  # rows turned into images and features at a time (bounded memory)
SPLITS = ("train", "val", "test")

# --- features of a dataset, cached ----------


def images_of(X: np.ndarray, data: Dataset) -> np.ndarray:
    """Preprocessed rows X (N, D) of ``data`` -> images (N, H, W[, C]) in [0, 1], float32."""
    return to_images(X, data.preprocessing, data.image_shape)


def _cache_key(data: Dataset) -> str:
    digest = hashlib.blake2b(digest_size=12)
    digest.update(f"v{FEATURES_VERSION} {data.name} {data.image_shape}".encode())
    for X in (data.X_train, data.X_val, data.X_test):
        digest.update(str(X.shape).encode())
        digest.update(np.ascontiguousarray(X).data)
    return digest.hexdigest()


def feature_splits(
    data: Dataset,
    cache_dir: Path | None = None,
    workers: int = 1,
    log: Callable[[str], None] | None = None,
    progress: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, int], float, bool]:
    """HOG (+ hue histogram) of every split: ({"train": (N, F), "val": ..., "test": ...},
    {block: columns}, seconds, read_from_cache). Unstandardized float32.

    cache_dir: where to keep them (``<cache_dir>/features/<dataset>-<hash>.npz``); None: no cache.
    workers: processes for the extraction (HOG runs one image at a time in scikit-image).
    log: gets a line when the extraction starts and ends, or where the features were read from.
    progress: draw a bar of images on stderr while extracting, when it is a terminal.
    SIGINT or SIGTERM during the extraction stops the workers at once (see ``extract_all``).
    Raises ConfigError without scikit-image, DataError when a worker process dies.
    """
    log = log or (lambda line: None)
    start = time.perf_counter()
    parts = features.extract(images_of(data.X_train[:1], data)).parts
    width = sum(parts.values())
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / "features" / f"{data.name}-{_cache_key(data)}.npz"
        splits = _read_cached(path, data, width)
        if splits is not None:
            log(f"features: {width} per image, read from the cache ({path})")
            return splits, parts, time.perf_counter() - start, True
    splits = _extract_splits(data, width, workers, progress, log, path)
    seconds = time.perf_counter() - start
    done = f"features: {width} per image, computed in {seconds:.1f} s"
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_atomically(path, lambda f: np.savez(f, **splits))
        done += f"; cached in {path} ({path.stat().st_size / 1e6:.0f} MB)"
    log(done)
    return splits, parts, seconds, False


def _extract_splits(
    data: Dataset,
    width: int,
    workers: int,
    progress: bool,
    log: Callable[[str], None],
    path: Path | None,
) -> dict[str, np.ndarray]:
    """The features of every split, (N, width) each, extracted in chunks of CHUNK_ROWS rows;
    ``path``: where they will be cached (for the log line), or None."""
    chunks = [
        (split, X[i : i + CHUNK_ROWS])
        for split, X in zip(SPLITS, (data.X_train, data.X_val, data.X_test))
        for i in range(0, len(X), CHUNK_ROWS)
    ]
    total = sum(len(c) for _, c in chunks)
    used = workers if workers > 1 and len(chunks) > 1 else 1
    log(
        f"extracting features of {total:,} images ({used} process{'es' if used > 1 else ''})"
        + (f"; they are then cached in {path.parent}" if path is not None else "")
    )
    results = extract_all(
        [c for _, c in chunks], data.preprocessing, data.image_shape, used, progress
    )
    splits = {}
    for split in SPLITS:
        blocks = [r for (s, _), r in zip(chunks, results) if s == split]
        splits[split] = np.concatenate(blocks) if blocks else np.zeros((0, width), np.float32)
    return splits


def _read_cached(path: Path, data: Dataset, width: int) -> dict[str, np.ndarray] | None:
    """The cached features, or None when there are none or the file does not fit (then they
    are computed again and the file replaced)."""
    if not path.is_file():
        return None
    expected = {"train": len(data.X_train), "val": len(data.X_val), "test": len(data.X_test)}
    try:
        with np.load(path) as saved:
            splits = {k: saved[k] for k in expected}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None
    if any(splits[k].shape != (n, width) for k, n in expected.items()):
        return None
    return splits


# --- training the rows ----------


def _check_row(spec: RowSpec) -> None:
    if spec.model not in MODELS:
        raise ConfigError(f"a row's model is one of {', '.join(MODELS)}, got {spec.model!r}")


def train_row(
    spec: RowSpec,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    num_classes: int,
    seed: int,
) -> tuple[nn.Module, Any, float]:
    """Train one row's model; returns (model, History, seconds of training).

    X_train (N, D) and X_val (M, D) float32, y_train (N,) and y_val (M,) int labels below
    num_classes; seed: the weights' and the batches' randomness. Raises ConfigError for a
    model outside MODELS.
    """
    rng = np.random.default_rng([seed, 1])
    D = X_train.shape[1]
    _check_row(spec)
    model = nn.build_model(config.model_config(spec.model, D, num_classes, [spec.hidden]), rng)
    schedule = optim.StepDecay(spec.lr_decay) if spec.lr_decay != 1.0 else None
    start = time.perf_counter()
    history = fit(
        model,
        Splits(X_train, y_train, X_val, y_val),
        loss=LOSSES[config.default_loss(spec.model)],
        optimizer=optim.Momentum(model.parameters(), spec.lr),
        epochs=spec.epochs,
        batch_size=min(spec.batch_size, len(X_train)),
        reg=spec.reg,
        rng=np.random.default_rng([seed, 2]),
        schedule=schedule,
        progress=False,
    )
    return model, history, time.perf_counter() - start


def compare(
    data: Dataset,
    rows: Sequence[RowSpec] = DEFAULT_ROWS,
    epochs: int | None = None,
    seed: int = 0,
    cache_dir: Path | None = None,
    workers: int = 1,
    log: Callable[[str], None] | None = None,
    progress: bool = False,
) -> Comparison:
    """Train every row on ``data`` and score it on the test split.

    epochs: override every row's epochs (e.g. for a quick look). seed: the rows' randomness.
    cache_dir, workers: for the features (see ``feature_splits``). log: gets a line per step.
    progress: a bar while the features are extracted (on a terminal). Raises ConfigError for
    no rows, epochs < 1 or a row's unknown inputs or model, all before any work.
    """
    log = log or (lambda line: None)
    rows = _checked_rows(rows, epochs)
    feats: dict[str, np.ndarray] = {}
    parts: dict[str, int] = {}
    seconds, cached = 0.0, False
    if any(r.inputs == "features" for r in rows):
        raw, parts, seconds, cached = feature_splits(data, cache_dir, workers, log, progress)
        train, (val, test) = features.standardize(raw["train"], raw["val"], raw["test"])
        feats = {"train": train, "val": val, "test": test}
    result = Comparison(
        dataset=data.name,
        n_train=len(data.X_train),
        n_val=len(data.X_val),
        n_test=len(data.X_test),
        pixel_dims=data.num_features,
        feature_dims=parts,
        feature_seconds=seconds,
        features_cached=cached,
    )
    for spec in rows:
        row = _score_row(spec, data, feats, seed)
        result.rows.append(row)
        accuracy, took = row.test_accuracy, row.seconds
        log(f"{spec.label} on {spec.inputs}: test accuracy {accuracy:.4f} ({took:.1f} s)")
    return result


def _checked_rows(rows: Sequence[RowSpec], epochs: int | None) -> Sequence[RowSpec]:
    """The rows, with ``epochs`` put in when given; all checked before the (slow) features and
    the first training."""
    if not rows:
        raise ConfigError("a comparison needs at least one row")
    if epochs is not None:
        if epochs < 1:
            raise ConfigError(f"epochs must be a positive integer, got {epochs}")
        rows = [dataclasses.replace(r, epochs=epochs) for r in rows]
    for r in rows:
        if r.inputs not in ("pixels", "features"):
            raise ConfigError(f"a row's inputs are 'pixels' or 'features', got {r.inputs!r}")
        _check_row(r)
    return rows


def _score_row(spec: RowSpec, data: Dataset, feats: dict[str, np.ndarray], seed: int) -> RowResult:
    """Train one row on the pixels of ``data`` or on the standardized ``feats``, then score it
    once on the test split."""
    if spec.inputs == "pixels":
        X_train, X_val, X_test = data.X_train, data.X_val, data.X_test
    else:
        X_train, X_val, X_test = feats["train"], feats["val"], feats["test"]
    model, history, took = train_row(
        spec, X_train, data.y_train, X_val, data.y_val, data.num_classes, seed
    )
    return RowResult(
        spec,
        test_accuracy=evaluate(model, X_test, data.y_test),
        val_accuracy=history.best_val_accuracy,
        best_epoch=history.best_epoch,
        seconds=took,
    )
