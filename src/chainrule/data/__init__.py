"""Datasets: one loader per source, one Dataset with train/val/test splits and preprocessing.

Sources: ``digits`` (scikit-learn's 8x8 digits), ``mnist`` and ``fashion-mnist`` (IDX files:
``mnist``, ``idx``), ``cifar10`` (the python batches), ``cifar10-jpeg`` and ``image-folder``
(image files: ``cifar10_jpeg``, ``image_folder``). ``files``, ``paths`` and ``download`` are
the shared plumbing; ``dataset`` splits and ``preprocessing`` holds the array math.

``load(name)`` finds (or downloads, checksummed) the raw pixels, holds a seeded, stratified
validation split out of the training data, and centres (optionally standardizes) every split
with numbers fitted on the training split alone. The test split is fixed by the source.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from chainrule.data.cifar10 import load_cifar10
from chainrule.data.cifar10_jpeg import load_cifar10_jpeg
from chainrule.data.dataset import Dataset, build_dataset, split_indices
from chainrule.data.digits import SCALE as DIGITS_SCALE
from chainrule.data.digits import load_digits
from chainrule.data.image_decoder import Arrays
from chainrule.data.image_folder import load_image_folder
from chainrule.data.images import load_image, read_image
from chainrule.data.mnist import load_idx
from chainrule.data.preprocessing import Preprocessing
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

    Returns X_train, X_val, X_test: (N, D) float32 rows, D = prod(image_shape) (64 for the
    digits, 784 for MNIST, 3,072 for CIFAR-10), pixels scaled to [0, 1] and centred;
    y_*: (N,) int64 in 0..C-1.
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
    Raises ConfigError for an unknown name, root= with another dataset than image-folder (or
    none with it) and bad split settings; DataNotFoundError, ChecksumError and DataError as
    the source's loader raises them (missing, altered or corrupt files).
    """
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    if (root is not None) != (name == "image-folder"):
        raise ConfigError(
            f"dataset {name!r} with root={root!r}; expected root= exactly with 'image-folder'"
        )
    arrays = _raw_arrays(name, data_dir, download, root, cache_dir, log, progress)
    scale = DIGITS_SCALE if name == "digits" else 255.0
    return build_dataset(
        name,
        *arrays,
        scale,
        val_size=val_size,
        seed=seed,
        standardize=standardize,
        max_train=max_train,
        max_test=max_test,
    )


def _raw_arrays(
    name: str,
    data_dir: str | Path | None,
    download: bool,
    root: str | Path | None,
    cache: str | Path | None,
    log: Callable[[str], None] | None,
    progress: bool,
) -> Arrays:
    """The source's raw arrays: X_train (N, D) uint8, y_train (N,) int64, X_test, y_test, the
    class names and the image shape, from the one loader that serves ``name``."""
    if name == "digits":
        return load_digits()
    if name in ("mnist", "fashion-mnist"):
        return load_idx(name, data_dir, download, cache)
    if name == "cifar10":
        return load_cifar10(data_dir, download, cache)
    if name == "cifar10-jpeg":
        return load_cifar10_jpeg(data_dir, cache, log=log, progress=progress)
    assert root is not None
    return load_image_folder(root, cache, log=log, progress=progress)


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
