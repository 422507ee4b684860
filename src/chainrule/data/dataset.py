"""The common Dataset: train/val/test splits and the preprocessing fitted on the training split.

Memory: a source hands over its pixels as uint8 (a quarter of float32's size). Each split is
gathered from it straight into its own float32 array, chunk by chunk, and preprocessed in place,
so CIFAR-sized training data (50,000 x 3,072 float32, 600 MB) exists once, never twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from chainrule.engine.errors import ConfigError, DataError, ShapeError

# Features whose training std is below this (in [0, 1] pixel units) are constant: MNIST's corner
# pixels, the digits' empty border. They are left undivided (divisor 1, as scikit-learn's
# StandardScaler does); dividing by std + eps would turn one stray ink pixel in a new image into
# a value of about 1 / eps.
MIN_STD = 1e-6

# The seed of the subset that ``max_test`` takes: fixed, so the test set never depends on ``seed``.
TEST_SUBSET_SEED = 0

# Rows gathered and converted per step: a few MB of temporaries whatever the dataset's size.
CHUNK_ELEMENTS = 1 << 20


@dataclass(eq=False, repr=False)
class Preprocessing:
    """x -> (x / scale - mean) / std, per feature, with numbers fitted on the training split.

    scale: the raw pixel maximum (255, or 16 for digits), so that pixels lie in [0, 1].
    mean: (D,) float32, the training mean of the scaled pixels.
    std: (D,) float32 divisor (the training std; 1 for constant features), or None when the data
    is only centred.
    """

    scale: float
    mean: np.ndarray
    std: np.ndarray | None = None

    @classmethod
    def fit_apply_inplace(
        cls, X: np.ndarray, scale: float, standardize: bool = False
    ) -> Preprocessing:
        """Fit on the training rows X (N, D) float32 and transform X IN PLACE; returns the fit."""
        _check_float32(X)
        X /= scale
        # Reductions accumulate in float64 (float32 sums of 50,000 rows lose digits) but run
        # through numpy's small cast buffers: no float64 copy of X is made.
        mean = X.mean(axis=0, dtype=np.float64).astype(np.float32)
        X -= mean
        std = None
        if standardize:
            std = np.sqrt(_column_mean_of_squares(X)).astype(np.float32)
            std[std < MIN_STD] = 1.0
            X /= std
        return cls(float(scale), mean, std)

    @property
    def num_features(self) -> int:
        """D, the number of features the preprocessing was fitted on."""
        return int(self.mean.shape[0])

    def apply(self, X_raw: np.ndarray, *, inplace: bool = False) -> np.ndarray:
        """Raw pixels X_raw (N, D) or (D,) -> preprocessed float32 of the same shape.

        The same operations in the same order as on the training split, so a training row given
        here again comes out bit for bit the same. inplace=True transforms a float32 array itself.
        """
        if inplace:
            _check_float32(X_raw)
            X = X_raw
        else:
            X = np.array(X_raw, dtype=np.float32)
        if X.ndim not in (1, 2) or X.shape[-1] != self.num_features:
            raise ShapeError(
                f"preprocessing got rows of shape {X.shape}; expected (N, {self.num_features}) "
                f"or ({self.num_features},)"
            )
        X /= self.scale
        X -= self.mean
        if self.std is not None:
            X /= self.std
        return X

    def invert(self, X: np.ndarray) -> np.ndarray:
        """Preprocessed rows X (N, D) or (D,) -> raw pixels, float32 (for showing images)."""
        X = np.array(X, dtype=np.float32)
        if self.std is not None:
            X *= self.std
        X += self.mean
        X *= self.scale
        return X

    def to_arrays(self, prefix: str = "preprocessing.") -> dict[str, np.ndarray]:
        """The numbers as named arrays (for a safetensors model file): scale (1,) float64,
        mean (D,) float32 and, when standardizing, std (D,) float32."""
        arrays = {
            f"{prefix}scale": np.array([self.scale], dtype=np.float64),
            f"{prefix}mean": np.ascontiguousarray(self.mean, dtype=np.float32),
        }
        if self.std is not None:
            arrays[f"{prefix}std"] = np.ascontiguousarray(self.std, dtype=np.float32)
        return arrays

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, np.ndarray], prefix: str = "preprocessing."
    ) -> Preprocessing:
        """The inverse of ``to_arrays``; keys without ``prefix`` are ignored."""
        try:
            scale = np.asarray(arrays[f"{prefix}scale"], dtype=np.float64)
            mean = np.asarray(arrays[f"{prefix}mean"], dtype=np.float32)
        except KeyError as err:
            raise DataError(
                f"preprocessing arrays lack {err.args[0]!r}; expected {prefix}scale and "
                f"{prefix}mean (and optionally {prefix}std)"
            ) from None
        std = arrays.get(f"{prefix}std")
        if scale.size != 1 or not float(scale.reshape(-1)[0]) > 0:
            raise DataError(f"preprocessing scale is {scale}; expected one positive number")
        if mean.ndim != 1:
            raise DataError(f"preprocessing mean has shape {mean.shape}; expected (D,)")
        if std is not None:
            std = np.asarray(std, dtype=np.float32)
            if std.shape != mean.shape:
                raise DataError(
                    f"preprocessing std has shape {std.shape}; expected {mean.shape} like the mean"
                )
        return cls(float(scale.reshape(-1)[0]), mean.copy(), None if std is None else std.copy())

    def __repr__(self) -> str:
        kind = "standardize" if self.std is not None else "centre"
        return f"Preprocessing(scale={self.scale:g}, {kind}, D={self.num_features})"


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


def _check_float32(X: np.ndarray) -> None:
    if not isinstance(X, np.ndarray) or X.dtype != np.float32 or not X.flags.writeable:
        raise DataError(
            f"in-place preprocessing got {type(X).__name__} "
            f"{getattr(X, 'dtype', '')}; expected a writeable float32 array"
        )


def _column_mean_of_squares(X: np.ndarray) -> np.ndarray:
    """mean(X**2, axis=0) in float64, for X (N, D), a few MB of rows at a time."""
    rows = max(1, CHUNK_ELEMENTS // max(1, X.shape[1]))
    total = np.zeros(X.shape[1], dtype=np.float64)
    for start in range(0, X.shape[0], rows):
        chunk = X[start : start + rows].astype(np.float64)
        total += np.einsum("ij,ij->j", chunk, chunk)
    return total / max(1, X.shape[0])


def stratified_sample(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Choose n of the indices 0..len(y)-1, each class in proportion to its size; (n,) int64.

    Each class gets floor(n * share) and the remaining picks go to the largest remainders, so
    the total is exactly n. The result is in the order the classes and ``rng`` produced.
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
    seeded random order, so the first rows of a split are a sample of every class.
    """
    n_val = resolve_size(val_size, len(y), "val_size")
    rng = np.random.default_rng(seed)
    val_idx = stratified_sample(y, n_val, rng)
    is_val = np.zeros(len(y), dtype=bool)
    is_val[val_idx] = True
    train_idx = rng.permutation(np.flatnonzero(~is_val))
    return train_idx, rng.permutation(val_idx)


