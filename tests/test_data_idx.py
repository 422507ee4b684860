"""IDX files (MNIST, Fashion-MNIST): strict parsing, checksums, and the search path."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from chainrule.data import load, mnist
from chainrule.data.idx import IdxFile, parse_idx, read_idx
from chainrule.data.mnist import load_idx
from chainrule.engine.errors import ChecksumError, DataError

NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    for var in ("CHAINRULE_DATA", "CHAINRULE_MIRROR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path / "cache"))


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    """An IDX file: magic 00 00 <code> <ndim>, big-endian uint32 dims, then the values."""
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_idx_set(folder: Path, gz: bool = True, n_train: int = 40, n_test: int = 20) -> dict:
    """Write the four files of a small 28x28 IDX dataset; returns the arrays written."""
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": np.arange(n_train, dtype=np.uint8) % 10,
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": np.arange(n_test, dtype=np.uint8) % 10,
    }
    folder.mkdir(parents=True, exist_ok=True)
    for role, array in arrays.items():
        write_file(folder, NAMES[role], idx_bytes(array), gz)
    return arrays


def write_file(folder: Path, base: str, data: bytes, gz: bool = True) -> Path:
    path = folder / (f"{base}.gz" if gz else base)
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_from_data_dir(tmp_path, gz):
    arrays = write_idx_set(tmp_path / "d", gz=gz)
    ds = load("mnist", data_dir=tmp_path / "d", download=False, val_size=10)
    assert ds.image_shape == (28, 28) and ds.classes == [str(d) for d in range(10)]
    assert ds.X_train.shape == (30, 784) and ds.X_val.shape == (10, 784)
    assert ds.X_test.shape == (20, 784) and ds.preprocessing.scale == 255.0
    raw_test = ds.preprocessing.invert(ds.X_test)
    np.testing.assert_allclose(raw_test, arrays["test_images"].reshape(20, 784), atol=1e-3)
    np.testing.assert_array_equal(ds.y_test, arrays["test_labels"])


def test_files_are_found_in_a_dataset_subfolder_of_chainrule_data(tmp_path, monkeypatch):
    write_idx_set(tmp_path / "shared" / "mnist")
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "shared"))
    X_train, y_train, *_, shape = load_idx("mnist", download_missing=False)
    assert X_train.shape == (40, 784) and y_train.dtype == np.int64 and shape == (28, 28)


def test_a_folder_missing_one_file_is_skipped(tmp_path, monkeypatch):
    write_idx_set(tmp_path / "partial")
    (tmp_path / "partial" / "t10k-labels-idx1-ubyte.gz").unlink()
    write_idx_set(tmp_path / "cache" / "mnist", n_train=50)
    X_train, *_ = load_idx("mnist", data_dir=tmp_path / "partial", download_missing=False)
    assert len(X_train) == 50  # from the complete set in the cache


def test_parse_idx_reads_shape_and_values():
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(parse_idx(idx_bytes(array)), array)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "bad IDX magic"),
        (b"\x00\x00\x08\x00", "bad IDX magic"),
        (b"\x00\x00\x0d\x01\x00\x00\x00\x01\x05\x00\x00\x00", "dtype code 0x0d"),
        (b"\x00\x00\x08\x02\x00\x00\x00\x01", "inside the IDX header"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x03\x05\x06", "payload is 2 bytes; expected 3"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x01\x05\x06", "payload is 2 bytes; expected 1"),
    ],
)
def test_parse_idx_rejects_corrupt_headers(data, match):
    with pytest.raises(DataError, match=match):
        parse_idx(data, "x.idx")


def test_corrupt_idx_file_in_a_dataset_is_named(tmp_path):
    write_idx_set(tmp_path)
    bad = idx_bytes(np.zeros((40, 28, 28), dtype=np.uint8))[:-5]  # payload 5 bytes short
    path = write_file(tmp_path, NAMES["train_images"], bad)
    with pytest.raises(DataError, match=f"{path}.*payload"):
        load("mnist", data_dir=tmp_path, download=False)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_gzip_is_a_data_error(tmp_path, damage):
    data = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8) % 10), mtime=0)
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:  # flipped bytes in the deflate stream, or a CRC mismatch at the end
        data = data[:12] + bytes(b ^ 0xFF for b in data[12:20]) + data[20:]
    path = tmp_path / "labels.gz"
    path.write_bytes(data)
    with pytest.raises(DataError, match="corrupt gzip"):
        read_idx(path)


def test_labels_out_of_range(tmp_path):
    write_idx_set(tmp_path)
    write_file(tmp_path, NAMES["test_labels"], idx_bytes(np.full(20, 10, dtype=np.uint8)))
    with pytest.raises(DataError, match=r"label 10 is out of range; expected 0\.\.9"):
        load("mnist", data_dir=tmp_path, download=False)


def test_image_and_label_counts_must_agree(tmp_path):
    write_idx_set(tmp_path)
    write_file(tmp_path, NAMES["train_labels"], idx_bytes(np.zeros(39, dtype=np.uint8)))
    with pytest.raises(DataError, match=r"40 images but .* 39 labels"):
        load("mnist", data_dir=tmp_path, download=False)


def test_images_must_be_three_dimensional(tmp_path):
    write_idx_set(tmp_path)
    write_file(tmp_path, NAMES["train_images"], idx_bytes(np.zeros((40, 784), dtype=np.uint8)))
    with pytest.raises(DataError, match="2 dimensions; expected 3"):
        load("mnist", data_dir=tmp_path, download=False)


def test_fashion_mnist_files_with_unknown_checksums_are_refused(tmp_path):
    write_idx_set(tmp_path)
    with pytest.raises(ChecksumError) as info:
        load("fashion-mnist", data_dir=tmp_path, download=False)
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message
    assert "expected f4a8712d7a061bf5bd6d2ca38dc4d50a" in message  # the decompressed MD5


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.mark.parametrize("which", ["gz", "raw"])
def test_either_known_md5_is_accepted(tmp_path, monkeypatch, which):
    """A file matches by its .gz MD5 (as published) or by its decompressed MD5 (recompressed)."""
    arrays = write_idx_set(tmp_path)
    source = mnist.SOURCES["fashion-mnist"]
    files = {}
    for role, array in arrays.items():
        raw = idx_bytes(array)
        stored = (tmp_path / f"{NAMES[role]}.gz").read_bytes()
        if which == "gz":
            files[role] = IdxFile(NAMES[role], md5(stored), "0" * 32)
        else:
            files[role] = IdxFile(NAMES[role], "0" * 32, md5(raw))
    patched = dataclasses.replace(source, extra_dirs=(), **files)
    monkeypatch.setitem(mnist.SOURCES, "fashion-mnist", patched)
    ds = load("fashion-mnist", data_dir=tmp_path, download=False)
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"
    assert ds.X_test.shape == (20, 784)


def test_a_header_whose_shape_numpy_cannot_hold_is_refused():
    # Found by the fuzzer: a zero dimension makes the empty payload "complete", but the other
    # dimensions multiply past what an array may describe.
    data = b"\x00\x00\x08\x03\x00\x00\x00\x00\xa8\x00\x00\x00\xc3\x0c1\x00"
    with pytest.raises(DataError, match=r"bad.idx: IDX dimensions \(0, 2818572288, 3272356096\)"):
        parse_idx(data, "bad.idx")


def little_endian_idx(array: np.ndarray) -> bytes:
    """An IDX file with its dimensions written little-endian (its magic bytes as they should be)."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype="<u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize("shape", [(60000, 28, 28), (40, 28, 28), (10000,), (3, 5)])
