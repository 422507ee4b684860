"""MNIST and Fashion-MNIST: IDX files, gzipped or not, found locally or downloaded.

An IDX file is a 4-byte magic (0x00 0x00, a dtype code, the number of dimensions), one big-endian
uint32 per dimension, then the values in C order. Both datasets use uint8 (code 0x08): images are
(N, 28, 28), labels (N,).

Checksums: the official MD5s are of the .gz files, but repackagers (Debian) recompress them, so a
local file is accepted when either its own MD5 or that of its decompressed bytes is a known one.
Where no MD5 of the decompressed bytes is known (MNIST), the strict IDX checks are the guard.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chainrule.data.download import check_digest, download
from chainrule.data.paths import cache_dir, describe_search, mirror_url, search_dirs
from chainrule.engine.errors import DataError, DataNotFoundError

UINT8_CODE = 0x08


@dataclass(frozen=True)
class IdxFile:
    """One file of a dataset: its name without ``.gz`` and its known MD5s (None if unknown)."""

    name: str
    gz_md5: str | None
    raw_md5: str | None = None


@dataclass(frozen=True)
class IdxSource:
    """Where a dataset is published and what its four files and classes are."""

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
        # Debian's dataset-fashion-mnist package.
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


# The IDX format's type codes (LeCun's description of the MNIST files).
IDX_TYPES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "short, 2 bytes",
    0x0C: "int, 4 bytes",
    0x0D: "float, 4 bytes",
    0x0E: "double, 8 bytes",
}


def _is_magic(head: bytes) -> bool:
    """Whether 4 bytes are an IDX magic: 00 00, a known type code, at least one dimension."""
    return head[0] == 0 and head[1] == 0 and head[2] in IDX_TYPES and head[3] >= 1


def parse_idx(data: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse the bytes of an uncompressed IDX file into a uint8 array of the stored shape.

    Strict: the magic, the dtype code (only uint8), and that the payload is exactly the product of
    the dimensions. Sizes are Python integers, so no header, however large its dimensions, can
    wrap around. Anything else raises DataError naming ``name`` and, where the bytes say so, the
    likely cause (truncated, a little-endian header, not an IDX file).
    """
    if len(data) < 4:
        raise DataError(
            f"{name}: {len(data)} bytes is too short for an IDX header (4+ bytes): truncated or "
            "not an IDX file"
        )
    head = data[:4]
    if not (head[0] == 0 and head[1] == 0 and head[3] >= 1):
        cause = (
            "its bytes reversed are one: a little-endian header (IDX is big-endian)"
            if _is_magic(head[::-1])
            else "not an IDX file"
        )
        raise DataError(
            f"{name}: bad IDX magic {head.hex()}; expected 0000 then a dtype code and ndim >= 1: "
            f"{cause}"
        )
    code, ndim = head[2], head[3]
    if code not in IDX_TYPES:
        raise DataError(
            f"{name}: IDX dtype code 0x{code:02x} is no IDX type; expected 0x08 (unsigned byte): "
            "not an IDX file"
        )
    if code != UINT8_CODE:
        raise DataError(
            f"{name}: IDX dtype code 0x{code:02x} ({IDX_TYPES[code]}); expected 0x08 (unsigned "
            "byte), the type of MNIST's images and labels"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"{name}: file ends inside the IDX header ({len(data)} bytes; {ndim} dimensions need "
            f"{header}): truncated"
        )
    fields = [data[4 + 4 * i : 8 + 4 * i] for i in range(ndim)]
    dims = tuple(int.from_bytes(f, "big") for f in fields)
    expected = math.prod(dims)  # a Python int: never wraps around, as int64 did
    payload = len(data) - header
    if payload != expected:
        swapped = tuple(int.from_bytes(f, "little") for f in fields)
        if math.prod(swapped) == payload:
            cause = (
                f"read little-endian the dimensions are {swapped}, which fit: the header is "
                "little-endian (IDX is big-endian)"
            )
        elif payload < expected:
            cause = "truncated, little-endian or not an IDX file"
        else:
            cause = f"{payload - expected} bytes too many: not an IDX file, or two run together"
        raise DataError(
            f"{name}: IDX payload is {payload} bytes; expected {expected} for dimensions {dims}: "
            f"{cause}"
        )
    try:
        return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)
    except ValueError:  # e.g. (0, 168, 3e9): no bytes, but a shape NumPy cannot even describe
        raise DataError(f"{name}: IDX dimensions {dims} describe no array NumPy can hold") from None


def read_idx(path: str | Path, known: IdxFile | None = None) -> np.ndarray:
    """Read an IDX file (gzipped or not; gzip is recognised by its magic bytes) into uint8.

    known: the file's known MD5s; when one is known for the form that can be compared, a file
    matching neither the .gz nor the decompressed MD5 raises ChecksumError.
    """
    path = Path(path)
    try:
        stored = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror}") from err
    data = stored
    if stored[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(stored)
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(
                f"{path}: corrupt gzip data ({err}); expected a valid .gz file"
            ) from err
    if known is not None:
        _check_idx_md5(path, stored, data, known)
    return parse_idx(data, str(path))


def _check_idx_md5(path: Path, stored: bytes, data: bytes, known: IdxFile) -> None:
    """Accept the file if its bytes or its decompressed bytes have a known MD5."""
    compressed = stored is not data
    if compressed and known.gz_md5 is not None:
        if hashlib.md5(stored, usedforsecurity=False).hexdigest() == known.gz_md5:
            return
    if known.raw_md5 is None:
        return  # no MD5 known for this form (a raw or recompressed MNIST file): the parse checks
    check_digest(path, "md5", known.raw_md5, hashlib.md5(data, usedforsecurity=False).hexdigest())


def _find_file(folder: Path, base: str) -> Path | None:
    """The file ``base`` or ``base.gz`` in ``folder`` (the .gz form first), or None."""
    for candidate in (folder / f"{base}.gz", folder / base):
        if candidate.is_file():
            return candidate
    return None


def locate(
    name: str,
    data_dir: str | Path | None = None,
    download_missing: bool = True,
    cache: str | Path | None = None,
) -> list[Path]:
    """The paths of the four files of dataset ``name`` (see ``IdxSource.files``).

    The first folder of the search path that holds all four wins; otherwise, if allowed, the
    missing .gz files are downloaded into ``<cache>/<name>/``.
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
    """Load ``mnist`` or ``fashion-mnist`` as uint8.

    Returns X_train (N, H*W), y_train (N,) int64, X_test (M, H*W), y_test (M,), the class names
    and the image shape (H, W).
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
    """Check that images (N, H, W) and labels (N,) belong together; labels as int64."""
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
