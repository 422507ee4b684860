"""Hand-designed features: HOG against scikit-image, the hue histogram on known colours."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2gray, rgb2hsv
from skimage.feature import hog

from chainrule.engine.errors import ShapeError
from chainrule.lessons import features


def known_image(size: int = 32) -> np.ndarray:
    """A disc on a gradient: edges in every direction. (size, size) in [0, 1]."""
    yy, xx = np.mgrid[:size, :size] / (size - 1)
    disc = (xx - 0.5) ** 2 + (yy - 0.4) ** 2 < 0.1
    return np.clip(0.3 * xx + 0.5 * disc + 0.1 * np.sin(8 * yy), 0, 1)


def test_hog_is_scikit_image_hog_with_the_documented_settings():
    image = known_image()
    expected = hog(
        image,
        orientations=9,
        pixels_per_cell=(8, 8),
        cells_per_block=(2, 2),
        block_norm="L2-Hys",
        feature_vector=True,
    )
    got = features.hog_features(image[None])
    assert got.shape == (1, 324) and got.dtype == np.float32
    np.testing.assert_allclose(got[0], expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("size", "cell"), [(8, 2), (28, 7), (32, 8)])
def test_hog_cuts_every_image_into_4x4_cells(size, cell):
    assert features.hog_cell_size((size, size)) == (cell, cell)
    assert features.hog_features(np.zeros((2, size, size))).shape == (2, 324)


def test_hog_of_a_colour_image_is_hog_of_its_grayscale():
    rng = np.random.default_rng(0)
    rgb = rng.random((3, 16, 16, 3))
    got = features.hog_features(rgb)
    for i in range(3):
        np.testing.assert_allclose(got[i], features.hog_one(rgb2gray(rgb[i])), atol=1e-6)


def test_hue_and_saturation_agree_with_scikit_image():
    rng = np.random.default_rng(0)
    rgb = rng.random((4, 8, 8, 3)).astype(np.float32)
    rgb[0] = 0.5  # grey
    rgb[1, ..., 1] = rgb[1, ..., 0]  # ties between red and green
    hue, sat = features.hue_saturation(rgb)
    hsv = rgb2hsv(rgb)
    np.testing.assert_allclose(hue, hsv[..., 0], atol=1e-6)
    np.testing.assert_allclose(sat, hsv[..., 1], atol=1e-6)


@pytest.mark.parametrize(
    ("colour", "bin_", "mass"),
    [
        ((1.0, 0.0, 0.0), 0, 1.0),  # red: hue 0
        ((0.0, 1.0, 0.0), 3, 1.0),  # green: hue 1/3 -> bin floor(3.33)
        ((0.0, 0.0, 1.0), 6, 1.0),  # blue: hue 2/3 -> bin 6
        ((0.5, 0.5, 1.0), 6, 0.5),  # pale blue: saturation 0.5
        ((1.0, 1.0, 0.0), 1, 1.0),  # yellow: hue 1/6 -> bin 1
    ],
)
def test_hue_histogram_of_a_constant_colour_image(colour, bin_, mass):
    image = np.broadcast_to(np.array(colour, np.float32), (1, 12, 10, 3))
    hist = features.hue_histogram(image)
    expected = np.zeros((1, 10), np.float32)
    expected[0, bin_] = mass
    np.testing.assert_allclose(hist, expected, atol=1e-6)


def test_grey_pixels_do_not_vote():
    grey = np.full((2, 8, 8, 3), 0.4, np.float32)
    assert not features.hue_histogram(grey).any()


def test_hue_histogram_is_vectorized_per_image():
    rng = np.random.default_rng(1)
    images = rng.random((5, 6, 6, 3))
    batch = features.hue_histogram(images, bins=7)
    one_by_one = np.concatenate([features.hue_histogram(im[None], bins=7) for im in images])
    np.testing.assert_allclose(batch, one_by_one, atol=1e-6)
    hue, sat = features.hue_saturation(images[2])
    by_hand = np.bincount(np.minimum((hue * 7).astype(int), 6).ravel(), sat.ravel(), 7) / 36
    np.testing.assert_allclose(batch[2], by_hand, atol=1e-6)


def test_extract_colour_and_grayscale():
    rng = np.random.default_rng(0)
    colour = features.extract(rng.random((3, 32, 32, 3)))
    assert colour.X.shape == (3, 334) and colour.parts == {"hog": 324, "hue": 10}
    gray = features.extract(rng.random((3, 8, 8)))
    assert gray.X.shape == (3, 324) and gray.parts == {"hog": 324}


def test_standardize_uses_training_numbers_only():
    rng = np.random.default_rng(0)
    train = rng.normal(5, 3, (200, 4)).astype(np.float32)
    train[:, 3] = 7.0  # a constant column
    test = rng.normal(5, 3, (50, 4)).astype(np.float32)
    s_train, (s_test,) = features.standardize(train, test)
    np.testing.assert_allclose(s_train[:, :3].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(s_train[:, :3].std(axis=0), 1, atol=1e-5)
    assert np.all(s_train[:, 3] == 0) and np.isfinite(s_test).all()
    mean, std = train.mean(axis=0), train.std(axis=0)
    np.testing.assert_allclose(s_test[:, 0], (test[:, 0] - mean[0]) / std[0], rtol=1e-5)


@pytest.mark.parametrize("shape", [(32, 32), (2, 32, 32, 4), (2, 3, 3)])
def test_bad_shapes_are_named(shape):
    with pytest.raises(ShapeError):
        features.hog_features(np.zeros(shape))


def test_hue_histogram_needs_colour():
    with pytest.raises(ShapeError, match="colour"):
        features.hue_histogram(np.zeros((2, 8, 8)))


def test_without_scikit_image_the_hint_names_this_interpreters_pip(monkeypatch):
    import shlex
    import sys

    from chainrule.engine.errors import ConfigError

    monkeypatch.setitem(sys.modules, "skimage.feature", None)  # as if not installed
    with pytest.raises(ConfigError) as info:
        features.hog_one(np.zeros((8, 8)))
    message = str(info.value)
    # the version as chainrule's features extra requires it (read from the installed metadata)
    assert f"{shlex.quote(sys.executable)} -m pip install 'scikit-image>=" in message
    assert message.startswith("HOG features need scikit-image, which is not installed: ")
