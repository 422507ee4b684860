"""The bundled 8x8 digits: shapes, scale 16, and a test split fixed once and for all."""

from __future__ import annotations

import numpy as np

from chainrule.data import load
from chainrule.data.digits import load_digits


def test_raw_digits_split_covers_every_image_once():
    X_train, y_train, X_test, y_test, classes, shape = load_digits()
    assert X_train.dtype == np.uint8 and X_train.max() == 16
    assert len(X_train) + len(X_test) == 1797 and len(X_test) == 359
    assert X_train.shape[1] == 64 and shape == (8, 8)
    assert classes == [str(d) for d in range(10)]
    # Stratified: every class has about 20 % of its images in the test split.
    share = np.bincount(y_test, minlength=10) / np.bincount(np.concatenate([y_train, y_test]))
    assert np.all(np.abs(share - 0.2) < 0.01)


def test_load_digits_default():
    ds = load()
    assert ds.name == "digits" and ds.image_shape == (8, 8)
    assert ds.X_train.shape == (1294, 64) and ds.X_val.shape == (144, 64)
    assert ds.X_test.shape == (359, 64)
    assert ds.preprocessing.scale == 16.0 and ds.preprocessing.std is None
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0.0, atol=1e-6)
    assert ds.X_train.min() >= -1.0 and ds.X_train.max() <= 1.0


def test_digits_test_split_is_the_same_for_every_seed():
    a, b = load(seed=0), load(seed=1, val_size=0.3, standardize=True)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    np.testing.assert_allclose(
        a.preprocessing.invert(a.X_test), b.preprocessing.invert(b.X_test), atol=1e-4
    )
    assert not np.array_equal(a.y_val[:50], b.y_val[:50])


def test_max_train_and_max_test_subsets():
    ds = load("digits", max_train=200, max_test=50, val_size=0.25)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (150, 50, 50)
    assert set(ds.y_train.tolist()) == set(range(10))
