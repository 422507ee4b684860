"""The real datasets on this machine: Fashion-MNIST from Debian's package and the CIFAR-10 JPEG
archive in ../shared/data. They skip when the data is missing, except under CI (then they fail).
"""

from __future__ import annotations

import gzip
import hashlib
import time
from pathlib import Path

import numpy as np
import pytest

from chainrule.data import image_decoder, load, mnist
from chainrule.data.cifar10_jpeg import find_cifar10_jpeg
from chainrule.data.image_folder import load_image_folder
from conftest import FASHION_DIR, SHARED_DATA, require

CIFAR_JPEG = SHARED_DATA / "cifar10-jpeg.tar.gz"
CIFAR_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]

pytestmark = pytest.mark.slow


def test_missing_data_skips_locally_and_fails_under_ci(monkeypatch, tmp_path):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require(tmp_path / "missing")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        require(tmp_path / "missing")


@pytest.fixture
def isolated_env(monkeypatch, tmp_path):
    for var in ("CHAINRULE_DATA", "CHAINRULE_MIRROR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path / "cache"))


def test_fashion_mnist_files_match_the_known_checksums():
    require(FASHION_DIR)
    for file in mnist.SOURCES["fashion-mnist"].files():
        data = gzip.decompress((FASHION_DIR / f"{file.name}.gz").read_bytes())
        assert hashlib.md5(data).hexdigest() == file.raw_md5


def test_fashion_mnist_from_the_debian_package(isolated_env):
    require(FASHION_DIR)
    ds = load("fashion-mnist", download=False)  # found in the Debian folder, checksums verified
    assert ds.X_train.shape == (54_000, 784) and ds.X_val.shape == (6_000, 784)
    assert ds.X_test.shape == (10_000, 784) and ds.image_shape == (28, 28)
    assert ds.classes[0] == "T-shirt/top" and len(ds.classes) == 10
    assert np.bincount(ds.y_val).tolist() == [600] * 10  # 6,000 per class, stratified
    assert np.bincount(ds.y_test).tolist() == [1_000] * 10
    assert ds.X_train.dtype == np.float32
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0.0, atol=1e-5)


@pytest.fixture(scope="session")
def cifar_jpeg_cache(tmp_path_factory) -> Path:
    """Decode the real archive once per session into a fresh cache folder; returns that folder."""
    require(CIFAR_JPEG)
    cache = tmp_path_factory.mktemp("cifar10-jpeg-cache")
    load_image_folder(find_cifar10_jpeg(SHARED_DATA, cache), cache)
    return cache


def test_cifar10_jpeg_real_archive(cifar_jpeg_cache):
    ds = load("cifar10-jpeg", SHARED_DATA, cache_dir=cifar_jpeg_cache)
    assert ds.image_shape == (32, 32, 3) and ds.classes == CIFAR_CLASSES
    assert len(ds.y_train) + len(ds.y_val) == 50_000 and len(ds.y_val) == 5_000
    assert ds.X_test.shape == (10_000, 3072) and ds.X_train.dtype == np.float32
    assert np.bincount(ds.y_test).tolist() == [1_000] * 10
    assert np.bincount(np.concatenate([ds.y_train, ds.y_val])).tolist() == [5_000] * 10


def test_cifar10_jpeg_second_load_is_cached(cifar_jpeg_cache, monkeypatch):
    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(image_decoder.ImageDecoder, "add", no_decoding)
    start = time.perf_counter()
    X_train, y_train, X_test, y_test, classes, shape = load_image_folder(
        find_cifar10_jpeg(SHARED_DATA, cifar_jpeg_cache), cifar_jpeg_cache
    )
    assert time.perf_counter() - start < 10.0  # about 0.2 s here; decoding takes about 10 s
    assert X_train.shape == (50_000, 3072) and X_train.dtype == np.uint8
    assert X_test.shape == (10_000, 3072) and shape == (32, 32, 3) and classes == CIFAR_CLASSES
    assert y_train.shape == (50_000,) and y_test.shape == (10_000,)
