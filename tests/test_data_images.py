"""The one image-reading rule (data/images.py): real files of every mode, written with Pillow
(and one 16-bit RGB PNG written byte by byte), read back to exact 8-bit values."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chainrule.data.image_modes import on_white
from chainrule.data.images import fit_to_shape, load_image, read_image, resize
from chainrule.engine.errors import DataError, DataNotFoundError, ShapeError


def save(image: Image.Image, path: Path, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


def test_grey_and_rgb_are_read_as_they_are(tmp_path):
    grey = np.array([[0, 7, 255], [128, 1, 254]], np.uint8)
    rgb = np.arange(18, dtype=np.uint8).reshape(2, 3, 3) * 14
    for name, array in (("g.png", grey), ("c.png", rgb), ("g.bmp", grey), ("c.tif", rgb)):
        image = read_image(save(Image.fromarray(array), tmp_path / name))
        np.testing.assert_array_equal(image.pixels, array)
        assert image.pixels.dtype == np.uint8 and image.notes == ()


def test_one_bit_is_0_and_255(tmp_path):
    bits = np.array([[True, False], [False, True]])
    image = read_image(save(Image.fromarray(bits), tmp_path / "b.png"))
    np.testing.assert_array_equal(image.pixels, [[255, 0], [0, 255]])
    assert image.notes == ("1-bit black and white read as 0 and 255",)


# 16 bits -> 8: round(v * 255 / 65535), half up; 257 * k is k exactly
SIXTEEN = np.array([[0, 257, 65535], [32768, 128, 129], [40000, 514, 65534]], np.uint16)
EIGHT = np.array([[0, 1, 255], [128, 0, 1], [156, 2, 255]], np.uint8)


@pytest.mark.parametrize(("mode", "fmt"), [("I;16", "PNG"), ("I;16B", "TIFF"), ("I;16", "TIFF")])
def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path, mode, fmt):
    # Pillow's own convert("L") clips 16-bit values to 255: a digit's ink and ground become one
    order = ">u2" if mode == "I;16B" else "<u2"
    image = Image.frombytes(mode, (3, 3), SIXTEEN.astype(order).tobytes())
    path = save(image, tmp_path / f"x.{fmt.lower()}", format=fmt)
    decoded = read_image(path)
    np.testing.assert_array_equal(decoded.pixels, EIGHT)
    assert decoded.notes[-1].startswith("16-bit grey (I;16")


def test_thirty_two_bit_integers_within_16_bits_are_read_as_16_bit(tmp_path):
    path = save(Image.fromarray(SIXTEEN.astype(np.int32)), tmp_path / "i.tif")
    assert Image.open(path).mode == "I"
    decoded = read_image(path)
    np.testing.assert_array_equal(decoded.pixels, EIGHT)
    assert "32-bit integer grey (I) read as 16-bit" in decoded.notes[0]
    wide = save(Image.fromarray(np.array([[0, 70000]], np.int32)), tmp_path / "wide.tif")
    with pytest.raises(DataError, match=r"wide\.tif: 32-bit integer grey \(mode I\) .*0\.\.70000"):
        read_image(wide)


def test_float_images_in_0_1(tmp_path):
    values = np.array([[0.0, 0.5, 1.0], [0.25, 1 / 255, 0.999]], np.float32)
    decoded = read_image(save(Image.fromarray(values), tmp_path / "f.tif"))
    np.testing.assert_array_equal(decoded.pixels, [[0, 128, 255], [64, 1, 255]])
    assert decoded.notes == ("32-bit float grey (F) in [0, 1] scaled to 0..255",)
    outside = save(Image.fromarray(np.array([[0, 2.5]], np.float32)), tmp_path / "big.tif")
    with pytest.raises(DataError, match=r"big\.tif: 32-bit float grey \(mode F\) .*0\.\.2\.5"):
        read_image(outside)
    nan = save(Image.fromarray(np.array([[0, np.nan]], np.float32)), tmp_path / "nan.tif")
    with pytest.raises(DataError, match="and NaN; expected values in"):
        read_image(nan)


def test_alpha_is_composited_on_white(tmp_path):
    # round((c * a + 255 * (255 - a)) / 255): 127.498 -> 127, 200, 255, 254.04 -> 254
    composited = on_white(np.array([0, 200, 0, 10], np.uint8), np.array([128, 255, 0, 1]))
    assert composited.tolist() == [127, 200, 255, 254]
    la = np.array([[[0, 128], [200, 255]], [[90, 0], [10, 1]]], np.uint8)
    decoded = read_image(save(Image.fromarray(la, mode="LA"), tmp_path / "la.png"))
    # (c * a + 255 * (255 - a) + 127) // 255 by hand
    np.testing.assert_array_equal(decoded.pixels, [[127, 200], [255, 254]])
    assert decoded.notes == ("grey with alpha (LA) composited on white",)
    rgba = np.array([[[255, 0, 0, 128], [0, 0, 255, 255], [9, 9, 9, 0]]], np.uint8)
    decoded = read_image(save(Image.fromarray(rgba, mode="RGBA"), tmp_path / "rgba.png"))
    np.testing.assert_array_equal(decoded.pixels, [[[255, 127, 127], [0, 0, 255], [255] * 3]])
    assert decoded.notes == ("RGBA composited on white",)


def test_palette_images(tmp_path):
    indices = np.array([[0, 1], [2, 1]], np.uint8)
    colour = Image.fromarray(indices, mode="P")
    colour.putpalette([255, 0, 0, 0, 255, 0, 10, 20, 30] + [0] * 759)
    decoded = read_image(save(colour, tmp_path / "p.png"))
    np.testing.assert_array_equal(
        decoded.pixels, [[[255, 0, 0], [0, 255, 0]], [[10, 20, 30], [0, 255, 0]]]
    )
    assert decoded.notes == ("palette (P) read as RGB",)
    grey = Image.fromarray(indices, mode="P")
    grey.putpalette([0, 0, 0, 100, 100, 100, 255, 255, 255] + [0] * 759)
    decoded = read_image(save(grey, tmp_path / "grey.png"))
    np.testing.assert_array_equal(decoded.pixels, [[0, 100], [255, 100]])  # (H, W): grey
    assert decoded.notes == ("palette (P) read as grey",)
    clear = Image.fromarray(indices, mode="P")
    clear.putpalette([0, 0, 0, 100, 100, 100, 40, 40, 40] + [0] * 759)
    decoded = read_image(save(clear, tmp_path / "t.png", transparency=1))  # entry 1 invisible
    np.testing.assert_array_equal(decoded.pixels, [[0, 255], [40, 255]])
    assert decoded.notes == ("palette (P) with transparency composited on white read as grey",)
    gif = read_image(save(Image.fromarray(indices * 100, mode="L"), tmp_path / "g.gif"))
    np.testing.assert_array_equal(gif.pixels, indices * 100)


def test_cmyk_and_ycbcr_become_rgb(tmp_path):
    cmyk = Image.new("CMYK", (2, 1), (10, 20, 30, 40))
    decoded = read_image(save(cmyk, tmp_path / "c.tif"))
    # R = 255 (1 - C)(1 - K), channels in [0, 1]: 245 * 215 / 255 = 206.6, 198.1, 189.7
    np.testing.assert_array_equal(decoded.pixels, [[[207, 198, 190]] * 2])
    assert decoded.notes == ("CMYK converted to RGB without a colour profile",)
    rgb = np.arange(12, dtype=np.uint8).reshape(2, 2, 3) * 20
    ycbcr = Image.fromarray(rgb).convert("YCbCr")
    decoded = read_image(save(ycbcr, tmp_path / "y.tif"))
    np.testing.assert_array_equal(decoded.pixels, np.asarray(ycbcr.convert("RGB")))
    assert decoded.notes == ("YCbCr converted to RGB",)


def test_sixteen_bit_rgb_keeps_the_high_byte(tmp_path):
    """Pillow reads 48-bit PNGs as 8-bit RGB; written here byte by byte (Pillow cannot)."""
    values = np.array([[[0, 256, 65535], [1000, 40000, 65280]]], dtype=">u2")

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + row.tobytes() for row in values)  # filter 0 per row
    header = struct.pack(">IIBBBBB", 2, 1, 16, 2, 0, 0, 0)  # 2x1, 16 bits, colour type RGB
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
    path = tmp_path / "rgb48.png"
    path.write_bytes(png + chunk(b"IEND", b""))
    np.testing.assert_array_equal(read_image(path).pixels, values.astype(np.uint16) >> 8)


def test_exif_orientation_and_frames(tmp_path):
    array = np.arange(6, dtype=np.uint8).reshape(2, 3) * 40
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    decoded = read_image(save(image, tmp_path / "o.png", exif=exif))
    np.testing.assert_array_equal(decoded.pixels, np.rot90(array, -1))
    assert decoded.notes == ("rotated as its EXIF orientation says",)
    frames = [Image.fromarray(np.full((2, 2), v, np.uint8)) for v in (10, 200)]
    path = save(frames[0], tmp_path / "a.tif", save_all=True, append_images=frames[1:])
    decoded = read_image(path)
    np.testing.assert_array_equal(decoded.pixels, np.full((2, 2), 10))
    assert decoded.notes == ("first of 2 frames",)


def test_other_modes_are_refused_naming_file_and_mode(tmp_path):
    path = save(Image.new("LAB", (2, 2)), tmp_path / "lab.tif")
    with pytest.raises(DataError, match=r"lab\.tif: mode LAB cannot be read; expected grey"):
        read_image(path)


def test_missing_damaged_and_non_image_files(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"image .*none\.png does not exist"):
        read_image(tmp_path / "none.png")
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(DataError, match=r"cannot decode image .*text\.png: not an image file"):
        read_image(tmp_path / "text.png")
    whole = (save(Image.fromarray(np.zeros((40, 40), np.uint8)), tmp_path / "w.png")).read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match=r"cannot decode image .*cut\.png"):
        read_image(tmp_path / "cut.png")
    with pytest.raises(DataError, match="is a folder"):
        read_image(tmp_path)


def test_fit_to_shape_converts_kind_and_size_with_notes(tmp_path):
    rgb = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [90, 90, 90]]], np.uint8)
    decoded = read_image(save(Image.fromarray(rgb), tmp_path / "c.png"))
    grey = fit_to_shape(decoded, (2, 2))
    # Pillow's ITU-R 601-2 luma: 299/1000 R + 587/1000 G + 114/1000 B
    np.testing.assert_array_equal(grey.pixels, [[76, 150], [29, 90]])
    assert grey.notes == ("colour converted to grey",)
    back = fit_to_shape(
        read_image(save(Image.fromarray(grey.pixels), tmp_path / "g.png")), (2, 2, 3)
    )
    np.testing.assert_array_equal(back.pixels, np.repeat(grey.pixels[..., None], 3, axis=2))
    big = np.kron(np.array([[0, 100], [200, 40]], np.uint8), np.ones((4, 4), np.uint8))
    small = fit_to_shape(read_image(save(Image.fromarray(big), tmp_path / "big.png")), (2, 2))
    np.testing.assert_array_equal(small.pixels, [[0, 100], [200, 40]])  # box: 4x4 averages
    assert small.notes == ("resized from 8x8 to 2x2 (HxW)",)
    with pytest.raises(ShapeError, match="is 8x8 \\(HxW\\); expected 2x2"):
        fit_to_shape(read_image(tmp_path / "big.png"), (2, 2), allow_resize=False)
    assert resize(big, 16, 16).shape == (16, 16)  # enlarging works too


def test_load_image_is_the_same_rule(tmp_path):
    path = save(Image.fromarray(SIXTEEN), tmp_path / "x.png")
    np.testing.assert_array_equal(load_image(path, (3, 3)), EIGHT.reshape(-1).astype(np.float32))
    np.testing.assert_allclose(
        load_image(path, (3, 3), pixel_max=16), EIGHT.reshape(-1).astype(float) * 16 / 255
    )
    with pytest.raises(ShapeError, match=r"x\.png is 3x3 \(HxW\); expected 4x4"):
        load_image(path, (4, 4))
