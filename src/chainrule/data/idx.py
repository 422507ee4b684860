"""The IDX file format of MNIST and Fashion-MNIST: parsing, reading (gzipped or not), checksums.

An IDX file is a 4-byte magic (0x00 0x00, a type code, the number of dimensions), one big-endian
uint32 size per dimension, then the values in C order (the last index changes fastest). The
format is defined on the MNIST page, "FILE FORMATS FOR THE MNIST DATABASE"
(http://yann.lecun.com/exdb/mnist/). Both datasets use unsigned bytes (type 0x08): images are
(N, 28, 28) and labels (N,), so only that type is read here.

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

from chainrule.data.download import check_digest
from chainrule.engine.errors import DataError

UINT8_CODE = 0x08


@dataclass(frozen=True)
class IdxFile:
    """One file of a dataset: its name without ``.gz`` and its known MD5s as hex (None if
    unknown): gz_md5 of the published .gz file, raw_md5 of its decompressed bytes."""

    name: str
    gz_md5: str | None
    raw_md5: str | None = None


# The IDX format's type codes, as the MNIST page defines them.
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

    data: the whole file. Returns a read-only view of ``data``, shape (d1, ..., dn) as the
    header gives it (images (N, H, W), labels (N,)), dtype uint8. Strict: the magic, the type
    code (only 0x08, unsigned byte), and that the payload is exactly the product of the
    dimensions in bytes. Sizes are Python integers, so no header, however large its dimensions,
    can wrap around. Anything else raises DataError naming ``name`` and, where the bytes say so,
    the likely cause (truncated, a little-endian header, not an IDX file).
    """
    ndim = _check_magic(data, name)
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"{name}: file ends inside the IDX header ({len(data)} bytes; {ndim} dimensions need "
            f"{header}): truncated"
        )
    fields = [data[4 + 4 * i : 8 + 4 * i] for i in range(ndim)]
    dims = tuple(int.from_bytes(f, "big") for f in fields)
    _check_payload(len(data) - header, dims, fields, name)
    try:
        return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)
    except ValueError:  # e.g. (0, 168, 3e9): no bytes, but a shape NumPy cannot even describe
        raise DataError(f"{name}: IDX dimensions {dims} describe no array NumPy can hold") from None


def _check_magic(data: bytes, name: str) -> int:
    """The number of dimensions from a uint8 IDX magic; DataError for anything else."""
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
    code = head[2]
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
    return head[3]


def _check_payload(payload: int, dims: tuple[int, ...], fields: list[bytes], name: str) -> None:
    """DataError unless ``payload`` bytes are exactly prod(dims), with the likely cause."""
    expected = math.prod(dims)  # a Python int: never wraps around, as an int64 product would
    if payload == expected:
        return
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


def read_idx(path: str | Path, known: IdxFile | None = None) -> np.ndarray:
    """Read an IDX file (gzipped or not; gzip is recognised by its magic bytes 1f 8b).

    Returns the array as ``parse_idx`` does: uint8, shape (d1, ..., dn) from the header, e.g.
    images (N, 28, 28) or labels (N,). known: the file's known MD5s; when one is known for the
    form that can be compared, a file matching neither the .gz nor the decompressed MD5 raises
    ChecksumError. Raises DataError for an unreadable file, corrupt gzip data or bad IDX bytes.
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
