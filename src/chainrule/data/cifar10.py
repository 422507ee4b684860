"""CIFAR-10 in its official python-pickle form (``cifar-10-batches-py``).

The layout, as the CIFAR-10 page (https://www.cs.toronto.edu/~kriz/cifar.html) defines it: five
training batches ``data_batch_1..5`` and one ``test_batch`` of 10,000 images each, and
``batches.meta`` with the 10 ``label_names``. A batch is a pickled dict: ``data``, a 10000x3072
uint8 array whose rows hold three 32x32 planes, R then G then B, each row-major; ``labels``, a
list of 10,000 numbers in 0..9. The planes are reordered to (H, W, C), so image_shape is
(32, 32, 3).

A pickle can run any code while it loads, so the batches are read with an unpickler that knows
only the few globals these files contain (the constructors numpy pickles an array with, at any
pickle protocol, and its dtype); any other global, such as ``os.system``, is refused before it is
called.
"""

from __future__ import annotations

import codecs
import io
import pickle
import posixpath
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.data.download import check_digest, download, file_digest
from chainrule.data.paths import cache_dir, describe_search, file_key, mirror_url, search_dirs
from chainrule.engine.errors import DataError, DataNotFoundError

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
ALL_FILES = (*TRAIN_FILES, TEST_FILE, META_FILE)
IMAGE_SHAPE = (32, 32, 3)
NUM_CLASSES = 10


@dataclass(frozen=True)
class RemoteArchive:
    """A published archive: where it lives and its MD5 (None: not checked)."""

    base_url: str
    filename: str
    md5: str | None


# Module level, so tests can monkeypatch it to serve their own small archive. The MD5 is the one
# the CIFAR-10 page publishes for the python version.
ARCHIVE = RemoteArchive(
    base_url="https://www.cs.toronto.edu/~kriz/",
    filename="cifar-10-python.tar.gz",
    md5="c58f30108f718f92721af3b95e74349a",
)

# numpy pickles an array as _reconstruct(ndarray, shape, dtype) plus its state; Python 3 pickles
# at protocol 2 wrap bytes in _codecs.encode. From protocol 5 on, numpy pickles a contiguous
# array as _frombuffer(bytes, dtype, shape, order) instead, which only views bytes as an array
# (np.frombuffer refuses object dtypes). Both functions are taken from a live array, and both
# module names are allowed: a pickle names the module of the numpy that wrote it (numpy.core in
# 1.x, numpy._core in 2.x).
_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}
if _FROMBUFFER.__name__ == "_frombuffer":
    ALLOWED_GLOBALS[("numpy.core.numeric", "_frombuffer")] = _FROMBUFFER
    ALLOWED_GLOBALS[("numpy._core.numeric", "_frombuffer")] = _FROMBUFFER


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only ``ALLOWED_GLOBALS``; any other global raises DataError."""

    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file, encoding="bytes")  # the batches were pickled by Python 2
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        """The allowed global ``module.name``; DataError naming it for any other."""
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DataError(
                f"{self.source}: refused to unpickle global {module}.{name}; expected only "
                "numpy arrays in a CIFAR-10 batch"
            ) from None


def unpickle(path: Path) -> Any:
    """Load one pickle file with the RestrictedUnpickler and return what it holds.

    Any failure is a DataError naming the file: unreadable, a refused global, a corrupt pickle.
    """
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f, str(path)).load()
    except DataError:
        raise
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror}") from err
    except Exception as err:  # a corrupt pickle can raise almost anything; none is a crash
        raise DataError(f"{path}: not a valid CIFAR-10 pickle ({err!r})") from err


def _get(batch: dict, key: str, path: Path) -> Any:
    """batch[key], whether the keys are bytes (Python 2 pickles) or str."""
    for k in (key.encode(), key):
        if k in batch:
            return batch[k]
    raise DataError(f"{path}: no {key!r} entry; expected a CIFAR-10 batch dict")


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> X (n, 3072) uint8 in (H, W, C) order, y (n,) int64 in 0..9.

    Raises DataError naming the file for a pickle that is not a batch dict, data that is not
    (n, 3072) uint8, labels that are not n integers in 0..9 (and as ``unpickle`` does).
    """
    batch = unpickle(path)
    if not isinstance(batch, dict):
        raise DataError(f"{path}: unpickled a {type(batch).__name__}; expected a dict")
    data = _get(batch, "data", path)
    labels = np.asarray(_get(batch, "labels", path))
    D = int(np.prod(IMAGE_SHAPE))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise DataError(f"{path}: 'data' is not a 2-D uint8 array; expected (n, {D}) uint8")
    if data.shape[1] != D or labels.shape != (data.shape[0],):
        raise DataError(
            f"{path}: data {data.shape} with labels {labels.shape}; expected (n, {D}) and (n,)"
        )
    if labels.dtype.kind not in "iu" or (
        len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES)
    ):
        raise DataError(f"{path}: labels out of range; expected integers 0..{NUM_CLASSES - 1}")
    n = data.shape[0]
    # Planes (C, H, W) -> (H, W, C): one reordering copy per batch of 10,000 rows.
    X = np.ascontiguousarray(data.reshape(n, 3, 32, 32).transpose(0, 2, 3, 1)).reshape(n, D)
    return X, labels.astype(np.int64)


