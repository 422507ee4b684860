"""Hand-designed features, the pre-2012 way: HOG for shape, a hue histogram for colour.

Before nets learned their own features, a fixed recipe turned each image into a vector and a
linear classifier was trained on that. Two classic recipes, as in CS231n's feature exercise:

- HOG (histogram of oriented gradients, Dalal & Triggs 2005): the grayscale image is cut into a
  4 x 4 grid of cells (8 x 8 pixels for a 32 x 32 image), each cell votes its gradient directions
  into 9 orientation bins, and overlapping 2 x 2 blocks of cells are normalized (L2-Hys), which
  makes the descriptor insensitive to lighting. 3 x 3 blocks x 4 cells x 9 bins = 324 numbers.
- A hue histogram: each pixel's hue (in HSV space) in 10 bins, each vote weighted by the pixel's
  saturation, so grey pixels (whose hue means nothing) do not vote. 10 numbers per image.

Images are (N, H, W) grayscale or (N, H, W, 3) colour, floats in [0, 1].
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from chainrule.engine.errors import ConfigError, ShapeError

HOG_ORIENTATIONS = 9
HOG_CELLS = 4  # cells per side, whatever the image size
HOG_BLOCK = 2  # cells per block side
HUE_BINS = 10
CHUNK = 2048  # images converted to HSV at a time: bounded temporaries for 60,000 images


def install_hint(distribution: str, extra: str) -> str:
    """The command that installs ``distribution`` (as chainrule's ``extra`` requires it) into
    the running interpreter's environment: its own pip, not whichever ``pip`` is on the PATH."""
    from importlib import metadata

    spec = distribution
    try:
        for requirement in metadata.requires("chainrule") or []:
            name, _, marker = requirement.partition(";")
            if name.strip().startswith(distribution) and f'extra == "{extra}"' in marker:
                spec = name.strip()
    except metadata.PackageNotFoundError:  # run from a source tree without installing
        pass
    return f"{shlex.quote(sys.executable)} -m pip install {shlex.quote(spec)}"


def _skimage_hog() -> Callable[..., np.ndarray]:
    try:
        from skimage.feature import hog
    except ImportError:
        raise ConfigError(
            "HOG features need scikit-image, which is not installed: "
            f"{install_hint('scikit-image', 'features')} (in a checkout, ./dev run installs it)"
        ) from None
    return hog


def _check_images(images: np.ndarray) -> None:
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] != 3):
        raise ShapeError(
            f"expected images (N, H, W) or (N, H, W, 3), got an array of shape {images.shape}"
        )