def test_a_little_endian_header_is_named_not_a_wrapped_size(shape):
    # (60000, 28, 28) read big-endian is (1625948160, 469762048, 469762048): 3.6e26 bytes, which
    # wrapped around in int64 to "expected 0 bytes"
    array = np.zeros(shape, np.uint8)
    dims = tuple(int.from_bytes(int(d).to_bytes(4, "little"), "big") for d in shape)
    with pytest.raises(DataError) as info:
        parse_idx(little_endian_idx(array), "x.idx")
    message = str(info.value)
    assert f"expected {np.prod(dims, dtype=object)} for dimensions {dims}" in message
    assert f"read little-endian the dimensions are {shape}, which fit" in message
    assert "the header is little-endian" in message and "\n" not in message


@pytest.mark.parametrize(
    ("data", "match"),
    [
        # dimensions that multiply past int64 (and past any file), truncated data
        (
            b"\x00\x00\x08\x03" + b"\xff\xff\xff\xff" * 3 + b"\x01\x02",
            r"payload is 2 bytes; expected 79228162458924105385300197375 for dimensions "
            r"\(4294967295, 4294967295, 4294967295\): truncated, little-endian or not an IDX",
        ),
        (
            b"\x00\x00\x08\x02\x00\x00\x00\x03\x00\x00\x00\x04" + b"\x00" * 11,
            r"payload is 11 bytes; expected 12 for dimensions \(3, 4\): truncated",
        ),
        (
            b"\x00\x00\x08\x01\x00\x00\x00\x02" + b"\x00" * 5,
            r"payload is 5 bytes; expected 2 for dimensions \(2,\): 3 bytes too many",
        ),
        # a little-endian magic (written as the int 2051), a text file, an empty file
        (b"\x03\x08\x00\x00" + b"\x00" * 8, r"bad IDX magic 03080000.*a little-endian header"),
        (b"hello, world", r"bad IDX magic 68656c6c.*not an IDX file"),
        (b"", r"0 bytes is too short for an IDX header \(4\+ bytes\): truncated or not an IDX"),
        # zero dimensions (ndim 0), wrong and unknown type codes
        (b"\x00\x00\x08\x00", "bad IDX magic 00000800"),
        (b"\x00\x00\x0e\x01\x00\x00\x00\x01" + b"\x00" * 8, r"0x0e \(double, 8 bytes\); expected"),
        (b"\x00\x00\x09\x01\x00\x00\x00\x01\x05", r"0x09 \(signed byte\); expected 0x08"),
        (b"\x00\x00\x42\x01\x00\x00\x00\x01\x05", r"0x42 is no IDX type.*not an IDX file"),
        # a header cut off inside its dimensions
        (
            b"\x00\x00\x08\x03\x00\x00\x00\x01\x00\x00",
            r"file ends inside the IDX header \(10 bytes; 3 dimensions need 16\): truncated",
        ),
    ],
)
def test_each_bad_header_gets_one_clear_line(data, match):
    with pytest.raises(DataError, match=match) as info:
        parse_idx(data, "x.idx")
    assert str(info.value).startswith("x.idx: ") and "\n" not in str(info.value)


def test_a_zero_dimension_parses_but_an_empty_image_set_is_refused(tmp_path):
    assert parse_idx(idx_bytes(np.zeros((0, 28, 28), np.uint8))).shape == (0, 28, 28)
    write_idx_set(tmp_path)
    for shape in [(0, 28, 28), (40, 0, 28)]:
        write_file(tmp_path, NAMES["train_images"], idx_bytes(np.zeros(shape, np.uint8)))
        with pytest.raises(DataError, match=r"hold no image; expected \(N, H, W\)"):
            load_idx("mnist", data_dir=tmp_path, download_missing=False)


def test_a_little_endian_dataset_file_is_named_when_loading(tmp_path):
    write_idx_set(tmp_path)
    path = write_file(tmp_path, NAMES["train_images"], little_endian_idx(np.zeros((40, 28, 28))))
    with pytest.raises(DataError, match=rf"{path}: .*the header is little-endian"):
        load("mnist", data_dir=tmp_path, download=False)
