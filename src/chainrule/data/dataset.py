"""The common Dataset: train/val/test splits and the preprocessing fitted on the training split.

``build_dataset`` takes what a source's loader returns (raw uint8 rows, int64 labels, the class
names and the image shape), checks it, draws the splits and hands the array math to
``preprocessing.Preprocessing``.

Memory: a source hands over its pixels as uint8 (a quarter of float32's size). Each split is
gathered from it straight into its own float32 array, chunk by chunk, and preprocessed in place,
so CIFAR-sized training data (50,000 x 3,072 float32, 600 MB) exists once, never twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chainrule.data.preprocessing import Preprocessing, rows_per_chunk
from chainrule.engine.errors import ConfigError, DataError, ShapeError

# The seed of the subset that ``max_test`` takes: fixed, so the test set never depends on ``seed``.
TEST_SUBSET_SEED = 0


@dataclass(eq=False, repr=False)
class Dataset:
    """Preprocessed splits: X_* (N, D) float32 rows of pixels in (H, W[, C]) order, y_* (N,) int64.

    classes: the class names, y indexes them. image_shape: (H, W) grayscale or (H, W, C) colour.
    preprocessing: the numbers fitted on X_train; apply them to any new raw rows.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    image_shape: tuple[int, ...]
    name: str
    preprocessing: Preprocessing

    @property
    def num_classes(self) -> int:
        """C, the number of classes."""
        return len(self.classes)

    @property
    def num_features(self) -> int:
        """D = H * W [* C], the length of one row."""
        return int(self.X_train.shape[1])

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train {self.X_train.shape}, val {self.X_val.shape}, "
            f"test {self.X_test.shape}, {self.num_classes} classes, image {self.image_shape}, "
            f"{self.preprocessing!r})"
        )