def resolve_size(size: float | int, n: int, what: str) -> int:
    """A fraction in [0, 1) of n, or a count in [0, n), as a count that leaves at least one."""
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
    """Rows X[idx] as a new float32 array (len(idx), D), converted a chunk at a time, so
    neither a copy of X nor a full-size temporary in X's dtype is ever made."""
    out = np.empty((len(idx), X.shape[1]), dtype=np.float32)
    rows = max(1, CHUNK_ELEMENTS // max(1, X.shape[1]))
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

    X_pool: (N, D) raw training pixels (uint8 or any real dtype), y_pool: (N,) labels; X_test
    (M, D), y_test (M,): the fixed test split. max_train caps N (train + val together) before
    the validation split, max_test caps M; both take stratified subsets, the first seeded with
    ``seed``, the second with a fixed seed so the test set never depends on ``seed``.
    """
    D = int(np.prod(image_shape))
    if len(classes) < 2:
        raise DataError(
            f"{name}: {len(classes)} class{'' if len(classes) == 1 else 'es'} "
            f"({', '.join(map(repr, classes)) or 'none'}); a classifier needs at least two"
        )
    for X, y, split in ((X_pool, y_pool, "train"), (X_test, y_test, "test")):
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


def _capped(y: np.ndarray, limit: int, rng: np.random.Generator, what: str) -> np.ndarray:
    """All indices of y, or a stratified sample of ``limit`` of them."""
    if isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 1:
        raise ConfigError(f"{what} is {limit!r}; expected a positive integer or None")
    if limit >= len(y):
        return np.arange(len(y))
    return stratified_sample(y, int(limit), rng)
