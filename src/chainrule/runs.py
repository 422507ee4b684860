"""A run on disk: atomic writes, the model file, checkpoints, and the one-writer lock.

Every file is written to a temporary name in the same folder, flushed to disk, then renamed over
the old one: a reader (or a crash, or ``kill -9``) sees the old good file or the new good file,
never a torn one. Weights are safetensors (no pickle: loading a model runs no code).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from chainrule.errors import (
    ChainruleError,
    ConfigError,
    DataError,
    DataNotFoundError,
    RunLockedError,
)

if TYPE_CHECKING:
    from chainrule.data import Preprocessing
    from chainrule.nn import Module

MODEL_FILE = "model.safetensors"
CHECKPOINT_FILE = "checkpoint.safetensors"
FORMAT = "chainrule-1"


def atomic_write_bytes(path: str | Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that the file is either the old one or the new one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); give it the mode any new file would get
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def check_output_parent(path: str | Path, option: str = "--out") -> Path:
    """The rule for every path a user names for output (a file or a run folder): the folder it
    goes in must exist already. A typo must not become a tree of new folders somewhere.

    option: how the command line calls the path, for the message. Returns ``Path(path)``.
    Raises ConfigError (a usage error) naming the option, the path and the missing folder.
    """
    path = Path(path)
    parent = path.parent  # "." for a bare name: the current folder
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise ConfigError(
            f"{option} {path}: the folder {parent} {what}; expected an existing folder "
            "(create it first)"
        )
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    """``atomic_write_bytes`` for UTF-8 text."""
    atomic_write_bytes(path, text.encode())


def save_arrays(path: str | Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Save named arrays and a JSON-able ``meta`` dict as one safetensors file, atomically."""
    tensors = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    metadata = {"format": FORMAT, "meta": json.dumps(meta)}
    atomic_write_bytes(path, st_save(tensors, metadata=metadata))


def load_arrays(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read what ``save_arrays`` wrote. A missing, corrupt or foreign file is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"no such file: {path}")
    payload = path.read_bytes()
    try:
        tensors = st_load(payload)
    except (SafetensorError, ValueError, OverflowError) as e:
        raise DataError(f"{path} is not a valid safetensors file ({e})") from None
    header_size = int.from_bytes(payload[:8], "little")
    try:
        header = json.loads(payload[8 : 8 + header_size])
        metadata = header.get("__metadata__") or {}
        if metadata.get("format") != FORMAT:
            raise DataError(
                f"{path} was not written by chainrule (format {metadata.get('format')})"
            )
        meta = json.loads(metadata["meta"])
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path} has unreadable metadata ({e})") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path} has unreadable metadata (not an object)")
    return tensors, meta


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``run_dir`` while writing to it; a second writer is refused.

    An OS-level lock (flock), so it is released when the process dies, even by ``kill -9``.
    """
    import fcntl

    lock_path = Path(run_dir) / ".lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise RunLockedError(
                f"{run_dir} is being written by process {owner}; wait for it or use another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


@dataclass
class SavedModel:
    """A model read back from its file, with what predictions on new images need."""

    model: Module
    preprocessing: Preprocessing
    classes: list[str]
    image_shape: tuple[int, ...]
    meta: dict[str, Any]


def save_model(
    path: str | Path,
    model: Module,
    preprocessing: Preprocessing,
    classes: Sequence[str],
    image_shape: Sequence[int],
    extra: dict[str, Any] | None = None,
) -> None:
    """Write the weights, the preprocessing numbers and the model's config as one safetensors file.

    Tensors: ``param.<name>`` for each parameter, ``preprocessing.*`` for the fitted numbers.
    Metadata: the model config, class names, image shape, and ``extra`` (e.g. the dataset name).
    """
    arrays = {f"param.{k}": v for k, v in model.state_dict().items()}
    arrays.update(preprocessing.to_arrays())
    meta = {
        "model": model.config(),
        "classes": list(classes),
        "image_shape": list(image_shape),
        **(extra or {}),
    }
    save_arrays(path, arrays, meta)


def load_model(path: str | Path) -> SavedModel:
    """Read a model file; refuse one whose tensors and metadata disagree, naming the mismatch."""
    from chainrule.data import Preprocessing
    from chainrule.nn import build_model

    arrays, meta = load_arrays(path)
    try:
        config, classes = meta["model"], [str(c) for c in meta["classes"]]
        image_shape = tuple(int(n) for n in meta["image_shape"])
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: the model metadata lacks or garbles {e}") from None
    params = {k[len("param.") :]: v for k, v in arrays.items() if k.startswith("param.")}
    first = next(iter(params.values()), None)
    if first is None:
        raise DataError(f"{path}: the file holds no parameters")
    try:
        model = build_model(config, dtype=first.dtype)
        model.load_state_dict(params)
    except ChainruleError as e:
        raise DataError(f"{path}: the tensors do not match the model metadata: {e}") from None
    preprocessing = Preprocessing.from_arrays(arrays)
    if preprocessing.num_features != model.input_size:
        raise DataError(
            f"{path}: preprocessing is for {preprocessing.num_features} features but the model "
            f"takes {model.input_size}"
        )
    if len(classes) != model.num_classes:
        raise DataError(
            f"{path}: {len(classes)} class names for a model with {model.num_classes} outputs"
        )
    if int(np.prod(image_shape)) != model.input_size:
        raise DataError(
            f"{path}: image shape {image_shape} does not give {model.input_size} values"
        )
    for name, value in params.items():
        if not np.all(np.isfinite(value)):
            raise DataError(f"{path}: parameter {name} holds NaN or infinite values")
    return SavedModel(model, preprocessing, classes, image_shape, meta)
