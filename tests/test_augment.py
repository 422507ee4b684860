"""Flip augmentation: a flipped preprocessed row equals the preprocessed flipped image."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.data import Preprocessing
from chainrule.engine.errors import ConfigError
from chainrule.training.augment import HorizontalFlip


@pytest.mark.parametrize("shape", [(4, 5), (4, 5, 3)])
def test_flip_in_preprocessed_space_matches_flipping_the_raw_image(shape):
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(6, *shape)).astype(np.float32)
    X_raw = raw.reshape(6, -1)
    prep = Preprocessing.fit_apply_inplace(X_raw.copy(), 255.0, standardize=True)
    X = prep.apply(X_raw)
    flip = HorizontalFlip(shape, prep.mean, prep.std)
    out = flip(X, np.random.default_rng(1))
    chosen = np.random.default_rng(1).random(6) < 0.5
    assert 0 < chosen.sum() < 6
    expected = prep.apply(raw[:, :, ::-1].reshape(6, -1))
    np.testing.assert_allclose(out[chosen], expected[chosen], atol=1e-5)
    np.testing.assert_array_equal(out[~chosen], X[~chosen])
    np.testing.assert_array_equal(X, prep.apply(X_raw))  # the input batch is left alone


def test_flip_needs_an_image_shape():
    with pytest.raises(ConfigError, match="flip needs images"):
        HorizontalFlip((64,))
