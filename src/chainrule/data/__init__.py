"""Datasets: one loader per source, one Dataset with train/val/test splits and preprocessing.

``load(name)`` finds (or downloads, checksummed) the raw pixels, holds a seeded, stratified
validation split out of the training data, and centres (optionally standardizes) every split
with numbers fitted on the training split alone. The test split is fixed by the source.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from chainrule.data.cifar10 import load_cifar10
from chainrule.data.dataset import Dataset, Preprocessing, build_dataset, split_indices
from chainrule.data.digits import SCALE as DIGITS_SCALE
from chainrule.data.digits import load_digits
from chainrule.data.mnist import load_idx
from chainrule.data.image_folder import CIFAR10_JPEG, find_cifar10_jpeg, load_image_folder
from chainrule.data.images import load_image, read_image
from chainrule.engine.errors import ConfigError

DATASETS = ("digits", "fashion-mnist", "mnist", "cifar10", "cifar10-jpeg", "image-folder")


def load(
    name: str = "digits",
    data_dir: str | Path | None = None,
    *,
    val_size: float | int = 0.1,
    seed: int = 0,
    standardize: bool = False,
    max_train: int | None = None,
    max_test: int | None = None,
    download: bool = True,
    root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
    progress: bool = False,
) -> Dataset:
    """Load dataset ``name`` (one of ``DATASETS``) as a preprocessed Dataset.

    data_dir: looked in first, before ``$CHAINRULE_DATA`` and the cache folder.
    val_size: the validation split, a fraction in [0, 1) or a count of the training data.
    seed: chooses the validation split (and the max_train subset); never the test split.
    standardize: also divide each feature by its training std (default: only centre).
    max_train: cap the training data (train + val) for quick runs; max_test: cap the test split.
    download: fetch missing files (mnist, fashion-mnist, cifar10) into the cache.
    root: the folder or archive of ``image-folder``.
    cache_dir: where downloads and decoded arrays go (default ``$CHAINRULE_CACHE``,
    ``$XDG_CACHE_HOME/chainrule`` or ``~/.cache/chainrule``).
    log: gets the notes on converted images and skipped files of an image folder.
    progress: also say what a long first step does (decoding image files, then cached): a line
    to ``log`` as it starts and ends, and a bar on stderr meanwhile when it is a terminal.
    X_*: (N, D) float32 rows; y_*: (N,) int64.
    """
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    if (root is not None) != (name == "image-folder"):
        raise ConfigError(
            f"dataset {name!r} with root={root!r}; expected root= exactly with 'image-folder'"
        )
    scale = 255.0
    if name == "digits":
        arrays = load_digits()
        scale = DIGITS_SCALE
    elif name in ("mnist", "fashion-mnist"):
        arrays = load_idx(name, data_dir, download, cache_dir)
    elif name == "cifar10":
        arrays = load_cifar10(data_dir, download, cache_dir)
    elif name == "cifar10-jpeg":
        archive = find_cifar10_jpeg(data_dir, cache_dir)
        arrays = load_image_folder(
            archive,
            cache_dir,
            log=log,
            progress=progress,
            expected_images=CIFAR10_JPEG.images,
        )
    else:
        assert root is not None
        arrays = load_image_folder(root, cache_dir, log=log, progress=progress)
    X_pool, y_pool, X_test, y_test, classes, image_shape = arrays
    return build_dataset(
        name,
        X_pool,
        y_pool,
        X_test,
        y_test,
        classes,
        image_shape,
        scale,
        val_size=val_size,
        seed=seed,
        standardize=standardize,
        max_train=max_train,
        max_test=max_test,
    )


__all__ = [
    "DATASETS",
    "Dataset",
    "Preprocessing",
    "build_dataset",
    "load",
    "load_image",
    "read_image",
    "split_indices",
]
