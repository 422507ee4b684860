"""Where datasets are looked for, and where downloads and decoded arrays are kept.

The search path, in order: the ``data_dir`` argument, ``$CHAINRULE_DATA``, then the cache folder
(``$CHAINRULE_CACHE``, else ``$XDG_CACHE_HOME/chainrule``, else ``~/.cache/chainrule``). Each is
tried as it is and with a subfolder named after the dataset (``mnist/``, ``fashion-mnist/``...).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from chainrule.engine.errors import DataNotFoundError

DATA_ENV = "CHAINRULE_DATA"
CACHE_ENV = "CHAINRULE_CACHE"
MIRROR_ENV = "CHAINRULE_MIRROR"


def cache_dir(override: str | Path | None = None) -> Path:
    """The user cache folder (not created here): ``override``, ``$CHAINRULE_CACHE``,
    ``$XDG_CACHE_HOME/chainrule`` or ``~/.cache/chainrule``, the first that is set."""
    if override is not None:
        return Path(override).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "chainrule"


def search_dirs(
    subdir: str,
    data_dir: str | Path | None = None,
    cache: str | Path | None = None,
    extra: Sequence[str | Path] = (),
) -> list[Path]:
    """The folders to look in for dataset ``subdir``, in order; only those that exist.

    data_dir, ``$CHAINRULE_DATA`` and the cache folder (``cache_dir(cache)``), each as it is and
    with ``subdir``, then the ``extra`` folders. An explicit ``data_dir`` that does not exist
    raises DataNotFoundError (most likely a typo), not a silent fall-through to the cache.
    """
    bases: list[Path] = []
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise DataNotFoundError(f"data folder {path} does not exist; expected a folder")
        bases.append(path)
    if os.environ.get(DATA_ENV):
        bases.append(Path(os.environ[DATA_ENV]).expanduser())
    bases.append(cache_dir(cache))
    found: list[Path] = []
    for base in bases:
        for folder in (base, base / subdir):
            if folder.is_dir() and folder not in found:
                found.append(folder)
    found.extend(Path(p) for p in extra if Path(p).is_dir() and Path(p) not in found)
    return found


def describe_search(
    subdir: str,
    data_dir: str | Path | None,
    cache: str | Path | None,
    extra: Sequence[str | Path] = (),
) -> str:
    """The search path as one line for error messages (whether or not the folders exist)."""
    places = []
    if data_dir is not None:
        places.append(str(data_dir))
    if os.environ.get(DATA_ENV):
        places.append(f"${DATA_ENV}={os.environ[DATA_ENV]}")
    places.append(str(cache_dir(cache)))
    text = ", ".join(places) + f" (and {subdir}/ in {'each' if len(places) > 1 else 'it'})"
    return text + "".join(f", {p}" for p in extra)


def mirror_url(dataset: str, filename: str, default_base: str) -> str:
    """The URL to download ``filename`` from: ``$CHAINRULE_MIRROR/<dataset>/<filename>`` when the
    mirror is set (the same layout as the cache, so a cache folder can be served as a mirror),
    else ``default_base + filename``."""
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        return f"{mirror.rstrip('/')}/{dataset}/{filename}"
    return default_base + filename


def file_key(path: Path) -> str:
    """A short hash (16 hex digits of SHA-256) of a file's resolved path, size and modification
    time: a cache key that changes when the file is replaced, without reading its contents.
    Raises FileNotFoundError for a missing file."""
    stat = path.stat()
    text = f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]
