"""The conversions behind ``images.read_image``: one converter per Pillow mode.

A converter takes an opened image of its mode and the file's name (for errors) and returns its
8-bit pixels, (H, W) grey or (H, W, 3) RGB uint8, with a short note of the conversion made ("" for
none). ``images``' docstring lists the rules; ``CONVERTERS`` maps each readable mode to its
converter, so a mode missing from it is refused. The modes are Pillow's
(https://pillow.readthedocs.io/en/stable/handbook/concepts.html#modes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from chainrule.engine.errors import DataError

if TYPE_CHECKING:
    from PIL.Image import Image

SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


def on_white(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite 8-bit ``colour`` (H, W) or (H, W, C) with ``alpha`` (H, W) (0 transparent, 255
    opaque) on a white ground: round((c * a + 255 * (255 - a)) / 255), the "over" operator of
    Porter and Duff (1984) on an opaque white background, exact in integers. Returns uint8 of
    colour's shape."""
    c = colour.astype(np.int32)
    a = alpha.astype(np.int32)
    if c.ndim == 3:
        a = a[..., None]
    return ((c * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)


def _sixteen_to_eight(values: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255, rounded half up (65535 -> 255, 257 * k -> k), exact in integers."""
    return ((values.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8)


def _grey_or_rgb(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (H, W) when every pixel is grey (r = g = b), else unchanged."""
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return np.ascontiguousarray(rgb[..., 0])
    return rgb


def _as_is(image: Image, name: str) -> tuple[np.ndarray, str]:
    """L and RGB: already 8-bit grey or RGB."""
    return np.asarray(image, dtype=np.uint8), ""


def _by_pillow(note: str) -> Callable[[Image, str], tuple[np.ndarray, str]]:
    """A converter that lets Pillow make RGB (exact for RGBX; CMYK and YCbCr by its formulas)."""

    def convert(image: Image, name: str) -> tuple[np.ndarray, str]:
        """(H, W, 3) uint8 RGB as Pillow converts it, with the note."""
        return np.asarray(image.convert("RGB"), dtype=np.uint8), note

    return convert


def _one_bit(image: Image, name: str) -> tuple[np.ndarray, str]:
    """1: black and white as 0 and 255."""
    pixels = np.asarray(image.convert("L"), dtype=np.uint8)
    return pixels, "1-bit black and white read as 0 and 255"


def _sixteen_bit(image: Image, name: str) -> tuple[np.ndarray, str]:
    """I;16 and its byte orders: 16-bit grey scaled to 8 bits."""
    return _sixteen_to_eight(np.asarray(image)), f"16-bit grey ({image.mode}) scaled to 8 bits"


def _int32(image: Image, name: str) -> tuple[np.ndarray, str]:
    """I: 32-bit integers read as 16-bit grey when all lie in 0..65535; DataError otherwise."""
    values = np.asarray(image)
    low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
    if low < 0 or high > 65535:
        raise DataError(
            f"{name}: 32-bit integer grey (mode I) with values {low}..{high}; expected "
            "0..65535 (16-bit grey) to know its scale"
        )
    return _sixteen_to_eight(values), "32-bit integer grey (I) read as 16-bit and scaled to 8 bits"


def _float32(image: Image, name: str) -> tuple[np.ndarray, str]:
    """F: 32-bit floats read as grey when all are finite and in [0, 1]; DataError otherwise."""
    values = np.asarray(image, dtype=np.float64)
    if values.size and not (np.isfinite(values).all() and 0 <= values.min() <= values.max() <= 1):
        low, high = np.nanmin(values), np.nanmax(values)
        raise DataError(
            f"{name}: 32-bit float grey (mode F) with values {low:g}..{high:g}"
            f"{' and NaN' if np.isnan(values).any() else ''}; expected values in [0, 1]"
        )
    pixels = np.floor(values * 255 + 0.5).astype(np.uint8)
    return pixels, "32-bit float grey (F) in [0, 1] scaled to 0..255"


def _grey_alpha(image: Image, name: str) -> tuple[np.ndarray, str]:
    """LA: grey composited on white by its alpha."""
    la = np.asarray(image)
    return on_white(la[..., 0], la[..., 1]), "grey with alpha (LA) composited on white"


def _with_alpha(image: Image, name: str) -> tuple[np.ndarray, str]:
    """RGBA, RGBa, PA and P: alpha (or a palette's transparent entry) composited on white; a
    palette image whose colours are all grey becomes grey."""
    mode = image.mode
    transparent = mode != "P" or "transparency" in image.info
    if mode == "P":
        note = "palette (P) with transparency composited on white" if transparent else "palette (P)"
    elif mode == "PA":
        note = "palette with alpha (PA) composited on white"
    else:
        note = f"{mode} composited on white"
    if transparent:
        rgba = np.asarray(image.convert("RGBA"))
        rgb = on_white(rgba[..., :3], rgba[..., 3])
    else:
        rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    if mode in ("P", "PA"):
        rgb = _grey_or_rgb(rgb)
        note += " read as grey" if rgb.ndim == 2 else " read as RGB"
    return rgb, note


CONVERTERS: dict[str, Callable[[Image, str], tuple[np.ndarray, str]]] = {
    "L": _as_is,
    "RGB": _as_is,
    "RGBX": _by_pillow(""),
    "1": _one_bit,
    **{mode: _sixteen_bit for mode in SIXTEEN_BIT},
    "I": _int32,
    "F": _float32,
    "LA": _grey_alpha,
    **{mode: _with_alpha for mode in ("RGBA", "RGBa", "PA", "P")},
    "CMYK": _by_pillow("CMYK converted to RGB without a colour profile"),
    "YCbCr": _by_pillow("YCbCr converted to RGB"),
}
