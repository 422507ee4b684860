"""The files chainrule writes: atomically, and weights as safetensors.

Every file (a checkpoint, a run's config, a download, the decoded-image cache) is written to a
temporary name in the same folder by ``atomic_path``, flushed to disk, then renamed over the old
one: a reader (or a crash, or ``kill -9``) sees the old good file or the new good file,
never a torn one. Weights are safetensors (no pickle: loading a file runs no code), marked with
chainrule's ``FORMAT`` in their metadata.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from chainrule.engine.errors import DataError, DataNotFoundError

FORMAT = "chainrule-1"


@contextlib.contextmanager
def atomic_path(dest: str | Path, *, make_parents: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``dest`` for the caller to write; on success flush it to
    disk and rename it onto ``dest``, on any error (or interruption) delete it.

    The rename is atomic on one file system, so a reader sees the old file or the whole new one,
    never a torn one. The temporary file is ``.<name>.<random>.part`` in dest's folder, with the
    permissions any new file gets (the umask applied to 0666). make_parents: create dest's
    folder first; without it a missing folder raises FileNotFoundError. Raises OSError from the
    file system (a full disk, no permission), after removing the temporary file.
    """
    dest = Path(dest)
    if make_parents:
        dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        try:
            # mkstemp makes the file private (0600); give it the mode any new file would get
            os.fchmod(fd, 0o666 & ~_umask())
        finally:
            os.close(fd)
        yield tmp
        # Flushed before the rename: after a crash the name points at whole contents.
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that the file is either the old one or the new one.

    The folder must exist (FileNotFoundError otherwise); see ``atomic_path`` for the rest.
    """
    with atomic_path(path, make_parents=False) as tmp:
        tmp.write_bytes(payload)


def atomic_write_text(path: str | Path, text: str) -> None:
    """``atomic_write_bytes`` for UTF-8 text."""
    atomic_write_bytes(path, text.encode())


def save_arrays(path: str | Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Save named arrays (any shapes and numeric dtypes, stored C-contiguous) and a JSON-able
    ``meta`` dict as one safetensors file, atomically, marked with ``FORMAT``.

    Raises TypeError for meta that JSON cannot encode, OSError when the file cannot be written.
    """
    tensors = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    metadata = {"format": FORMAT, "meta": json.dumps(meta)}
    atomic_write_bytes(path, st_save(tensors, metadata=metadata))


def load_arrays(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read what ``save_arrays`` wrote: the arrays by name (shapes and dtypes as saved) and meta.

    Raises DataNotFoundError for a missing file; DataError for one that is not safetensors, was
    not written by chainrule (another ``format``), or whose meta is not a JSON object.
    """
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


def is_chainrule_file(path: str | Path) -> bool:
    """Whether ``path`` is a safetensors file written by chainrule (reads only its header, at
    most 100 MB of it); never raises: an unreadable or foreign file is False."""
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 0 < size <= 100_000_000:
                return False
            header = json.loads(f.read(size))
        return header["__metadata__"]["format"] == FORMAT
    except (OSError, ValueError, KeyError, TypeError):
        return False
