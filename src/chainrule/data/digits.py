"""The 8x8 digits bundled with scikit-learn: 1,797 images, pixel values 0..16, no download.

They are the test set of UCI's "Optical Recognition of Handwritten Digits": 32x32 bitmaps
divided into 4x4 blocks, each pixel the count of ink in one block, hence 0..16 (scikit-learn's
``load_digits`` documentation).

The dataset has no official test split, so one is drawn once: 20 %, stratified, with a fixed
seed that does not depend on the ``seed`` of the validation split.
"""

from __future__ import annotations

import numpy as np

from chainrule.data.dataset import stratified_sample

TEST_FRACTION = 0.2
TEST_SEED = 20_240_101  # fixed forever: changing it would change every reported test accuracy
SCALE = 16.0  # the digits' pixel maximum


def load_digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str], tuple]:
    """Returns X_train (N, 64) uint8 in 0..16, y_train (N,) int64, X_test (M, 64) uint8,
    y_test (M,) int64, the class names "0".."9" and the image shape (8, 8); N = 1,438, M = 359
    (the fixed 20 % test split). Raises nothing of its own (ImportError without scikit-learn).
    """
    from sklearn.datasets import load_digits as sklearn_load_digits  # sklearn imports slowly

    bunch = sklearn_load_digits()
    X = bunch.data.astype(np.uint8)
    y = bunch.target.astype(np.int64)
    test = np.sort(
        stratified_sample(y, round(TEST_FRACTION * len(y)), np.random.default_rng(TEST_SEED))
    )
    is_test = np.zeros(len(y), dtype=bool)
    is_test[test] = True
    classes = [str(int(c)) for c in bunch.target_names]
    return X[~is_test], y[~is_test], X[is_test], y[is_test], classes, (8, 8)
