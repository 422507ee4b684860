"""Image folders and archives (PNG, JPEG), their decoded-array cache, and load_image."""

from __future__ import annotations

import hashlib
import io
import random
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chainrule.data import image_folder, load, load_image
from chainrule.data.image_folder import LocalArchive, load_image_folder
from chainrule.errors import ChecksumError, DataError, DataNotFoundError, ShapeError

H, W = 5, 6  # unequal on purpose: a swapped height and width would show
CLASSES = ["dog", "ant", "cat"]  # written unsorted; class names come back sorted


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    for var in ("CHAINRULE_DATA", "CHAINRULE_MIRROR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path / "cache"))


def pixels(seed: int, mode: str = "RGB", size: tuple[int, int] = (H, W)) -> np.ndarray:
    """A random image as an array: (H, W, 3) for RGB, (H, W) for L."""
    shape = (*size, 3) if mode == "RGB" else size
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def encode(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def image_files(mode: str = "RGB", fmt: str = "PNG", per_class=(3, 2)) -> dict[str, bytes]:
    """Relative path -> encoded image for a train/ and test/ layout of CLASSES."""
    suffix = ".png" if fmt == "PNG" else ".jpg"
    files = {}
    seed = 0
    for split, count in zip(("train", "test"), per_class, strict=True):
        for cls in CLASSES:
            for i in range(count):
                seed += 1
                files[f"{split}/{cls}/{i:04d}{suffix}"] = encode(pixels(seed, mode), fmt)
    return files


def write_folder(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def write_archive(dest: Path, files: dict[str, bytes], shuffle: bool = False) -> Path:
    items = list(files.items())
    if shuffle:
        random.Random(0).shuffle(items)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:gz" if dest.name.endswith("gz") else "w") as tar:
        for name, data in items:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return dest


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data))).reshape(-1)


def test_png_folder_rgb(tmp_path):
    files = image_files()
    ds = load("image-folder", root=write_folder(tmp_path / "imgs", files), val_size=0)
    assert ds.classes == ["ant", "cat", "dog"] and ds.image_shape == (H, W, 3)
    assert ds.X_train.shape == (9, H * W * 3) and ds.X_test.shape == (6, H * W * 3)
    # The test split keeps the sorted order: ant/0000, ant/0001, cat/0000...
    assert ds.y_test.tolist() == [0, 0, 1, 1, 2, 2]
    raw = ds.preprocessing.invert(ds.X_test)
    np.testing.assert_allclose(raw[2], decoded(files["test/cat/0000.png"]), atol=1e-3)


def test_png_folder_grayscale_under_a_top_folder(tmp_path):
    write_folder(tmp_path / "root" / "top", image_files(mode="L"))
    ds = load("image-folder", root=tmp_path / "root", val_size=3)
    assert ds.image_shape == (H, W) and ds.num_features == H * W
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (6, 3, 6)


@pytest.mark.parametrize("archive", ["imgs.tar.gz", "imgs.tgz", "imgs.tar"])
def test_jpeg_archive_with_a_readme_and_any_member_order(tmp_path, archive):
    files = image_files(fmt="JPEG")
    members = {"README.md": b"# not an image", **{f"top/{k}": v for k, v in files.items()}}
    root = write_archive(tmp_path / archive, members, shuffle=True)
    X_train, y_train, X_test, y_test, classes, shape = load_image_folder(root)
    assert classes == ["ant", "cat", "dog"] and shape == (H, W, 3)
    assert y_train.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2] and X_train.dtype == np.uint8
    assert y_test.tolist() == [0, 0, 1, 1, 2, 2]
    np.testing.assert_array_equal(X_test[5], decoded(files["test/dog/0001.jpg"]))
    # The same images as a folder come back identical: order never depends on the tar order.
    folder = load_image_folder(write_folder(tmp_path / "folder", files))
    np.testing.assert_array_equal(folder[0], X_train)
    np.testing.assert_array_equal(folder[2], X_test)


def test_second_load_comes_from_the_cache(tmp_path, monkeypatch):
    root = write_archive(tmp_path / "imgs.tar.gz", image_files())
    first = load_image_folder(root)
    cached = list((tmp_path / "cache" / "image-folder").glob("*.npz"))
    assert len(cached) == 1
    with np.load(cached[0], allow_pickle=False) as f:
        assert f["X_train"].dtype == np.uint8

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(image_folder._Decoder, "add", no_decoding)
    second = load_image_folder(root)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_changed_folder_or_a_broken_cache_is_decoded_again(tmp_path):
    root = write_folder(tmp_path / "imgs", image_files())
    assert len(load_image_folder(root)[0]) == 9
    (root / "train" / "ant" / "0099.png").write_bytes(encode(pixels(99)))
    assert len(load_image_folder(root)[0]) == 10  # a new listing, a new cache key
    for cached in (tmp_path / "cache" / "image-folder").glob("*.npz"):
        cached.write_bytes(b"broken")
    assert len(load_image_folder(root)[0]) == 10


