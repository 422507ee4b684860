"""Checksummed, atomic downloads.

The file is streamed to a temporary name in the destination folder and only renamed onto the
destination once it is complete and its checksum matches, so a loader never reads half a file.
"""

from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, BinaryIO

from chainrule.data.files import atomic_path
from chainrule.engine.errors import ChecksumError, ConfigError, DataError, DataNotFoundError

CHUNK_SIZE = 1 << 20  # bytes read, hashed and written per step
WEB_SCHEMES = ("http", "https")


def file_digest(path: str | Path, algorithm: str = "md5") -> str:
    """The hex digest of a file's bytes by ``algorithm`` (a hashlib name: md5, sha256), read in
    chunks of CHUNK_SIZE bytes, so a large archive stays out of memory. Raises OSError for a
    file that cannot be read, ValueError for an unknown algorithm."""
    hasher = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_SIZE), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def check_digest(name: str | Path, algorithm: str, expected: str, actual: str) -> None:
    """Raise ChecksumError naming the file, the expected and the actual digest if they differ
    (hex digests, compared without regard to case)."""
    if actual.lower() != expected.lower():
        raise ChecksumError(
            f"{name}: {algorithm} checksum mismatch: expected {expected.lower()}, got {actual}"
        )


def download(
    url: str,
    dest: str | Path,
    md5: str | None = None,
    sha256: str | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest`` (atomically) and verify its checksums; returns ``dest``.

    md5, sha256: the expected hex digests (each checked when given). timeout: seconds to wait on
    the connection and on each read. A progress bar in bytes shows on a terminal.
    Raises ConfigError for a URL that is not http(s); DataNotFoundError for HTTP 404; DataError
    for another HTTP or network error, a redirect away from http(s), or a transfer cut off before
    its Content-Length; ChecksumError for a digest that differs. None of them leaves a file.
    """
    if urllib.parse.urlsplit(url).scheme not in WEB_SCHEMES:
        raise ConfigError(f"cannot download {url!r}: expected an http:// or https:// URL")
    dest = Path(dest)
    expected = {n: d for n, d in (("md5", md5), ("sha256", sha256)) if d is not None}
    try:
        with atomic_path(dest) as tmp:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                digests = _copy_checked(url, response, out, list(expected), dest.name)
            for name, digest in expected.items():
                check_digest(dest.name, name, digest, digests[name])
    except urllib.error.HTTPError as err:
        error = DataNotFoundError if err.code == 404 else DataError
        raise error(f"download of {url} failed: HTTP {err.code} {err.reason}") from err
    except urllib.error.URLError as err:
        raise DataError(f"download of {url} failed: {err.reason}") from err
    except (OSError, http.client.HTTPException) as err:
        raise DataError(f"download of {url} failed: {err!r}") from err
    return dest


def _copy_checked(
    url: str, response: Any, out: BinaryIO, algorithms: list[str], label: str
) -> dict[str, str]:
    """Copy an open HTTP response to ``out`` in chunks, hashing as it goes, with a bar named
    ``label``; returns the hex digest of each algorithm. Raises DataError for a redirect away
    from http(s) or a body shorter or longer than its Content-Length."""
    from tqdm import tqdm  # imported here: the command line starts without it

    # urllib follows redirects to ftp:// too; only the web schemes are accepted.
    final = response.geturl()
    if urllib.parse.urlsplit(final).scheme not in WEB_SCHEMES:
        raise DataError(f"download of {url} was redirected to {final}; expected http")
    header = response.headers.get("Content-Length")
    expected_size = int(header) if header and header.isdigit() else None
    hashers = [hashlib.new(name, usedforsecurity=False) for name in algorithms]
    received = 0
    # disable=None: the bar shows only on a terminal, not in logs or CI output.
    with tqdm(
        total=expected_size, unit="B", unit_scale=True, desc=label, disable=None, leave=False
    ) as bar:
        while chunk := response.read(CHUNK_SIZE):
            out.write(chunk)
            for hasher in hashers:
                hasher.update(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    # http.client returns a short body without complaint when the server closes early.
    if expected_size is not None and received != expected_size:
        raise DataError(
            f"download of {url} was cut off: got {received} bytes, "
            f"expected {expected_size} (Content-Length)"
        )
    return {name: hasher.hexdigest() for name, hasher in zip(algorithms, hashers, strict=True)}
