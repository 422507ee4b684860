"""MNIST and Fashion-MNIST: where their IDX files are published, found locally or downloaded.

Each dataset is four gzipped IDX files (``idx`` reads them): train images (60,000 x 28 x 28),
train labels, test images (10,000 x 28 x 28) and test labels, uint8, labels 0..9.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chainrule.data.download import download
from chainrule.data.idx import IdxFile, read_idx
from chainrule.data.paths import cache_dir, describe_search, mirror_url, search_dirs
from chainrule.engine.errors import DataError, DataNotFoundError


@dataclass(frozen=True)
class IdxSource:
    """Where a dataset is published (base_url + file name + ".gz"), its four files, its class
    names (label i names class i) and folders to look in beyond the search path."""

    base_url: str
    classes: tuple[str, ...]
    train_images: IdxFile
    train_labels: IdxFile
    test_images: IdxFile
    test_labels: IdxFile
    extra_dirs: tuple[str, ...] = ()

    def files(self) -> tuple[IdxFile, IdxFile, IdxFile, IdxFile]:
        """The four files: train images, train labels, test images, test labels."""
        return (self.train_images, self.train_labels, self.test_images, self.test_labels)


# The registry: tests replace entries (monkeypatch) to serve their own small files.
# Fashion-MNIST: the URL and the .gz MD5s are those of its README (github.com/zalandoresearch/
# fashion-mnist); the raw MD5s are of the decompressed official files, which Debian's
# recompressed package decompresses to byte for byte. MNIST: PyTorch's mirror of LeCun's files
# and the .gz MD5s torchvision publishes for it (torchvision.datasets.MNIST.resources).
SOURCES: dict[str, IdxSource] = {
    "fashion-mnist": IdxSource(
        base_url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        train_images=IdxFile(
            "train-images-idx3-ubyte",
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        ),
        train_labels=IdxFile(
            "train-labels-idx1-ubyte",
            "25c81989df183df01b3e8a0aad5dffbe",
            "9018921c3c673c538a1fc5bad174d6f9",
        ),
        test_images=IdxFile(
            "t10k-images-idx3-ubyte",
            "bef4ecab320f06d8554ea6380940ec79",
            "8181f5470baa50b63fa0f6fddb340f0a",
        ),
        test_labels=IdxFile(
            "t10k-labels-idx1-ubyte",
            "bb300cfdad3c16e7a12a480ee83cd310",
            "15d484375f8d13e6eb1aabb0c3f46965",
        ),
        # Debian's dataset-fashion-mnist package (gzipped again by Debian: see the raw MD5s).
        extra_dirs=("/usr/share/datasets/fashion-mnist",),
    ),
    "mnist": IdxSource(
        base_url="https://ossci-datasets.s3.amazonaws.com/mnist/",
        classes=tuple(str(d) for d in range(10)),
        train_images=IdxFile("train-images-idx3-ubyte", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        train_labels=IdxFile("train-labels-idx1-ubyte", "d53e105ee54ea40749a09fcbcd1e9432"),
        test_images=IdxFile("t10k-images-idx3-ubyte", "9fb629c4189551a2d022fa330f9573f3"),
        test_labels=IdxFile("t10k-labels-idx1-ubyte", "ec29112dd5afa0611ce80d1b7f02629c"),
    ),
}


def _find_file(folder: Path, base: str) -> Path | None:
    """The file ``base`` or ``base.gz`` in ``folder`` (the .gz form first), or None."""
    for candidate in (folder / f"{base}.gz", folder / base):
        if candidate.is_file():
            return candidate
    return None


def locate(
    name: str, data_dir: str | Path | None, download_missing: bool, cache: str | Path | None
) -> list[Path]:
    """The paths of the four files of dataset ``name`` (in ``IdxSource.files`` order).

    The first folder of the search path (``paths.search_dirs``, then the source's extra_dirs)
    that holds all four, each as .gz or not, wins; otherwise, if download_missing, the missing
    .gz files are downloaded (checksummed) into ``<cache>/<name>/``. Raises DataNotFoundError
    naming where it looked when they are missing and download_missing is False (and the errors
    of ``download.download`` when a download fails).
    """
    source = SOURCES[name]
    bases = [f.name for f in source.files()]
    for folder in search_dirs(name, data_dir, cache, extra=source.extra_dirs):
        paths = [_find_file(folder, base) for base in bases]
        if all(p is not None for p in paths):
            return [p for p in paths if p is not None]
    if not download_missing:
        raise DataNotFoundError(
            f"{name}: files {', '.join(bases)} (.gz or not) not found in "
            f"{describe_search(name, data_dir, cache, source.extra_dirs)}; expected them there, "
            "or download=True"
        )
    target = cache_dir(cache) / name
    paths = []
    for file in source.files():
        dest = target / f"{file.name}.gz"
        if not dest.is_file():
            url = mirror_url(name, dest.name, source.base_url)
            download(url, dest, md5=file.gz_md5)
        paths.append(dest)
    return paths


def load_idx(
    name: str,
    data_dir: str | Path | None = None,
    download_missing: bool = True,
    cache: str | Path | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str], tuple[int, int]]:
    """Load ``mnist`` or ``fashion-mnist`` (a key of SOURCES) as raw pixels.

    Returns X_train (N, H*W) uint8, y_train (N,) int64, X_test (M, H*W) uint8, y_test (M,)
    int64, the class names and the image shape (H, W): N = 60,000, M = 10,000 and 28 x 28 for
    the published files. data_dir, download_missing, cache: see ``locate``. Raises
    DataNotFoundError as ``locate`` does, ChecksumError for a file that matches no known MD5,
    DataError for a corrupt file, images and labels that do not pair up, labels out of range
    or train and test images of different sizes.
    """
    source = SOURCES[name]
    paths = locate(name, data_dir, download_missing, cache)
    arrays = [read_idx(p, known) for p, known in zip(paths, source.files(), strict=True)]
    X_train, y_train = _pair(arrays[0], arrays[1], paths[0], paths[1], len(source.classes))
    X_test, y_test = _pair(arrays[2], arrays[3], paths[2], paths[3], len(source.classes))
    if X_train.shape[1:] != X_test.shape[1:]:
        raise DataError(
            f"{name}: train images are {X_train.shape[1:]} but test images {X_test.shape[1:]}; "
            "expected the same size"
        )
    image_shape = (int(X_train.shape[1]), int(X_train.shape[2]))
    return (
        X_train.reshape(len(X_train), -1),
        y_train,
        X_test.reshape(len(X_test), -1),
        y_test,
        list(source.classes),
        image_shape,
    )


def _pair(
    images: np.ndarray, labels: np.ndarray, images_path: Path, labels_path: Path, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Check that images (N, H, W) and labels (N,) belong together, with labels in
    0..n_classes-1; returns them, labels as int64. Raises DataError naming the file."""
    if images.ndim != 3:
        raise DataError(f"{images_path}: IDX images have {images.ndim} dimensions; expected 3")
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: IDX labels have {labels.ndim} dimensions; expected 1")
    if 0 in images.shape:
        raise DataError(
            f"{images_path}: IDX images of dimensions {images.shape} hold no image; expected "
            "(N, H, W) with N, H and W at least 1"
        )
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} "
            "labels; expected as many of each"
        )
    if len(labels) and int(labels.max()) >= n_classes:
        raise DataError(
            f"{labels_path}: label {int(labels.max())} is out of range; expected 0..{n_classes - 1}"
        )
    return images, labels.astype(np.int64)
