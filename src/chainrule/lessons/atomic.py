"""Files the lessons write (figures, images, cached arrays), each replaced in one step."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from chainrule.data import files


def save_atomically(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Let ``write`` write into memory, then put those bytes at ``path`` atomically.

    write: takes a binary file object, e.g. ``lambda f: fig.savefig(f, format="png")``. Its
    output is held in memory and handed to ``files.atomic_write_bytes`` (a temporary file in
    the same folder, then a rename), so an interruption leaves the old file or the new one,
    never a torn one. Returns ``Path(path)``. Raises what ``write`` raises (then nothing is
    written) and OSError where the folder is missing or not writable.
    """
    buffer = io.BytesIO()
    write(buffer)
    files.atomic_write_bytes(path, buffer.getvalue())
    return Path(path)
