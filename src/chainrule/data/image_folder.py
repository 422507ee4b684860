"""Image folders: ``[top/]train/<class>/*.png`` (or any of ``images.IMAGE_SUFFIXES``) and
``test/<class>/...``, as a folder or a .tar/.tar.gz/.tgz archive; class names are the sorted
folder names.

Every image is read by ``images.read_image``, the rule ``predict`` uses too: 16-bit, palette,
alpha, CMYK... are converted to 8-bit grey or RGB, and each kind of conversion is reported once
with a count (``image_decoder``). Files in a class folder that are not images are skipped (and
counted); hidden files are ignored. A folder needs at least two classes, the same in train/ and
test/, and no empty class folder.

The decoded uint8 arrays are cached (``image_cache``), keyed by the archive's path, size and
mtime, or by a folder's listing (names, sizes, mtimes), so a changed folder is decoded again.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
import tarfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from chainrule.data import image_cache
from chainrule.data.image_decoder import SPLITS, Arrays, ImageDecoder
from chainrule.data.images import is_image_name
from chainrule.data.paths import file_key
from chainrule.engine.errors import ChainruleError, DataError, DataNotFoundError

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")


def load_image_folder(
    root: str | Path,
    cache: str | Path | None = None,
    use_cache: bool = True,
    *,
    log: Callable[[str], None] | None = None,
    progress: bool = False,
    expected_images: int | None = None,
) -> Arrays:
    """Load an image folder or archive as raw pixels.

    Returns X_train (N, D) uint8, y_train (N,) int64, X_test (M, D) uint8, y_test (M,) int64,
    the class names and the image shape ((H, W) or (H, W, 3), in pixels), D = prod(shape); rows
    in (H, W[, C]) order, sorted by class, then file name. All images must share one size; grey
    images among colour ones become RGB.
    cache: the cache folder (``paths.cache_dir``); use_cache: read and write the decoded arrays
    there. log: gets the notes (conversions, skipped files), also when the arrays come from the
    cache. progress: say what the first, long decoding does: a line to ``log`` when it starts
    and one when it ends (with the cache's place and size), and a bar on stderr between them
    when stderr is a terminal. expected_images: the number of images in an archive, for the bar
    (a folder is counted).
    Raises DataNotFoundError for a missing root, DataError for anything wrong in it.
    """
    say = log or (lambda line: None)
    root = Path(root).expanduser()
    if root.is_dir():
        listing: _Listing | None = _list_folder(root)
        key = _folder_key(root, listing)
        expected_images = len(listing.images)
    elif root.is_file() and root.name.lower().endswith(ARCHIVE_SUFFIXES):
        listing = None
        key = file_key(root)
    elif root.exists():
        raise DataError(f"{root} is neither a folder nor a .tar/.tar.gz/.tgz archive")
    else:
        raise DataNotFoundError(f"image folder {root} does not exist; expected a folder or archive")
    cache_file = image_cache.cache_path(key, cache)
    cached = image_cache.read_cache(cache_file) if use_cache else None
    if cached is not None:
        arrays, notes = cached
    else:
        stage = say if progress else (lambda line: None)
        target = cache_file if use_cache else None
        arrays, notes = _decode(root, listing, target, expected_images, progress, stage)
    for note in notes:
        say(note)
    return arrays


def _decode(
    root: Path,
    listing: _Listing | None,
    cache_file: Path | None,
    expected_images: int | None,
    progress: bool,
    stage: Callable[[str], None],
) -> tuple[Arrays, list[str]]:
    """Decode a folder (its listing) or an archive (listing None) and cache the result in
    ``cache_file`` unless it is None; ``stage`` gets a line as decoding starts and ends."""
    count = f"{expected_images:,} images" if expected_images is not None else "the images"
    stage(
        f"decoding {count} of {root}"
        + (f" (once: they are then cached in {cache_file.parent})" if cache_file else "")
    )
    start = time.perf_counter()
    with _bar(progress, expected_images) as bar:
        decoder = ImageDecoder(str(root), bar)
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
    if cache_file is not None:
        image_cache.write_cache(cache_file, arrays, notes)
        done += f"; cached in {cache_file} ({cache_file.stat().st_size / 1e6:.0f} MB)"
    stage(done)
    return arrays, notes


def _bar(enabled: bool, total: int | None) -> Any:
    """A tqdm bar of images on stderr when enabled and stderr is a terminal, else a stand-in
    that does nothing (the log lines say what happens)."""
    if not (enabled and sys.stderr.isatty()):
        return contextlib.nullcontext(None)
    from tqdm import tqdm

    return tqdm(total=total, desc="decoding", unit="image", file=sys.stderr, leave=False)


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


def _decode_archive(archive: Path, decoder: ImageDecoder) -> Arrays:
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
        # headers (tests/test_fuzz.py feeds it such archives).
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
