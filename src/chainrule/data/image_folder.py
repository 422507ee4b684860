"""Image folders: ``[top/]train/<class>/*.png|jpg|jpeg`` and ``test/<class>/...``, as a folder
or a .tar/.tar.gz/.tgz archive; class names are the sorted folder names. Also ``load_image``.

Decoding tens of thousands of small images takes seconds, so the decoded uint8 arrays are
cached in ``<cache>/image-folder/<key>.npz``, keyed by the archive's path, size and mtime (or a
folder's file listing); loading them back takes a fraction of a second.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from chainrule.data.download import check_digest, file_digest
from chainrule.data.paths import atomic_path, cache_dir, describe_search, file_key, search_dirs
from chainrule.errors import ChainruleError, DataError, DataNotFoundError, ShapeError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SPLITS = ("train", "test")
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")
CACHE_VERSION = "1"  # bump when the cached arrays' layout changes: old entries are then unused
MODES = {"L": 1, "RGB": 3}  # the modes accepted in a folder, with their channel counts


@dataclass(frozen=True)
class LocalArchive:
    """A named archive found in the search path, with its published SHA-256 (None: unchecked)."""

    filename: str
    sha256: str | None


# The "cifar10-jpeg" alias; module level so tests can monkeypatch it.
CIFAR10_JPEG = LocalArchive(
    filename="cifar10-jpeg.tar.gz",
    sha256="b3e0c9cb75c04ccdae8168cebf97c3b7d1db24487065278d06e254a99716b563",
)

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str], tuple[int, ...]]


def load_image(
    path: str | Path, image_shape: tuple[int, ...], pixel_max: float = 255.0
) -> np.ndarray:
    """One image file -> its raw pixels as float32 (D,), in (H, W[, C]) order, in [0, pixel_max].

    image_shape: (H, W) reads it as grayscale (mode L), (H, W, 3) as RGB; other modes are
    converted. pixel_max: 255 gives the [0, 255] scale; pass ``preprocessing.scale`` to get the
    raw units of a dataset whose pixels are not 0..255 (the digits' 0..16).
    A file of another size raises ShapeError naming both sizes.
    """
    image_shape = tuple(int(s) for s in image_shape)
    if len(image_shape) == 2 or (len(image_shape) == 3 and image_shape[2] == 1):
        mode = "L"
    elif len(image_shape) == 3 and image_shape[2] == 3:
        mode = "RGB"
    else:
        raise ShapeError(f"image_shape {image_shape} is not an image; expected (H, W) or (H, W, 3)")
    path = Path(path)
    try:
        with Image.open(path) as image:
            if (image.height, image.width) != image_shape[:2]:
                raise ShapeError(
                    f"image {path} is {image.height}x{image.width} (HxW); expected "
                    f"{image_shape[0]}x{image_shape[1]}"
                )
            pixels = np.asarray(image.convert(mode), dtype=np.float32).reshape(-1)
    except FileNotFoundError as err:
        raise DataNotFoundError(f"image {path} does not exist; expected an image file") from err
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise DataError(f"cannot decode image {path} ({err}); expected a PNG or JPEG") from err
    if pixel_max != 255.0:
        pixels *= pixel_max / 255.0
    return pixels


class _Split:
    """Decoded images of one split, appended as raw bytes (no list of small arrays, no
    second full-size copy when they are stacked at the end)."""

    def __init__(self) -> None:
        self.pixels = bytearray()
        self.keys: list[tuple[str, str]] = []  # (class name, file name) of each image

    def arrays(self, classes: list[str], D: int, source: str) -> tuple[np.ndarray, np.ndarray]:
        """X (n, D) uint8 and y (n,) int64, sorted by class then file name."""
        index = {name: i for i, name in enumerate(classes)}
        for cls, file in self.keys:
            if cls not in index:
                raise DataError(
                    f"{source}: test class {cls!r} ({file}) has no training images; expected "
                    f"one of {classes}"
                )
        X = np.frombuffer(self.pixels, dtype=np.uint8).reshape(len(self.keys), D)
        y = np.array([index[cls] for cls, _ in self.keys], dtype=np.int64)
        order = np.array(sorted(range(len(self.keys)), key=self.keys.__getitem__), dtype=np.int64)
        if np.array_equal(order, np.arange(len(order))):
            return X, y  # already in order (archives usually are): no copy
        return X[order], y[order]


class _Decoder:
    """Decodes images one by one and checks that all share the first one's size and mode."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.size: tuple[int, int] | None = None
        self.mode: str | None = None
        self.first = ""  # the file that set size and mode, named in mismatch errors
        self.splits = {split: _Split() for split in SPLITS}

    def add(self, split: str, cls: str, name: str, fp: io.IOBase | Path) -> None:
        try:
            with Image.open(fp) as image:
                image.load()
                size, mode = image.size, image.mode
                if mode not in MODES:
                    raise DataError(
                        f"{self.source}: {name} has mode {mode}; expected L (grayscale) or RGB"
                    )
                if self.size is None:
                    self.size, self.mode, self.first = size, mode, name
                elif (size, mode) != (self.size, self.mode):
                    raise DataError(
                        f"{self.source}: {name} is {size[1]}x{size[0]} {mode}; expected "
                        f"{self.size[1]}x{self.size[0]} {self.mode} like {self.first}"
                    )
                data = image.tobytes()
        except (UnidentifiedImageError, OSError, SyntaxError, zipfile.BadZipFile) as err:
            raise DataError(f"{self.source}: cannot decode {name} ({err})") from err
        target = self.splits[split]
        target.pixels += data
        target.keys.append((cls, PurePosixPath(name).name))

    def finish(self) -> Arrays:
        """The decoded splits as X_train, y_train, X_test, y_test, classes, image_shape."""
        for split in SPLITS:
            if not self.splits[split].keys:
                raise DataError(
                    f"{self.source}: no {split}/<class>/*.png|jpg|jpeg images; expected "
                    "[top/]train/<class>/ and test/<class>/ folders of images"
                )
        assert self.size is not None and self.mode is not None
        width, height = self.size
        shape = (height, width) if self.mode == "L" else (height, width, MODES[self.mode])
        D = int(np.prod(shape))
        classes = sorted({cls for cls, _ in self.splits["train"].keys})
        X_train, y_train = self.splits["train"].arrays(classes, D, self.source)
        X_test, y_test = self.splits["test"].arrays(classes, D, self.source)
        return X_train, y_train, X_test, y_test, classes, shape


def _parse(parts: tuple[str, ...]) -> tuple[str, str, str] | None:
    """(top, split, class) for ``[top/]split/class/file.png``; None for anything else."""
    if not parts[-1].lower().endswith(IMAGE_SUFFIXES) or parts[-1].startswith("."):
        return None
    if len(parts) == 3 and parts[0] in SPLITS:
        return "", parts[0], parts[1]
    if len(parts) == 4 and parts[1] in SPLITS:
        return parts[0], parts[1], parts[2]
    return None


def _check_top(tops: set[str], top: str, source: str) -> None:
    tops.add(top)
    if len(tops) > 1:
        raise DataError(
            f"{source}: images under several top folders {sorted(tops)}; expected one layout "
            "[top/]train/<class>/"
        )


def _decode_archive(archive: Path) -> Arrays:
    """Decode an archive in one pass over its (compressed) stream: no extraction to disk."""
    decoder = _Decoder(str(archive))
    tops: set[str] = set()
    try:
        with tarfile.open(archive, "r|*") as tar:  # stream mode: strictly sequential reads
            for member in tar:
                if not member.isfile():
                    continue  # folders, links, devices: never followed
                parsed = _parse(PurePosixPath(member.name).parts)
                if parsed is None:
                    continue  # README.md and other files
                top, split, cls = parsed
                _check_top(tops, top, str(archive))
                source = tar.extractfile(member)
                assert source is not None  # a regular file always has a stream
                with source:
                    decoder.add(split, cls, member.name, io.BytesIO(source.read()))
    except ChainruleError:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error, TypeError, ValueError) as err:
        # TypeError and ValueError too: CPython's tarfile raises them on some truncated gzip
        # headers (found by tests/test_fuzz.py).
        raise DataError(f"{archive}: corrupt or unreadable archive ({err!r})") from err
    return decoder.finish()


