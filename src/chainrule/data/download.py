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

from chainrule.data.paths import atomic_path
from chainrule.engine.errors import ChecksumError, ConfigError, DataError, DataNotFoundError

CHUNK_SIZE = 1 << 20


def file_digest(path: str | Path, algorithm: str = "md5") -> str:
    """The hex digest of a file's bytes, read in chunks (a 160 MB archive stays out of memory)."""
    hasher = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_SIZE), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def check_digest(name: str | Path, algorithm: str, expected: str, actual: str) -> None:
    """Raise ChecksumError naming the file, the expected and the actual digest if they differ."""
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
    """Download ``url`` to ``dest`` (atomically) and verify its checksum; returns ``dest``.

    Only http and https URLs. A transfer cut off before its Content-Length, a network error or a
    checksum mismatch raises (DataError, DataNotFoundError for HTTP 404, ChecksumError) and leaves
    no file behind. A progress bar shows on a terminal.
    """
    from tqdm import tqdm  # imported here: the command line starts without it

    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise ConfigError(f"cannot download {url!r}: expected an http:// or https:// URL")
    dest = Path(dest)
    expected = {"md5": md5, "sha256": sha256}
    hashers = {
        name: hashlib.new(name, usedforsecurity=False)
        for name, digest in expected.items()
        if digest is not None
    }
    try:
        with atomic_path(dest) as tmp:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                # urllib follows redirects to ftp:// too; only the web schemes are accepted.
                final = response.geturl()
                if urllib.parse.urlsplit(final).scheme not in ("http", "https"):
                    raise DataError(f"download of {url} was redirected to {final}; expected http")
                header = response.headers.get("Content-Length")
                expected_size = int(header) if header and header.isdigit() else None
                received = 0
                # disable=None: the bar shows only on a terminal, not in logs or CI output.
                with tqdm(
                    total=expected_size,
                    unit="B",
                    unit_scale=True,
                    desc=dest.name,
                    disable=None,
                    leave=False,
                ) as bar:
                    while chunk := response.read(CHUNK_SIZE):
                        out.write(chunk)
                        for hasher in hashers.values():
                            hasher.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
            # http.client returns a short body without complaint when the server closes early.
            if expected_size is not None and received != expected_size:
                raise DataError(
                    f"download of {url} was cut off: got {received} bytes, "
                    f"expected {expected_size} (Content-Length)"
                )
            for name, hasher in hashers.items():
                check_digest(dest.name, name, str(expected[name]), hasher.hexdigest())
    except urllib.error.HTTPError as err:
        error = DataNotFoundError if err.code == 404 else DataError
        raise error(f"download of {url} failed: HTTP {err.code} {err.reason}") from err
    except urllib.error.URLError as err:
        raise DataError(f"download of {url} failed: {err.reason}") from err
    except (OSError, http.client.HTTPException) as err:
        raise DataError(f"download of {url} failed: {err!r}") from err
    return dest
