"""Image folders: ``[top/]train/<class>/*.png`` (or any of ``images.IMAGE_SUFFIXES``) and
``test/<class>/...``, as a folder or a .tar/.tar.gz/.tgz archive; class names are the sorted
folder names.

Every image is read by ``images.read_image``, the rule ``predict`` uses too: 16-bit, palette,
alpha, CMYK... are converted to 8-bit grey or RGB, and each kind of conversion is reported once
with a count. Files in a class folder that are not images are skipped (and counted); hidden files
are ignored. A folder needs at least two classes, the same in train/ and test/, and no empty class
folder.

Decoding tens of thousands of small images takes seconds, so the decoded uint8 arrays are
cached in ``<cache>/image-folder/<key>.npz``, keyed by the archive's path, size and mtime (or a
folder's file listing); loading them back takes a fraction of a second. The notes are cached
with them and said again on every load.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from chainrule.data.download import check_digest, file_digest
from chainrule.data.images import IMAGE_SUFFIXES, is_image_name, read_image, to_rgb
from chainrule.data.files import atomic_path
from chainrule.data.paths import cache_dir, describe_search, file_key, search_dirs
from chainrule.engine.errors import ChainruleError, DataError, DataNotFoundError

SPLITS = ("train", "test")
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")
CACHE_VERSION = "2"  # bump when the cached arrays' layout changes: old entries are then unused


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

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str], tuple[int, ...]]


class _Split:
    """Decoded images of one split, appended as raw bytes (no list of small arrays, no
    second full-size copy when they are stacked at the end)."""

    def __init__(self) -> None:
        self.pixels = bytearray()
        self.keys: list[tuple[str, str]] = []  # (class name, file name) of each image

    def arrays(self, classes: list[str], D: int) -> tuple[np.ndarray, np.ndarray]:
        """X (n, D) uint8 and y (n,) int64, sorted by class then file name."""
        index = {name: i for i, name in enumerate(classes)}
        X = np.frombuffer(self.pixels, dtype=np.uint8).reshape(len(self.keys), D)
        y = np.array([index[cls] for cls, _ in self.keys], dtype=np.int64)
        order = np.array(sorted(range(len(self.keys)), key=self.keys.__getitem__), dtype=np.int64)
        if np.array_equal(order, np.arange(len(order))):
            return X, y  # already in order (archives usually are): no copy
        return X[order], y[order]


class _Decoder:
    """Decodes images one by one (``images.read_image``: one rule for training and predict),
    checks that all share the first one's size, and keeps count of every conversion made and
    every file skipped, for the notes. Grey images join colour ones as RGB (r = g = b)."""

    def __init__(self, source: str, bar: Any = None) -> None:
        self.source = source
        self.size: tuple[int, int] | None = None  # (H, W)
        self.colour = False
        self.first = ""  # the file that set the size, named in mismatch errors
        self.splits = {split: _Split() for split in SPLITS}
        self.class_dirs: set[tuple[str, str]] = set()  # (split, class) folders seen
        self.conversions: dict[str, list[Any]] = {}  # note -> [count, first file]
        self.grey: list[Any] = [0, ""]  # grey images made RGB: [count, first file]
        self.skipped: list[str] = []  # files in class folders that are not images
        self.bar = bar

    def add_class_dir(self, split: str, cls: str) -> None:
        self.class_dirs.add((split, cls))

    def skip(self, name: str) -> None:
        self.skipped.append(name)

    def add(self, split: str, cls: str, name: str, fp: io.IOBase | Path) -> None:
        try:
            image = read_image(fp, name)
        except ChainruleError as err:
            raise DataError(f"{self.source}: {err}") from None
        pixels = image.pixels
        size = (int(pixels.shape[0]), int(pixels.shape[1]))
        if self.size is None:
            self.size, self.first = size, name
        elif size != self.size:
            raise DataError(
                f"{self.source}: {name} is {size[0]}x{size[1]} (HxW); expected "
                f"{self.size[0]}x{self.size[1]} like {self.first} (one size for all images)"
            )
        for note in image.notes:
            self.conversions.setdefault(note, [0, name])[0] += 1
        if image.is_colour and not self.colour:
            self._make_colour()
        if self.colour and not image.is_colour:
            pixels = to_rgb(pixels)
            self.grey[0] += 1
            self.grey[1] = self.grey[1] or name
        target = self.splits[split]
        target.pixels += pixels.tobytes()
        target.keys.append((cls, PurePosixPath(name).name))
        self.class_dirs.add((split, cls))
        if self.bar is not None:
            self.bar.update(1)

    def _make_colour(self) -> None:
        """The first colour image: the grey images read so far become RGB."""
        self.colour = True
        for split in self.splits.values():
            if split.keys:
                grey = np.frombuffer(split.pixels, dtype=np.uint8)
                split.pixels = bytearray(np.repeat(grey, 3).tobytes())
                self.grey[0] += len(split.keys)
                self.grey[1] = self.grey[1] or f"{split.keys[0][0]}/{split.keys[0][1]}"

    def notes(self) -> list[str]:
        """One line per kind of conversion and for the skipped files, each with a count."""
        lines = [
            f"{self.source}: {note}: {_count(n, 'image')} (e.g. {first})"
            for note, (n, first) in self.conversions.items()
        ]
        if self.colour and self.grey[0]:
            lines.append(
                f"{self.source}: grey repeated into R, G and B to match the colour images: "
                f"{_count(self.grey[0], 'image')} (e.g. {self.grey[1]})"
            )
        if self.skipped:
            lines.append(
                f"{self.source}: skipped {_count(len(self.skipped), 'file')} that "
                f"{'is' if len(self.skipped) == 1 else 'are'} not "
                f"{'/'.join(s[1:] for s in IMAGE_SUFFIXES)} images (e.g. {self.skipped[0]})"
            )
        return lines

    def finish(self) -> Arrays:
        """The decoded splits as X_train, y_train, X_test, y_test, classes, image_shape."""
        for split in SPLITS:
            if not self.splits[split].keys:
                raise DataError(
                    f"{self.source}: no {split}/<class>/ images; expected [top/]train/<class>/ "
                    f"and test/<class>/ folders of {'/'.join(s[1:] for s in IMAGE_SUFFIXES)} "
                    "images"
                )
        with_images = {(s, c) for s in SPLITS for c, _ in self.splits[s].keys}
        empty = sorted(self.class_dirs - with_images, key=lambda d: (SPLITS.index(d[0]), d[1]))
        if empty:
            folders = ", ".join(f"{s}/{c}/" for s, c in empty)
            raise DataError(
                f"{self.source}: no images in {folders}; expected images in every class folder "
                "(add some or remove the folder)"
            )
        train = sorted({cls for cls, _ in self.splits["train"].keys})
        test = sorted({cls for cls, _ in self.splits["test"].keys})
        if train != test:
            only_train = [c for c in train if c not in test]
            only_test = [c for c in test if c not in train]
            differences = "; ".join(
                f"only in {split}/: {', '.join(map(repr, names))}"
                for split, names in (("train", only_train), ("test", only_test))
                if names
            )
            raise DataError(
                f"{self.source}: the classes of train/ and test/ differ ({differences}); "
                "expected the same class folders in both"
            )
        if len(train) < 2:
            raise DataError(
                f"{self.source}: one class ({train[0]!r}); a classifier needs at least two "
                "(one folder of images per class under train/ and test/)"
            )
        assert self.size is not None
        shape = (*self.size, 3) if self.colour else self.size
        D = int(np.prod(shape))
        X_train, y_train = self.splits["train"].arrays(train, D)
        X_test, y_test = self.splits["test"].arrays(train, D)
        return X_train, y_train, X_test, y_test, train, shape


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def _place(parts: tuple[str, ...]) -> tuple[str, str, str] | None:
    """(top, split, class) for a file ``[top/]split/class/name``; None for anything else."""
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


def _decode_archive(archive: Path, decoder: _Decoder) -> Arrays:
    """Decode an archive in one pass over its (compressed) stream: no extraction to disk."""
    tops: set[str] = set()
    try:
        with tarfile.open(archive, "r|*") as tar:  # stream mode: strictly sequential reads
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if member.isdir():
                    if len(parts) >= 2 and (placed := _place((*parts, ""))) is not None:
                        decoder.add_class_dir(placed[1], placed[2])
                    continue
                if not member.isfile() or parts[-1].startswith("."):
                    continue  # links, devices: never followed; hidden files: not data
                placed = _place(parts)
                if placed is None:
                    continue  # README.md and other files outside the class folders
                top, split, cls = placed
                _check_top(tops, top, str(archive))
                if not is_image_name(parts[-1]):
                    decoder.skip(member.name)
                    continue
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


@dataclass
class _Listing:
    """What a folder in the image-folder layout holds: (split, class, path) of each image,
    the other files of the class folders, and every class folder (split, class)."""

    images: list[tuple[str, str, Path]] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    class_dirs: list[tuple[str, str]] = field(default_factory=list)


def _list_folder(root: Path) -> _Listing:
    """The images (and the rest) under ``root`` in the image-folder layout, sorted."""
    tops = [""] if any((root / s).is_dir() for s in SPLITS) else []
    tops += [d.name for d in sorted(root.iterdir()) if d.is_dir() and (d / "train").is_dir()]
    if len(tops) != 1:
        raise DataError(
            f"{root}: found {len(tops)} candidate layouts; expected exactly one "
            "[top/]train/<class>/ and test/<class>/"
        )
    base = root / tops[0]
    listing = _Listing()
    for split in SPLITS:
        if not (base / split).is_dir():
            continue
        for cls in sorted(d for d in os.listdir(base / split) if (base / split / d).is_dir()):
            if cls.startswith("."):
                continue
            listing.class_dirs.append((split, cls))
            for name in sorted(os.listdir(base / split / cls)):
                path = base / split / cls / name
                if name.startswith(".") or not path.is_file():
                    continue
                if is_image_name(name):
                    listing.images.append((split, cls, path))
                else:
                    listing.skipped.append(path)
    return listing


def _folder_key(root: Path, listing: _Listing) -> str:
    """A hash of a folder's listing: relative paths, sizes and mtimes, and its class folders."""
    digest = hashlib.sha256(str(root.resolve()).encode())
    for path in [p for _, _, p in listing.images] + listing.skipped:
        stat = path.stat()
        digest.update(f"\0{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    for split, cls in listing.class_dirs:
        digest.update(f"\0{split}/{cls}/".encode())
    return digest.hexdigest()[:16]


def _read_cache(path: Path) -> tuple[Arrays, list[str]] | None:
    """Arrays and notes from a cache file, or None if it is missing or unreadable (then the
    images are decoded again)."""
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


def _write_cache(path: Path, arrays: Arrays, notes: list[str]) -> None:
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


def load_image_folder(
    root: str | Path,
    cache: str | Path | None = None,
    use_cache: bool = True,
    *,
    log: Callable[[str], None] | None = None,
    progress: bool = False,
    expected_images: int | None = None,
) -> Arrays:
    """Load an image folder or archive as uint8.

    Returns X_train (N, D), y_train (N,) int64, X_test (M, D), y_test (M,), the class names and
    the image shape ((H, W) or (H, W, 3)). All images must share one size; grey images among
    colour ones become RGB.
    log: gets the notes (conversions, skipped files), also when the arrays come from the cache.
    progress: say what the first, long decoding does: a line to ``log`` when it starts and
    one when it ends (with the cache's place and size), and a bar on stderr between them when
    stderr is a terminal.
    expected_images: the number of images in an archive, for the bar (a folder is counted).
    Raises DataNotFoundError for a missing root, DataError for anything wrong in it.
    """
    say = log or (lambda line: None)
    stage = say if progress else (lambda line: None)
    root = Path(root).expanduser()
    if root.is_dir():
        listing = _list_folder(root)
        key = _folder_key(root, listing)
        expected_images = len(listing.images)
    elif root.is_file() and root.name.lower().endswith(ARCHIVE_SUFFIXES):
        listing = None
        key = file_key(root)
    elif root.exists():
        raise DataError(f"{root} is neither a folder nor a .tar/.tar.gz/.tgz archive")
    else:
        raise DataNotFoundError(f"image folder {root} does not exist; expected a folder or archive")
    cache_file = cache_dir(cache) / "image-folder" / f"{key}-v{CACHE_VERSION}.npz"
    if use_cache and (cached := _read_cache(cache_file)) is not None:
        arrays, notes = cached
        for note in notes:
            say(note)
        return arrays
    count = f"{expected_images:,} images" if expected_images is not None else "the images"
    stage(
        f"decoding {count} of {root}"
        + (f" (once: they are then cached in {cache_file.parent})" if use_cache else "")
    )
    start = time.perf_counter()
    with _bar(progress, expected_images) as bar:
        decoder = _Decoder(str(root), bar)
        if listing is not None:
            for split, cls in listing.class_dirs:
                decoder.add_class_dir(split, cls)
            for path in listing.skipped:
                decoder.skip(str(path.relative_to(root)))
            for split, cls, path in listing.images:
                decoder.add(split, cls, str(path.relative_to(root)), path)
            arrays = decoder.finish()
        else:
            arrays = _decode_archive(root, decoder)
    notes = decoder.notes()
    n = len(arrays[1]) + len(arrays[3])
    done = f"decoded {n:,} images in {time.perf_counter() - start:.1f} s"
    if use_cache:
        _write_cache(cache_file, arrays, notes)
        for stale in cache_file.parent.glob(f"{key}-v*.npz"):  # the same images, older layout
            if stale != cache_file:
                stale.unlink(missing_ok=True)
        done += f"; cached in {cache_file} ({cache_file.stat().st_size / 1e6:.0f} MB)"
    stage(done)
    for note in notes:
        say(note)
    return arrays


def _bar(enabled: bool, total: int | None) -> Any:
    """A tqdm bar of images on stderr when enabled and stderr is a terminal, else a stand-in
    that does nothing (the log lines say what happens)."""
    import contextlib

    if not (enabled and sys.stderr.isatty()):
        return contextlib.nullcontext(None)
    from tqdm import tqdm

    return tqdm(total=total, desc="decoding", unit="image", file=sys.stderr, leave=False)


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