def grayscale(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) colour -> (N, H, W) luminance (ITU-R BT.709 weights, as scikit-image's
    rgb2gray); grayscale (N, H, W) passes through. Raises ShapeError for any other shape."""
    _check_images(images)
    if images.ndim == 3:
        return images
    return images @ np.array([0.2125, 0.7154, 0.0721], dtype=images.dtype)


def hog_cell_size(image_shape: tuple[int, ...]) -> tuple[int, int]:
    """Pixels per HOG cell (rows, columns) for images of (H, W[, C]): a HOG_CELLS x HOG_CELLS
    grid of cells. Raises ShapeError for images under 2 * HOG_CELLS pixels a side."""
    h, w = image_shape[:2]
    if min(h, w) < 2 * HOG_CELLS:
        raise ShapeError(f"HOG needs images of at least {2 * HOG_CELLS} pixels a side, got {h}x{w}")
    return h // HOG_CELLS, w // HOG_CELLS


def hog_one(gray: np.ndarray) -> np.ndarray:
    """HOG of one grayscale image (H, W) -> (F,) float64, F = 324 for the default settings.

    Raises ConfigError (with the install command) without scikit-image, ShapeError for an
    image too small for the cells."""
    return _skimage_hog()(
        gray,
        orientations=HOG_ORIENTATIONS,
        pixels_per_cell=hog_cell_size(gray.shape),
        cells_per_block=(HOG_BLOCK, HOG_BLOCK),
        block_norm="L2-Hys",
        feature_vector=True,
    )


def hog_features(images: np.ndarray) -> np.ndarray:
    """HOG of each image's grayscale version: images (N, H, W[, 3]) in [0, 1] -> (N, F) float32.

    scikit-image computes one image per call, so this is a loop over the images (the feature
    extraction's cost: ``compare`` runs it in worker processes). Raises as ``grayscale`` and
    ``hog_one`` do.
    """
    gray = grayscale(images)
    if len(gray) == 0:
        return np.zeros((0, len(hog_one(np.zeros(gray.shape[1:])))), dtype=np.float32)
    first = hog_one(gray[0])
    out = np.empty((len(gray), len(first)), dtype=np.float32)
    out[0] = first
    for i in range(1, len(gray)):
        out[i] = hog_one(gray[i])
    return out


def hue_saturation(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hue and saturation of HSV space: rgb (..., 3) in [0, 1] -> (hue, sat), each (...), in [0, 1].

    The textbook formulas: hue is the angle on the colour hexagon, in sixths of a turn measured
    from the largest channel (red 0, green 1/3, blue 2/3); saturation is (max - min) / max. A grey
    pixel gets hue 0 and saturation 0. Ties go to red, then green, as in scikit-image.
    """
    # One copy to channel-first makes r, g, b contiguous: the element-wise work below then runs
    # on unit-stride arrays instead of views striding over the last axis.
    r, g, b = np.moveaxis(np.asarray(rgb), -1, 0).copy()
    high = np.maximum(np.maximum(r, g), b)
    delta = high - np.minimum(np.minimum(r, g), b)
    grey = delta == 0
    delta[grey] = 1  # any non-zero divisor: grey pixels are reset below
    hue = r - g
    hue /= delta
    hue += 4  # blue is the largest, unless overwritten below
    is_g = high == g
    hue[is_g] = (b - r)[is_g] / delta[is_g] + 2
    is_r = high == r
    hue[is_r] = (g - b)[is_r] / delta[is_r]
    hue /= 6
    hue %= 1.0
    hue[grey] = 0
    delta[grey] = 0
    high[high == 0] = 1
    return hue, delta / high


def hue_histogram(images: np.ndarray, bins: int = HUE_BINS) -> np.ndarray:
    """Saturation-weighted hue histogram: images (N, H, W, 3) in [0, 1] -> (N, bins) float32.

    Each pixel adds its saturation to the bin of its hue; the sum is divided by the number of
    pixels, so a fully saturated image sums to 1 and a grey one to 0. Vectorized over the batch:
    one bincount for all images, with each image's bins offset by ``bins * image_index``.
    Raises ShapeError for grayscale images, ConfigError for bins < 1.
    """
    _check_images(images)
    if images.ndim != 4:
        raise ShapeError(f"a hue histogram needs colour images (N, H, W, 3), got {images.shape}")
    if bins < 1:
        raise ConfigError(f"the hue histogram needs at least one bin, got {bins}")
    n, h, w, _ = images.shape
    out = np.empty((n, bins), dtype=np.float32)
    for start in range(0, n, CHUNK):
        hue, sat = hue_saturation(images[start : start + CHUNK])
        m = len(hue)
        # (hue % 1 can round up to exactly 1.0 in float32, hence the clip to the last bin)
        bin_of = np.minimum((hue * bins).astype(np.int64), bins - 1)
        bin_of += (np.arange(m) * bins)[:, None, None]
        counts = np.bincount(bin_of.ravel(), weights=sat.ravel(), minlength=m * bins)
        out[start : start + m] = counts.reshape(m, bins) / (h * w)
    return out


@dataclass
class Features:
    """Feature rows and how they were made. X: (N, F) float32; parts: block name -> its number
    of columns, in column order; seconds: the extraction's wall time."""

    X: np.ndarray
    parts: dict[str, int]  # block name -> number of columns, in column order
    seconds: float


def extract(images: np.ndarray) -> Features:
    """HOG, plus the hue histogram for colour images: (N, H, W[, 3]) in [0, 1] -> Features
    (X (N, 324) for grayscale, (N, 334) for colour, with the default settings). Raises as
    ``hog_features`` does."""
    start = time.perf_counter()
    blocks = {"hog": hog_features(images)}
    if images.ndim == 4:
        blocks["hue"] = hue_histogram(images)
    X = np.concatenate(list(blocks.values()), axis=1)
    parts = {name: block.shape[1] for name, block in blocks.items()}
    return Features(X, parts, time.perf_counter() - start)


def standardize(X_train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Centre and scale every column with the training rows' mean and std (train only: the
    test set must not leak into the preprocessing). Constant columns are only centred.

    X_train: (N, F); others: (M, F) each. Returns float32 copies (X_train, [others...]).
    """
    mean = X_train.mean(axis=0, dtype=np.float64)
    std = X_train.std(axis=0, dtype=np.float64)
    std[std < 1e-8] = 1.0

    def apply(X: np.ndarray) -> np.ndarray:
        return ((X - mean) / std).astype(np.float32)

    return apply(X_train), [apply(X) for X in others]