def read_meta(path: Path) -> list[str]:
    """The 10 class names from ``batches.meta`` (``label_names``), as str.

    Raises DataError naming the file for anything but a dict with a list of 10 names.
    """
    meta = unpickle(path)
    if not isinstance(meta, dict):
        raise DataError(f"{path}: unpickled a {type(meta).__name__}; expected a dict")
    names = _get(meta, "label_names", path)
    if not isinstance(names, list) or len(names) != NUM_CLASSES:
        raise DataError(f"{path}: 'label_names' is not a list of {NUM_CLASSES} names")
    return [n.decode("ascii", "replace") if isinstance(n, bytes) else str(n) for n in names]


def _is_complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in ALL_FILES)


def extract(archive: Path, cache: str | Path | None = None) -> Path:
    """Extract the batch files of ``archive`` into the cache (once per archive version); returns
    the ``cifar-10-batches-py`` folder. Verifies the archive's MD5 first when one is known
    (ChecksumError); a corrupt archive, a missing or irregular member is a DataError.

    Safe by construction: only the seven expected members are read, only as regular files, and
    each is written to a path built here from its known base name, so no member name (``../``,
    an absolute path, a link) ever decides where a file lands.
    """
    target = cache_dir(cache) / "cifar10" / f"extracted-{file_key(archive)}"
    if _is_complete(target / FOLDER):
        return target / FOLDER
    if ARCHIVE.md5 is not None:
        check_digest(archive, "md5", ARCHIVE.md5, file_digest(archive, "md5"))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=target.parent))
    try:
        (tmp / FOLDER).mkdir()
        wanted = {f"{FOLDER}/{name}": name for name in ALL_FILES}
        found: set[str] = set()
        try:
            with tarfile.open(archive, "r:*") as tar:
                for member in tar:  # one pass over the compressed stream
                    name = wanted.get(posixpath.normpath(member.name))
                    if name is None:
                        continue
                    source = tar.extractfile(member) if member.isfile() else None
                    if source is None:
                        raise DataError(f"{archive}: {member.name} is not a regular file")
                    with source, open(tmp / FOLDER / name, "wb") as out:
                        shutil.copyfileobj(source, out)
                    found.add(name)
        except (tarfile.TarError, EOFError, OSError) as err:
            raise DataError(f"{archive}: corrupt tar archive ({err})") from err
        missing = [n for n in ALL_FILES if n not in found]
        if missing:
            raise DataError(f"{archive}: no {FOLDER}/{missing[0]}; expected the official layout")
        shutil.rmtree(target, ignore_errors=True)  # a leftover from a crash, never a whole one
        try:
            tmp.rename(target)  # atomic: a reader sees all seven files or none
        except OSError as err:
            if not _is_complete(target / FOLDER):  # else another process just finished it
                raise DataError(f"cannot move extracted files to {target}: {err}") from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target / FOLDER


def locate(
    data_dir: str | Path | None = None,
    download_missing: bool = True,
    cache: str | Path | None = None,
) -> Path:
    """The folder holding the batch files: found in the search path (as a folder or as the
    official tarball, which is then extracted), else downloaded into the cache when
    download_missing. Raises DataNotFoundError naming where it looked when neither is found and
    download_missing is False, and the errors of ``download.download`` and ``extract``."""
    for folder in search_dirs("cifar10", data_dir, cache):
        for candidate in (folder / FOLDER, folder):
            if _is_complete(candidate):
                return candidate
        if (folder / ARCHIVE.filename).is_file():
            return extract(folder / ARCHIVE.filename, cache)
    if not download_missing:
        raise DataNotFoundError(
            f"cifar10: neither {FOLDER}/ nor {ARCHIVE.filename} found in "
            f"{describe_search('cifar10', data_dir, cache)}; expected one there, or download=True"
        )
    dest = cache_dir(cache) / "cifar10" / ARCHIVE.filename
    url = mirror_url("cifar10", ARCHIVE.filename, ARCHIVE.base_url)
    download(url, dest, md5=ARCHIVE.md5)
    return extract(dest, cache)


def load_cifar10(
    data_dir: str | Path | None = None,
    download_missing: bool = True,
    cache: str | Path | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str], tuple[int, int, int]]:
    """Load CIFAR-10 as raw pixels (see ``locate`` for where from).

    Returns X_train (50000, 3072) uint8 in (H, W, C) order, y_train (50000,) int64, X_test
    (10000, 3072) uint8, y_test (10000,) int64, the class names and the image shape (32, 32, 3)
    (fewer rows for smaller batch files). Raises what ``locate``, ``read_meta`` and
    ``read_batch`` raise.
    """
    folder = locate(data_dir, download_missing, cache)
    classes = read_meta(folder / META_FILE)
    parts = [read_batch(folder / name) for name in TRAIN_FILES]
    X_train = np.concatenate([X for X, _ in parts])
    y_train = np.concatenate([y for _, y in parts])
    del parts  # the batches' own copies go before the test batch is read
    X_test, y_test = read_batch(folder / TEST_FILE)
    return X_train, y_train, X_test, y_test, classes, IMAGE_SHAPE
