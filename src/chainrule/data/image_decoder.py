"""Decoding the images of an image folder into train and test arrays, with notes on the way.

``ImageDecoder`` takes the images one by one, in any order (an archive is read as it streams):
each is read by ``images.read_image`` (the rule ``predict`` uses too), checked against the first
image's size, and appended to its split. Grey images join colour ones as RGB (r = g = b). Every
kind of conversion made and every file skipped is counted for one note each.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import IO, Any

import numpy as np

from chainrule.data.images import IMAGE_SUFFIXES, read_image, to_rgb
from chainrule.engine.errors import ChainruleError, DataError

SPLITS = ("train", "test")
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


class ImageDecoder:
    """Decodes images one by one (``images.read_image``: one rule for training and predict),
    checks that all share the first one's size, and keeps count of every conversion made and
    every file skipped, for the notes. Grey images join colour ones as RGB (r = g = b).

    source: how notes and errors name the folder or archive. bar: None, or a progress bar
    (anything with ``update(n)``) that counts the images.
    """

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
        """Record a class folder ``split/cls/``, so that one left without images is named."""
        self.class_dirs.add((split, cls))

    def skip(self, name: str) -> None:
        """Count a file in a class folder that is not an image (named in the notes)."""
        self.skipped.append(name)

    def add(self, split: str, cls: str, name: str, fp: IO[bytes] | Path) -> None:
        """Decode one image (a path or a binary file object) into ``split`` as class ``cls``.

        name: its path relative to the root, for notes and errors. Raises DataError naming the
        source and the file for an image that cannot be read or whose size (H, W) in pixels
        differs from the first image's.
        """
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
        """The decoded splits: X_train (N, D) uint8, y_train (N,) int64, X_test (M, D) uint8,
        y_test (M,) int64, the sorted class names and the image shape (H, W) or (H, W, 3), with
        D = prod(image_shape) and rows sorted by class, then file name.

        Raises DataError for a split without images, a class folder without images, train/
        and test/ with different classes, or a single class.
        """
        classes = self._classes()
        assert self.size is not None
        shape = (*self.size, 3) if self.colour else self.size
        D = int(np.prod(shape))
        X_train, y_train = self.splits["train"].arrays(classes, D)
        X_test, y_test = self.splits["test"].arrays(classes, D)
        return X_train, y_train, X_test, y_test, classes, shape

    def _classes(self) -> list[str]:
        """The sorted class names, after the layout's checks (see ``finish``)."""
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
        return train


def _count(n: int, what: str) -> str:
    """``n`` with thousands separators and ``what``, plural unless n is 1: "1,200 images"."""
    return f"{n:,} {what}{'' if n == 1 else 's'}"
