"""Preprocessing: the array math that turns raw pixels into a model's input rows, in one place.

    x -> (x / scale - mean) / std, per feature,

with scale the pixel maximum (255, or 16 for the 8x8 digits) and mean and std fitted on the
training split alone (std only when standardizing; otherwise std is 1 and the data are only
centred). Nothing else in chainrule does arithmetic on pixel values: the loaders hand over raw
uint8 rows, ``dataset`` only selects rows and converts them to float32, and a model's file
stores these numbers (``to_arrays``) so that ``predict`` transforms a new image the same way.
Keeping the maths here, behind ``fit_apply_inplace``, ``apply`` and ``invert``, leaves one
place to change when the arrays live on another device.

Array modules: X may be a NumPy array or another module's (CuPy on a GPU, array_api_strict); the
arithmetic takes that module's functions (``backend.namespace``) and the fitted numbers are kept
as NumPy arrays (they go into model files), moved to X's device where they meet it.

Memory: ``fit_apply_inplace`` and ``apply(inplace=True)`` work in the caller's float32 array;
reductions run over chunks of ``CHUNK_ELEMENTS`` elements, so no full-size float64 copy is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from chainrule.engine.backend import is_array, like, namespace, to_numpy
from chainrule.engine.errors import DataError, ShapeError

# Features whose training std is below this (in [0, 1] pixel units) are constant: MNIST's corner
# pixels, the digits' empty border. They are left undivided (divisor 1, as scikit-learn's
# StandardScaler does); dividing by std + eps would turn one stray ink pixel in a new image into
# a value of about 1 / eps.
MIN_STD = 1e-6

# Elements converted per step when rows are gathered or squared in float64: a few MB of
# temporaries whatever the dataset's size.
CHUNK_ELEMENTS = 1 << 20


def rows_per_chunk(num_features: int) -> int:
    """How many rows of ``num_features`` values make one chunk of about CHUNK_ELEMENTS (>= 1)."""
    return max(1, CHUNK_ELEMENTS // max(1, num_features))


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
        """Fit on the training rows X (N, D) float32 and transform X IN PLACE; returns the fit.

        scale: the raw pixel maximum (> 0). standardize: also fit and divide by each feature's
        std (the population std, ddof=0). Raises DataError when X is not a writeable float32
        NumPy array.
        """
        _check_float32(X)
        X /= scale
        # Reductions accumulate in float64 (float32 sums of 50,000 rows lose digits) but run
        # through numpy's small cast buffers: no float64 copy of X is made.
        if isinstance(X, np.ndarray):
            mean = X.mean(axis=0, dtype=np.float64).astype(np.float32)
        else:
            xp = namespace(X)
            mean = to_numpy(xp.sum(X, axis=0, dtype=xp.float64)) / max(1, X.shape[0])
            mean = mean.astype(np.float32)
        X -= like(mean, X)
        std = None
        if standardize:
            std = np.sqrt(_column_mean_of_squares(X)).astype(np.float32)
            std[std < MIN_STD] = 1.0
            X /= like(std, X)
        return cls(float(scale), mean, std)

    @property
    def num_features(self) -> int:
        """D, the number of features the preprocessing was fitted on."""
        return int(self.mean.shape[0])

    def apply(self, X_raw: np.ndarray, *, inplace: bool = False) -> np.ndarray:
        """Raw pixels X_raw (N, D) or (D,), any real dtype -> preprocessed float32, same shape.

        The same operations in the same order as on the training split, so a training row given
        here again comes out bit for bit the same. inplace=True transforms a float32 array itself
        (and returns it). Raises ShapeError for rows that are not D wide, DataError when inplace
        is asked of an array that is not a writeable float32 one.
        """
        if inplace:
            _check_float32(X_raw)
            X = X_raw
        elif isinstance(X_raw, np.ndarray) or not is_array(X_raw):
            X = np.array(X_raw, dtype=np.float32)
        else:  # another module's array: a float32 copy there
            X = namespace(X_raw).astype(X_raw, namespace(X_raw).float32, copy=True)
        if X.ndim not in (1, 2) or X.shape[-1] != self.num_features:
            raise ShapeError(
                f"preprocessing got rows of shape {X.shape}; expected (N, {self.num_features}) "
                f"or ({self.num_features},)"
            )
        X /= self.scale
        X -= like(self.mean, X)
        if self.std is not None:
            X /= like(self.std, X)
        return X

    def invert(self, X: np.ndarray) -> np.ndarray:
        """Preprocessed rows X (N, D) or (D,) -> raw pixels in [0, scale], float32, a new array
        of the same shape (for showing images)."""
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
        """The inverse of ``to_arrays``; keys without ``prefix`` are ignored.

        Raises DataError when scale or mean is missing, scale is not one positive number, mean
        is not (D,), or std is not shaped like mean. The arrays are copied.
        """
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


def _check_float32(X: np.ndarray) -> None:
    """Raise DataError unless X is a writeable float32 array (in-place work needs one): NumPy's
    (with its flags), or another array module's."""
    if not isinstance(X, np.ndarray) and is_array(X):
        if X.dtype == namespace(X).float32:
            return
        raise DataError(f"in-place preprocessing got dtype {X.dtype}; expected float32")
    if not isinstance(X, np.ndarray) or X.dtype != np.float32 or not X.flags.writeable:
        raise DataError(
            f"in-place preprocessing got {type(X).__name__} "
            f"{getattr(X, 'dtype', '')}; expected a writeable float32 array"
        )


def _column_mean_of_squares(X: np.ndarray) -> np.ndarray:
    """mean(X**2, axis=0) in float64 (a NumPy array), for X (N, D), a few MB of rows at a time."""
    if not isinstance(X, np.ndarray):
        xp = namespace(X)
        total, n, rows = (
            xp.zeros(X.shape[1], dtype=xp.float64),
            X.shape[0],
            rows_per_chunk(X.shape[1]),
        )
        for start in range(0, n, rows):
            chunk = xp.astype(X[start : min(start + rows, n), ...], xp.float64)
            total += xp.sum(chunk * chunk, axis=0)
        return to_numpy(total) / max(1, X.shape[0])
    rows = rows_per_chunk(X.shape[1])
    total = np.zeros(X.shape[1], dtype=np.float64)
    for start in range(0, X.shape[0], rows):
        chunk = X[start : start + rows].astype(np.float64)
        total += np.einsum("ij,ij->j", chunk, chunk)
    return total / max(1, X.shape[0])
