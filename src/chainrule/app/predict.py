"""Classifying the user's own image files with a saved run's model.

Each file is read by ``data.images.read_image`` (the rule training folders use too), made the
model's kind (grey or RGB) and size (resized, with a note), and, for a grey model, turned to the
model's polarity: the 8x8 digits, MNIST and Fashion-MNIST are light ink on a dark ground
(0 = background), while a digit drawn in a paint program is dark ink on white. ``invert="auto"``
compares the median of the image's border with the border of the training mean (saved with the
model): a light image border where training had a dark one (or the reverse) is inverted, and a
note says so. Colour models (CIFAR-10) are never inverted unless asked.

A file that cannot be read is reported in its own entry; the others are still classified.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.data.images import fit_to_shape, is_image_name, read_image
from chainrule.engine.errors import ConfigError, DataError, DataNotFoundError
from chainrule.training import checkpoints

INVERT_CHOICES = ("auto", "yes", "no")
# A training border mean below DARK (or above 1 - DARK), in [0, 1], is a clear ground to match.
DARK = 0.2


@dataclass
class Prediction:
    """One input: its class and probabilities (the best 3), or the error that stopped it.

    notes: each change made to the image on the way (conversion, resize, inversion).
    """

    image: str
    label: int | None = None
    class_name: str | None = None
    probability: float | None = None
    top3: list[tuple[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    inverted: bool = False
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """What ``chainrule predict --json`` prints for this input: image and error, or image,
        label, class, probability (in [0, 1]), top3, inverted and notes."""
        if self.error is not None:
            return {"image": self.image, "error": self.error}
        return {
            "image": self.image,
            "label": self.label,
            "class": self.class_name,
            "probability": self.probability,
            "top3": [{"class": c, "probability": p} for c, p in self.top3],
            "inverted": self.inverted,
            "notes": self.notes,
        }


def expand(paths: list[str]) -> list[tuple[str, str | None]]:
    """Each argument as (path, error): a file as itself; a folder as every image file under it
    (``images.IMAGE_SUFFIXES``, hidden files and folders left out), sorted; a folder without
    any as one error. Never raises: a path that does not exist is left for ``read_image`` to
    name."""
    found: list[tuple[str, str | None]] = []
    for arg in paths:
        if not Path(arg).is_dir():
            found.append((arg, None))
            continue
        inside = []
        for folder, dirs, files in os.walk(arg):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            inside += sorted(os.path.join(folder, f) for f in files if is_image_name(f))
        if inside:
            found += [(p, None) for p in inside]
        else:
            found.append((arg, f"{arg} is a folder without image files; expected images in it"))
    return found


def border_level(image: np.ndarray) -> float:
    """The median of the outermost pixels of ``image`` (H, W) or (H, W, C), in the image's own
    units (colour averaged over C first); the median of all of them when H or W is below 3."""
    grey = image if image.ndim == 2 else image.mean(axis=2)
    if min(grey.shape) < 3:
        return float(np.median(grey))
    border = np.concatenate([grey[0], grey[-1], grey[1:-1, 0], grey[1:-1, -1]])
    return float(np.median(border))


def should_invert(
    pixels: np.ndarray, saved: checkpoints.SavedModel, invert: str
) -> tuple[bool, str]:
    """Whether to invert 8-bit ``pixels`` (H, W) or (H, W, 3), values 0..255, for ``saved``'s
    model, and the note that says why ("" when not). invert: "auto", "yes" or "no" (see the
    module's docstring); auto inverts only for a grey model whose training border is clearly
    dark (below ``DARK``) or light (above 1 - ``DARK``) and an image border on the other side
    of 0.5."""
    if invert == "no":
        return False, ""
    if invert == "yes":
        return True, "inverted (--invert yes)"
    if len(saved.image_shape) != 2:  # colour photos have no ground to match
        return False, ""
    trained = border_level(saved.preprocessing.mean.reshape(saved.image_shape))
    image = border_level(pixels) / 255
    if trained < DARK and image > 0.5:
        return True, (
            f"inverted: its background is light (border {image:.2f}) and the model's training "
            f"images are light on dark (border {trained:.2f}); --invert no keeps it as it is"
        )
    if trained > 1 - DARK and image < 0.5:
        return True, (
            f"inverted: its background is dark (border {image:.2f}) and the model's training "
            f"images are dark on light (border {trained:.2f}); --invert no keeps it as it is"
        )
    return False, ""


def predict_images(run_dir: str | Path, paths: list[str], invert: str = "auto") -> list[Prediction]:
    """Classify image files (and every image in folders) with a saved run's model.

    run_dir: a run folder or its model.safetensors. invert: "auto", "yes" or "no" (see the
    module's docstring). Returns one Prediction per file, in order; a file that cannot be read
    has its ``error`` set and the rest are classified. Raises DataNotFoundError or DataError
    for a missing or bad model, ConfigError for an unknown ``invert``.
    """
    if invert not in INVERT_CHOICES:
        raise ConfigError(f"invert is {invert!r}; expected one of {', '.join(INVERT_CHOICES)}")
    run_dir = Path(run_dir)
    model_file = run_dir / checkpoints.MODEL_FILE if run_dir.is_dir() else run_dir
    saved = checkpoints.load_model(model_file)
    predictions = [Prediction(image=path, error=problem) for path, problem in expand(paths)]
    rows = [(p, _row(p, saved, invert)) for p in predictions if p.error is None]
    read = [(p, row) for p, row in rows if row is not None]
    if read:
        _classify([p for p, _ in read], np.stack([row for _, row in read]), saved)
    return predictions


def _row(entry: Prediction, saved: checkpoints.SavedModel, invert: str) -> np.ndarray | None:
    """The image of ``entry`` as one raw row (D,) float32 for ``saved``'s model: made its kind
    and size, inverted when ``should_invert`` says so (each change noted on ``entry``), scaled
    to the model's raw units. None, with ``entry.error`` set, when the file cannot be read."""
    try:
        fitted = fit_to_shape(read_image(entry.image), saved.image_shape)
    except (DataError, DataNotFoundError) as err:
        entry.error = str(err)
        return None
    pixels = fitted.pixels
    entry.notes = list(fitted.notes)
    entry.inverted, why = should_invert(pixels, saved, invert)
    if entry.inverted:
        pixels = 255 - pixels
        entry.notes.append(why)
    # Image files hold 0..255; the model's raw scale may differ (the digits' is 0..16).
    return pixels.reshape(-1).astype(np.float32) * np.float32(saved.preprocessing.scale / 255)


def _classify(entries: list[Prediction], rows: np.ndarray, saved: checkpoints.SavedModel) -> None:
    """Fill in each entry's class and best three from the model's softmax probabilities of its
    row: rows (N, D) float32 raw, one per entry, preprocessed here as in training."""
    scores = saved.model.scores(saved.preprocessing.apply(rows))  # (N, K)
    shifted = scores - scores.max(axis=1, keepdims=True)  # exp cannot overflow
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    for entry, p in zip(entries, probs):
        top = np.argsort(p)[::-1][:3]
        entry.label = int(top[0])
        entry.class_name = saved.classes[top[0]]
        entry.probability = float(p[top[0]])
        entry.top3 = [(saved.classes[i], float(p[i])) for i in top]
