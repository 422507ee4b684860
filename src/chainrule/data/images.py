"""Reading one image file: the one rule that image folders (training) and ``predict`` share.

``read_image`` opens a file with Pillow and ``decode`` converts it; the converter of each mode
is in ``image_modes``.

Every image becomes 8-bit grey (H, W) or 8-bit RGB (H, W, 3), the form the models are trained
on. What can be converted without guessing is converted, and each conversion is stated in a
note; the rest is refused with an error that names the file and its mode.

    L, RGB                   as they are
    1 (1-bit)                0 and 255
    I;16, I;16B/L/N          16-bit grey, scaled to 8 bits: round(v * 255 / 65535)
    I (32-bit integers)      read as 16-bit grey when every value lies in 0..65535, else refused
    F (32-bit floats)        read as grey in [0, 1] (round(v * 255)) when every value lies there
    LA, RGBA, RGBa, PA       composited on white: round((c * a + 255 * (255 - a)) / 255)
    P (palette)              its colours; grey when every colour used is a grey, else RGB; a
                             transparent palette entry is composited on white like alpha
    CMYK, YCbCr              converted to RGB by Pillow (CMYK without a colour profile:
                             R = 255 (1 - C)(1 - K), each channel in [0, 1]; YCbCr by
                             ITU-R BT.601 / JPEG's JFIF equations)
    anything else            refused (e.g. LAB, HSV, I;16S)

Why white under transparency: a drawing saved with a transparent background (the usual way to
export strokes) is dark ink on nothing, and a viewer shows it on white; compositing on white
gives the picture the user saw. Images with an EXIF orientation are rotated as a viewer would,
and only the first frame of an animation or a multi-page file is read (both with a note).

16-bit RGB PNGs need no rule of their own: Pillow already reads them as 8-bit RGB (the high byte
of each sample).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from chainrule.data.image_modes import CONVERTERS
from chainrule.engine.errors import ChainruleError, DataError, DataNotFoundError, ShapeError

if TYPE_CHECKING:
    from PIL.Image import Image

# The files an image folder and predict read; any other suffix is not an image to them.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class DecodedImage:
    """One image as 8-bit pixels: (H, W) grey or (H, W, 3) RGB, uint8; notes: each conversion
    made on the way, as a short phrase (empty for a plain L or RGB file)."""

    pixels: np.ndarray
    notes: tuple[str, ...] = ()

    @property
    def is_colour(self) -> bool:
        """Whether the pixels are (H, W, 3) RGB rather than (H, W) grey."""
        return self.pixels.ndim == 3


def is_image_name(name: str) -> bool:
    """Whether a file name has one of IMAGE_SUFFIXES (case-insensitive) and is not hidden."""
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and base.lower().endswith(IMAGE_SUFFIXES)


def decode(image: Image, name: str) -> DecodedImage:
    """An opened Pillow image -> DecodedImage by the rules in this module's docstring.

    Returns (H, W) or (H, W, 3) uint8 pixels with the notes of every conversion made. name: how
    errors and notes name the file. Raises DataError naming the file and the mode for a mode
    (or value range) that cannot be converted without guessing.
    """
    from PIL import ImageOps

    notes: list[str] = []
    if getattr(image, "n_frames", 1) > 1:
        notes.append(f"first of {image.n_frames} frames")
    if image.getexif().get(EXIF_ORIENTATION, 1) not in (0, 1):
        image = ImageOps.exif_transpose(image)
        notes.append("rotated as its EXIF orientation says")
    convert = CONVERTERS.get(image.mode)
    if convert is None:
        raise DataError(
            f"{name}: mode {image.mode} cannot be read; expected grey (1, L, I;16, I, F), RGB, "
            "RGBA, LA, palette, CMYK or YCbCr: convert it to RGB or grey first"
        )
    pixels, note = convert(image, name)
    return DecodedImage(pixels, tuple(notes + ([note] if note else [])))


def read_image(source: str | Path | IO[bytes], name: str | None = None) -> DecodedImage:
    """Open and decode one image file (a path or a binary file object) by the module's rules.

    Returns a DecodedImage: (H, W) or (H, W, 3) uint8 pixels and the conversion notes. name: how
    errors and notes name it (default: the path). Raises DataNotFoundError for a missing file,
    DataError for a folder, a file Pillow cannot decode or a mode that is refused.
    """
    from PIL import Image, UnidentifiedImageError

    label = name if name is not None else str(source)
    try:
        with Image.open(source) as image:
            image.load()
            return decode(image, label)
    except ChainruleError:
        raise
    except FileNotFoundError as err:
        raise DataNotFoundError(f"image {label} does not exist; expected an image file") from err
    except IsADirectoryError as err:
        raise DataError(f"{label} is a folder; expected an image file") from err
    except UnidentifiedImageError as err:
        raise DataError(
            f"cannot decode image {label}: not an image file Pillow knows; expected PNG, JPEG, "
            "BMP, GIF, TIFF or WebP"
        ) from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise DataError(f"cannot decode image {label} (a damaged file? {err})") from err


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint8 luma as Pillow computes it (ITU-R 601-2:
    L = R 299/1000 + G 587/1000 + B 114/1000, rounded; the formula of Pillow's Image.convert
    documentation)."""
    from PIL import Image

    return np.asarray(Image.fromarray(rgb, mode="RGB").convert("L"), dtype=np.uint8)