def _folder_images(root: Path) -> list[tuple[str, str, Path]]:
    """(split, class, path) of every image under ``root`` in the image-folder layout, sorted."""
    tops = [""] if any((root / s).is_dir() for s in SPLITS) else []
    tops += [d.name for d in sorted(root.iterdir()) if d.is_dir() and (d / "train").is_dir()]
    if len(tops) != 1:
        raise DataError(
            f"{root}: found {len(tops)} candidate layouts; expected exactly one "
            "[top/]train/<class>/ and test/<class>/"
        )
    base = root / tops[0]
    images = []
    for split in SPLITS:
        if not (base / split).is_dir():
            continue
        for cls in sorted(d for d in os.listdir(base / split) if (base / split / d).is_dir()):
            for name in sorted(os.listdir(base / split / cls)):
                if _parse((split, cls, name)) is not None:
                    images.append((split, cls, base / split / cls / name))
    return images


def _folder_key(root: Path, images: list[tuple[str, str, Path]]) -> str:
    """A hash of a folder's image listing: relative paths, sizes and mtimes."""
    digest = hashlib.sha256(str(root.resolve()).encode())
    for _, _, path in images:
        stat = path.stat()
        digest.update(f"\0{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _read_cache(path: Path) -> Arrays | None:
    """Arrays from a cache file, or None if it is missing or unreadable (then decode again)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            return (
                f["X_train"],
                f["y_train"],
                f["X_test"],
                f["y_test"],
                [str(c) for c in f["classes"]],
                tuple(int(s) for s in f["image_shape"]),
            )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def _write_cache(path: Path, arrays: Arrays) -> None:
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
        )


def load_image_folder(
    root: str | Path, cache: str | Path | None = None, use_cache: bool = True
) -> Arrays:
    """Load an image folder or archive as uint8.

    Returns X_train (N, D), y_train (N,) int64, X_test (M, D), y_test (M,), the class names and
    the image shape ((H, W) or (H, W, 3)). All images must share one size and mode.
    """
    root = Path(root).expanduser()
    if root.is_dir():
        images = _folder_images(root)
        key = _folder_key(root, images)
    elif root.is_file() and root.name.lower().endswith(ARCHIVE_SUFFIXES):
        images = []
        key = file_key(root)
    elif root.exists():
        raise DataError(f"{root} is neither a folder nor a .tar/.tar.gz/.tgz archive")
    else:
        raise DataNotFoundError(f"image folder {root} does not exist; expected a folder or archive")
    cache_file = cache_dir(cache) / "image-folder" / f"{key}-v{CACHE_VERSION}.npz"
    if use_cache and (arrays := _read_cache(cache_file)) is not None:
        return arrays
    if root.is_dir():
        decoder = _Decoder(str(root))
        for split, cls, path in images:
            decoder.add(split, cls, str(path.relative_to(root)), path)
        arrays = decoder.finish()
    else:
        arrays = _decode_archive(root)
    if use_cache:
        _write_cache(cache_file, arrays)
    return arrays


def find_cifar10_jpeg(data_dir: str | Path | None = None, cache: str | Path | None = None) -> Path:
    """The ``cifar10-jpeg.tar.gz`` archive from the search path, its SHA-256 verified."""
    for folder in search_dirs("cifar10-jpeg", data_dir, cache):
        path = folder / CIFAR10_JPEG.filename
        if path.is_file():
            if CIFAR10_JPEG.sha256 is not None:
                check_digest(path, "sha256", CIFAR10_JPEG.sha256, file_digest(path, "sha256"))
            return path
    raise DataNotFoundError(
        f"cifar10-jpeg: {CIFAR10_JPEG.filename} not found in "
        f"{describe_search('cifar10-jpeg', data_dir, cache)}; expected it there (it has no "
        "download)"
    )