def test_mixed_sizes_name_the_offending_file(tmp_path):
    files = image_files()
    files["train/cat/0001.png"] = encode(pixels(0, size=(H + 1, W)))
    with pytest.raises(DataError, match=r"train/cat/0001\.png is 6x6 RGB; expected 5x6 RGB"):
        load_image_folder(write_folder(tmp_path / "imgs", files))
    with pytest.raises(DataError, match=r"train/cat/0001\.png is 6x6"):
        load_image_folder(write_archive(tmp_path / "imgs.tar.gz", files))


def test_mixed_modes_and_unsupported_modes(tmp_path):
    files = image_files()
    files["test/dog/0000.png"] = encode(pixels(0, mode="L"))
    with pytest.raises(DataError, match=r"test/dog/0000\.png is 5x6 L; expected 5x6 RGB"):
        load_image_folder(write_folder(tmp_path / "a", files))
    rgba = np.zeros((H, W, 4), dtype=np.uint8)
    files["test/dog/0000.png"] = encode(rgba)
    with pytest.raises(DataError, match="mode RGBA; expected L"):
        load_image_folder(write_folder(tmp_path / "b", files))


def test_corrupt_image_and_bad_layouts(tmp_path):
    files = image_files()
    files["train/ant/0002.png"] = b"not a png"
    with pytest.raises(DataError, match=r"cannot decode train/ant/0002\.png"):
        load_image_folder(write_folder(tmp_path / "a", files))
    only_train = {k: v for k, v in image_files().items() if k.startswith("train/")}
    with pytest.raises(DataError, match="no test/<class>"):
        load_image_folder(write_folder(tmp_path / "b", only_train))
    files = image_files()
    files["test/zebra/0000.png"] = files.pop("test/dog/0000.png")
    with pytest.raises(DataError, match="test class 'zebra'"):
        load_image_folder(write_folder(tmp_path / "c", files))
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="neither a folder nor"):
        load_image_folder(tmp_path / "notes.txt")
    (tmp_path / "broken.tar.gz").write_bytes(b"\x1f\x8b\x08 broken")
    with pytest.raises(DataError, match="corrupt or unreadable archive"):
        load_image_folder(tmp_path / "broken.tar.gz")


def test_cifar10_jpeg_alias_verifies_sha256(tmp_path, monkeypatch):
    archive = write_archive(tmp_path / "data" / "cifar10-jpeg.tar.gz", image_files(fmt="JPEG"))
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    monkeypatch.setattr(image_folder, "CIFAR10_JPEG", LocalArchive("cifar10-jpeg.tar.gz", sha))
    ds = load("cifar10-jpeg", data_dir=tmp_path / "data", val_size=0)
    assert ds.name == "cifar10-jpeg" and ds.image_shape == (H, W, 3)
    monkeypatch.setattr(
        image_folder, "CIFAR10_JPEG", LocalArchive("cifar10-jpeg.tar.gz", "ab" * 32)
    )
    with pytest.raises(ChecksumError, match="expected abab.*, got " + sha):
        load("cifar10-jpeg", data_dir=tmp_path / "data")


def test_load_image_rgb_and_gray(tmp_path):
    rgb = pixels(1)
    (tmp_path / "rgb.png").write_bytes(encode(rgb))
    row = load_image(tmp_path / "rgb.png", (H, W, 3))
    assert row.dtype == np.float32 and row.shape == (H * W * 3,)
    np.testing.assert_array_equal(row, rgb.reshape(-1))
    gray = load_image(tmp_path / "rgb.png", (H, W))  # converted to L as the shape asks
    expected = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float32).reshape(-1)
    np.testing.assert_array_equal(gray, expected)
    np.testing.assert_allclose(
        load_image(tmp_path / "rgb.png", (H, W), pixel_max=16.0), expected * 16 / 255
    )


def test_load_image_errors(tmp_path):
    (tmp_path / "img.png").write_bytes(encode(pixels(1)))
    with pytest.raises(ShapeError, match=r"is 5x6 \(HxW\); expected 32x32"):
        load_image(tmp_path / "img.png", (32, 32, 3))
    with pytest.raises(ShapeError, match="expected \\(H, W\\) or \\(H, W, 3\\)"):
        load_image(tmp_path / "img.png", (H, W, 4))
    with pytest.raises(DataNotFoundError):
        load_image(tmp_path / "missing.png", (H, W))
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(DataError, match="cannot decode image"):
        load_image(tmp_path / "bad.png", (H, W))