def stratified_sample(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Choose n of the indices 0..N-1 of labels y (N,), each class in proportion to its size.

    Returns (n,) int64, n in 0..N. Each class gets floor(n * share) and the remaining picks go to
    the largest remainders (the largest-remainder, or Hamilton, apportionment), so the total is
    exactly n. The result is in the order the classes and ``rng`` produced.
    """
    classes, counts = np.unique(y, return_counts=True)
    exact = counts * (n / len(y))
    quota = np.floor(exact).astype(np.int64)
    # The stable sort keeps ties in class order: the same call always makes the same choice.
    order = np.argsort(-(exact - quota), kind="stable")
    quota[order[: n - int(quota.sum())]] += 1
    picked = [
        rng.permutation(np.flatnonzero(y == c))[:q] for c, q in zip(classes, quota, strict=True)
    ]
    return np.concatenate([*picked, np.empty(0, dtype=np.int64)]).astype(np.int64)


def split_indices(y: np.ndarray, val_size: float | int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold a stratified validation split out of labels y (N,): (train_idx, val_idx), int64.

    val_size: a fraction in [0, 1) of N, or a count in [0, N). Both index arrays come in a
    seeded random order, so the first rows of a split are a sample of every class. Raises
    ConfigError for a val_size of another type or outside those ranges.
    """
    n_val = resolve_size(val_size, len(y), "val_size")
    rng = np.random.default_rng(seed)
    val_idx = stratified_sample(y, n_val, rng)
    is_val = np.zeros(len(y), dtype=bool)
    is_val[val_idx] = True
    train_idx = rng.permutation(np.flatnonzero(~is_val))
    return train_idx, rng.permutation(val_idx)


def resolve_size(size: float | int, n: int, what: str) -> int:
    """A fraction in [0, 1) of n, or a count in [0, n), as a count that leaves at least one.

    what: the setting's name for the message. Raises ConfigError for a bool, a non-number, a
    fraction outside [0, 1) or a count outside [0, n).
    """
    if isinstance(size, bool) or not isinstance(size, int | float | np.integer | np.floating):
        raise ConfigError(f"{what} is {size!r}; expected a fraction in [0, 1) or a count")
    if isinstance(size, int | np.integer):
        count = int(size)
    elif 0.0 <= size < 1.0:
        count = round(float(size) * n)
    else:
        raise ConfigError(f"{what} is {size}; expected a fraction in [0, 1) or an integer count")
    if not 0 <= count < n:
        raise ConfigError(f"{what} is {size}: {count} of {n} examples; expected 0 <= count < {n}")
    return count


def gather_float32(X: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Rows X[idx] of X (N, D), any real dtype, by integer indices idx (K,), as a new float32
    array (K, D), converted a chunk at a time, so neither a copy of X nor a full-size temporary
    in X's dtype is ever made."""
    out = np.empty((len(idx), X.shape[1]), dtype=np.float32)
    rows = rows_per_chunk(X.shape[1])
    for start in range(0, len(idx), rows):
        out[start : start + rows] = X[idx[start : start + rows]]
    return out


def build_dataset(
    name: str,
    X_pool: np.ndarray,
    y_pool: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    classes: list[str],
    image_shape: tuple[int, ...],
    scale: float,
    *,
    val_size: float | int = 0.1,
    seed: int = 0,
    standardize: bool = False,
    max_train: int | None = None,
    max_test: int | None = None,
) -> Dataset:
    """Split, convert and preprocess raw data into a Dataset.

    X_pool: (N, D) raw training pixels (uint8 or any real dtype), y_pool: (N,) integer labels;
    X_test (M, D), y_test (M,): the fixed test split; D = prod(image_shape). scale: the pixel
    maximum (255, or 16 for the digits). val_size: see ``split_indices``. max_train caps N
    (train + val together) before the validation split, max_test caps M; both take stratified
    subsets, the first seeded with ``seed``, the second with a fixed seed so the test set never
    depends on ``seed``. standardize: see ``Preprocessing.fit_apply_inplace``.
    Raises DataError for fewer than two classes, an empty split or labels outside
    0..len(classes)-1; ShapeError for rows that are not (N, D) or labels not (N,); ConfigError
    for a bad val_size, max_train or max_test.
    """
    splits = ((X_pool, y_pool, "train"), (X_test, y_test, "test"))
    _check_raw(name, splits, classes, image_shape)
    rng = np.random.default_rng(seed)
    pool_idx = np.arange(len(y_pool))
    if max_train is not None:
        pool_idx = np.sort(_capped(y_pool, max_train, rng, "max_train"))
    train_local, val_local = split_indices(y_pool[pool_idx], val_size, seed)
    train_idx, val_idx = pool_idx[train_local], pool_idx[val_local]
    test_idx = np.arange(len(y_test))
    if max_test is not None:
        fixed = np.random.default_rng(TEST_SUBSET_SEED)
        test_idx = np.sort(_capped(y_test, max_test, fixed, "max_test"))

    X_train = gather_float32(X_pool, train_idx)
    preprocessing = Preprocessing.fit_apply_inplace(X_train, scale, standardize)
    X_val = preprocessing.apply(gather_float32(X_pool, val_idx), inplace=True)
    X_test_f = preprocessing.apply(gather_float32(X_test, test_idx), inplace=True)
    return Dataset(
        X_train=X_train,
        y_train=y_pool[train_idx].astype(np.int64),
        X_val=X_val,
        y_val=y_pool[val_idx].astype(np.int64),
        X_test=X_test_f,
        y_test=y_test[test_idx].astype(np.int64),
        classes=list(classes),
        image_shape=tuple(int(s) for s in image_shape),
        name=name,
        preprocessing=preprocessing,
    )


def _check_raw(
    name: str,
    splits: tuple[tuple[np.ndarray, np.ndarray, str], ...],
    classes: list[str],
    image_shape: tuple[int, ...],
) -> None:
    """The checks of ``build_dataset``: two classes or more; per (X, y, split name), rows
    (N, prod(image_shape)) with N >= 1 and (N,) labels in 0..len(classes)-1."""
    D = int(np.prod(image_shape))
    if len(classes) < 2:
        raise DataError(
            f"{name}: {len(classes)} class{'' if len(classes) == 1 else 'es'} "
            f"({', '.join(map(repr, classes)) or 'none'}); a classifier needs at least two"
        )
    for X, y, split in splits:
        if len(y) == 0:
            raise DataError(f"{name}: the {split} split is empty; expected at least one image")
        if X.ndim != 2 or X.shape[1] != D or y.shape != (X.shape[0],):
            raise ShapeError(
                f"{name}: {split} data {X.shape} with labels {y.shape}; expected (N, {D}) rows "
                f"for images {image_shape} and (N,) labels"
            )
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(classes)):
            raise DataError(
                f"{name}: {split} labels span {int(y.min())}..{int(y.max())}; expected "
                f"0..{len(classes) - 1} for {len(classes)} classes"
            )


def _capped(y: np.ndarray, limit: int, rng: np.random.Generator, what: str) -> np.ndarray:
    """All indices of y, or a stratified sample of ``limit`` of them."""
    if isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 1:
        raise ConfigError(f"{what} is {limit!r}; expected a positive integer or None")
    if limit >= len(y):
        return np.arange(len(y))
    return stratified_sample(y, int(limit), rng)
