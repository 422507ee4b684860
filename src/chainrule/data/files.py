"""The files chainrule writes: atomically, and weights as safetensors.

Every file is written to a temporary name in the same folder, flushed to disk, then renamed over
the old one: a reader (or a crash, or ``kill -9``) sees the old good file or the new good file,
never a torn one. Weights are safetensors (no pickle: loading a file runs no code), marked with
chainrule's ``FORMAT`` in their metadata.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from chainrule.engine.errors import DataError, DataNotFoundError

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


def is_chainrule_file(path: str | Path) -> bool:
    """Whether ``path`` is a safetensors file written by chainrule (reads only its header)."""
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 0 < size <= 100_000_000:
                return False
            header = json.loads(f.read(size))
        return header["__metadata__"]["format"] == FORMAT
    except (OSError, ValueError, KeyError, TypeError):
        return False
