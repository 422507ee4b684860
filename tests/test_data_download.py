"""Downloads against a local HTTP server on 127.0.0.1: checksums, cut-off transfers, and the
loaders fetching missing files through $CHAINRULE_MIRROR."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import pickle
import socket
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from chainrule.data import cifar10, load, mnist
from chainrule.data.download import download
from chainrule.data.idx import IdxFile
from chainrule.engine.errors import ChecksumError, ConfigError, DataError, DataNotFoundError

IDX_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


class Handler(BaseHTTPRequestHandler):
    """Serves ``server.files``; paths under /truncated/ announce the full length but send half."""

    def do_GET(self):
        self.server.requests.append(self.path)
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path.startswith("/truncated/"):
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True  # the connection drops mid-transfer
        else:
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    """A local HTTP server; yields it (``.files``: path -> bytes, ``.url``, ``.requests``)."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files, httpd.requests = {}, []
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    for var in ("CHAINRULE_DATA", "CHAINRULE_MIRROR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path / "cache"))


PAYLOAD = bytes(range(256)) * 400  # 100 KB


def test_download_verifies_and_renames(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    dest = tmp_path / "out" / "a.bin"
    got = download(
        f"{server.url}/a.bin",
        dest,
        md5=hashlib.md5(PAYLOAD).hexdigest(),
        sha256=hashlib.sha256(PAYLOAD).hexdigest().upper(),  # case does not matter
    )
    assert got == dest and dest.read_bytes() == PAYLOAD
    assert [p.name for p in dest.parent.iterdir()] == ["a.bin"]  # no temp file left


def test_checksum_mismatch_leaves_no_file(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    dest = tmp_path / "out" / "a.bin"
    actual = hashlib.md5(PAYLOAD).hexdigest()
    with pytest.raises(ChecksumError) as info:
        download(f"{server.url}/a.bin", dest, md5="0" * 32)
    assert str(info.value) == f"a.bin: md5 checksum mismatch: expected {'0' * 32}, got {actual}"
    assert list(dest.parent.iterdir()) == []


def test_a_transfer_cut_off_midway_leaves_no_file(server, tmp_path):
    server.files["/truncated/a.bin"] = PAYLOAD
    dest = tmp_path / "out" / "a.bin"
    with pytest.raises(DataError, match=r"cut off: got 51200 bytes, expected 102400"):
        download(f"{server.url}/truncated/a.bin", dest)  # even without a checksum
    assert list(dest.parent.iterdir()) == []


def test_http_errors_and_refused_connections(server, tmp_path):
    with pytest.raises(DataNotFoundError, match="HTTP 404"):
        download(f"{server.url}/missing.bin", tmp_path / "m.bin")
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match=r"download of .* failed"):
        download(f"http://127.0.0.1:{port}/a.bin", tmp_path / "a.bin", timeout=5)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a", "a.bin"])
def test_only_http_urls(url, tmp_path):
    with pytest.raises(ConfigError, match="expected an http"):
        download(url, tmp_path / "a.bin")


def idx_gz(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return gzip.compress(header + array.tobytes(), mtime=0)


def serve_mnist(server, monkeypatch, prefix: str = "", md5s: dict | None = None) -> None:
    """Put a small MNIST on the server at <mirror>/mnist/ and its MD5s in the registry."""
    rng = np.random.default_rng(0)
    arrays = [
        rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
        np.arange(30, dtype=np.uint8) % 10,
        rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        np.arange(10, dtype=np.uint8) % 10,
    ]
    files = {}
    for name, array in zip(IDX_NAMES, arrays, strict=True):
        data = idx_gz(array)
        server.files[f"/{prefix}mnist/{name}.gz"] = data
        md5 = (md5s or {}).get(name, hashlib.md5(data).hexdigest())
        files[name] = IdxFile(name, md5)
    source = mnist.SOURCES["mnist"]
    patched = dataclasses.replace(
        source,
        train_images=files[IDX_NAMES[0]],
        train_labels=files[IDX_NAMES[1]],
        test_images=files[IDX_NAMES[2]],
        test_labels=files[IDX_NAMES[3]],
    )
    monkeypatch.setitem(mnist.SOURCES, "mnist", patched)
    monkeypatch.setenv("CHAINRULE_MIRROR", f"{server.url}/{prefix}")


def test_mnist_is_downloaded_into_the_cache_once(server, monkeypatch, tmp_path):
    serve_mnist(server, monkeypatch)
    ds = load("mnist", val_size=5)
    assert ds.X_train.shape == (25, 784) and ds.X_test.shape == (10, 784)
    cached = sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir())
    assert cached == sorted(f"{n}.gz" for n in IDX_NAMES)
    assert len(server.requests) == 4
    load("mnist", download=False)
    assert len(server.requests) == 4  # the second load reads the cache


def test_mnist_download_with_a_bad_checksum_leaves_nothing_to_load(server, monkeypatch, tmp_path):
    serve_mnist(server, monkeypatch, md5s={IDX_NAMES[2]: "f" * 32})
    with pytest.raises(ChecksumError, match=r"t10k-images-idx3-ubyte\.gz"):
        load("mnist")
    cached = {p.name for p in (tmp_path / "cache" / "mnist").iterdir()}
    assert "t10k-images-idx3-ubyte.gz" not in cached and not any(".part" in n for n in cached)
    with pytest.raises(DataNotFoundError):
        load("mnist", download=False)


def test_mnist_download_cut_off_leaves_nothing_to_load(server, monkeypatch, tmp_path):
    serve_mnist(server, monkeypatch, prefix="truncated/")
    with pytest.raises(DataError, match="cut off"):
        load("mnist")
    assert not list((tmp_path / "cache").rglob("*.gz"))
    with pytest.raises(DataNotFoundError):
        load("mnist", download=False)


def cifar_tarball() -> bytes:
    """A tiny cifar-10-python.tar.gz in the official layout (4 images per batch)."""
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in cifar10.ALL_FILES:
            if name == "batches.meta":
                content = {b"label_names": [f"class{i}".encode() for i in range(10)]}
            else:
                content = {
                    b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                    b"labels": [0, 1, 2, 3],
                }
            data = pickle.dumps(content, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_cifar10_is_downloaded_verified_and_extracted(server, monkeypatch, tmp_path):
    archive = cifar_tarball()
    server.files["/cifar10/cifar-10-python.tar.gz"] = archive
    md5 = hashlib.md5(archive).hexdigest()
    monkeypatch.setattr(
        cifar10, "ARCHIVE", cifar10.RemoteArchive("http://unused/", "cifar-10-python.tar.gz", md5)
    )
    monkeypatch.setenv("CHAINRULE_MIRROR", server.url)
    ds = load("cifar10", val_size=4)
    assert ds.X_train.shape == (16, 3072) and ds.classes[9] == "class9"
    assert Path(tmp_path / "cache" / "cifar10" / "cifar-10-python.tar.gz").is_file()
    load("cifar10", download=False)
    assert len(server.requests) == 1
