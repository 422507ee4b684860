"""The cache of decoded image folders: one uncompressed .npz of uint8 arrays per folder version.

Decoding tens of thousands of small image files is slow next to reading one array file, so
``image_folder`` keeps what it decoded in ``<cache>/image-folder/<key>-v<CACHE_VERSION>.npz``,
with the notes made on the way (said again on every load). The key names the folder's version
(``image_folder`` makes it from the archive's path, size and mtime, or a folder's listing);
``CACHE_VERSION`` names the file's layout. A file that is missing or unreadable is no error:
the images are decoded again. Files are written atomically (``files.atomic_path``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from chainrule.data.files import atomic_path
from chainrule.data.image_decoder import Arrays
from chainrule.data.paths import cache_dir

CACHE_VERSION = "2"  # bump when the cached arrays' layout changes: old entries are then unused


def cache_path(key: str, cache: str | Path | None = None) -> Path:
    """Where the arrays of the folder version ``key`` are cached (in ``paths.cache_dir(cache)``)."""
    return cache_dir(cache) / "image-folder" / f"{key}-v{CACHE_VERSION}.npz"


def read_cache(path: Path) -> tuple[Arrays, list[str]] | None:
    """The arrays (as ``image_decoder.ImageDecoder.finish`` returns them) and the notes from a
    cache file, or None if it is missing or unreadable (then the images are decoded again)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = (
                f["X_train"],
                f["y_train"],
                f["X_test"],
                f["y_test"],
                [str(c) for c in f["classes"]],
                tuple(int(s) for s in f["image_shape"]),
            )
            return arrays, [str(n) for n in f["notes"]]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def write_cache(path: Path, arrays: Arrays, notes: list[str]) -> None:
    """Save the arrays and notes to ``path`` atomically, then delete the files of the same key
    in older layouts (other ``-v`` suffixes). Raises OSError when the file cannot be written."""
    X_train, y_train, X_test, y_test, classes, shape = arrays
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        # Uncompressed: uint8 is already 4x smaller than float32, and loads at disk speed.
        np.savez(
            f,
            X_train=X_train,
            y_train=y_train,
            X_test=X_test,
            y_test=y_test,
            classes=np.array(classes, dtype=str),
            image_shape=np.array(shape, dtype=np.int64),
            notes=np.array(notes, dtype=str).reshape(-1),
        )
    key = path.name.rsplit("-v", 1)[0]
    for stale in path.parent.glob(f"{key}-v*.npz"):  # the same images, older layout
        if stale != path:
            stale.unlink(missing_ok=True)