def to_rgb(grey: np.ndarray) -> np.ndarray:
    """(H, W) uint8 -> (H, W, 3) with r = g = b."""
    return np.repeat(grey[..., None], 3, axis=2)


def resize(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """8-bit pixels (H, W[, 3]) uint8 -> (height, width[, 3]) uint8, sizes in pixels.

    Shrinking averages the pixels each new pixel covers (Pillow's box filter, like the way the
    8x8 digits were made: counts of ink in 4x4 blocks of 32x32 bitmaps, as scikit-learn's
    description of the UCI digits says); enlarging is bicubic.
    """
    from PIL import Image

    shrink = height <= pixels.shape[0] and width <= pixels.shape[1]
    method = Image.Resampling.BOX if shrink else Image.Resampling.BICUBIC
    return np.asarray(Image.fromarray(pixels).resize((width, height), method), dtype=np.uint8)


def fit_to_shape(
    decoded: DecodedImage, image_shape: tuple[int, ...], allow_resize: bool = True
) -> DecodedImage:
    """Make a decoded image the shape a model takes: (H, W) grey or (H, W, 3) colour.

    decoded: (h, w) or (h, w, 3) uint8 pixels; image_shape: (H, W), (H, W, 1) or (H, W, 3).
    Colour becomes grey by ``to_grey``, grey becomes colour by repeating it; another size is
    resized (``resize``) when allow_resize, else a ShapeError names both sizes. Each change adds
    a note. Raises ShapeError also for an image_shape that is no image shape.
    """
    shape = tuple(int(s) for s in image_shape)
    if len(shape) == 3 and shape[2] == 1:
        shape = shape[:2]
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] != 3):
        raise ShapeError(f"image_shape {image_shape} is not an image; expected (H, W) or (H, W, 3)")
    pixels, notes = decoded.pixels, list(decoded.notes)
    if len(shape) == 2 and pixels.ndim == 3:
        pixels = to_grey(pixels)
        notes.append("colour converted to grey")
    elif len(shape) == 3 and pixels.ndim == 2:
        pixels = to_rgb(pixels)
        notes.append("grey repeated into R, G and B")
    if pixels.shape[:2] != shape[:2]:
        h, w = pixels.shape[:2]
        if not allow_resize:
            raise ShapeError(f"is {h}x{w} (HxW); expected {shape[0]}x{shape[1]}")
        pixels = resize(pixels, shape[0], shape[1])
        notes.append(f"resized from {h}x{w} to {shape[0]}x{shape[1]} (HxW)")
    return DecodedImage(pixels, tuple(notes))


def load_image(
    path: str | Path, image_shape: tuple[int, ...], pixel_max: float = 255.0
) -> np.ndarray:
    """One image file -> its raw pixels as float32 (D,), in (H, W[, C]) order, in [0, pixel_max].

    image_shape: (H, W) reads it as grey, (H, W, 3) as RGB, each by ``read_image``'s rules.
    pixel_max: 255 gives the [0, 255] scale; pass ``preprocessing.scale`` to get the raw units
    of a dataset whose pixels are not 0..255 (the digits' 0..16).
    A file of another size raises ShapeError naming both sizes (``predict`` resizes instead);
    a missing or unreadable file raises as ``read_image`` does.
    """
    try:
        fitted = fit_to_shape(read_image(path), image_shape, allow_resize=False)
    except ShapeError as err:
        if str(err).startswith("image_shape"):
            raise
        raise ShapeError(f"image {path} {err}") from None
    pixels = fitted.pixels.astype(np.float32).reshape(-1)
    if pixel_max != 255.0:
        pixels *= pixel_max / 255.0
    return pixels
