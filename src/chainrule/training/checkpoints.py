"""Model files: the weights, the preprocessing and the model's config as one safetensors file.

``save_model`` writes one atomically (``data.files``); ``load_model`` reads it back into a model
built by ``nn.build_model``, refusing a file whose tensors and metadata disagree. ``MODEL_FILE``
and ``CHECKPOINT_FILE`` are their names in a run folder (the checkpoint is ``state``'s).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.data import Preprocessing
from chainrule.data.files import load_arrays, save_arrays
from chainrule.engine.errors import ChainruleError, DataError
from chainrule.nn import Module, build_model

MODEL_FILE = "model.safetensors"
CHECKPOINT_FILE = "checkpoint.safetensors"


@dataclass
class SavedModel:
    """A model read back from its file, with what predictions on new images need."""

    model: Module
    preprocessing: Preprocessing
    classes: list[str]
    image_shape: tuple[int, ...]
    meta: dict[str, Any]


def save_model(
    path: str | Path,
    model: Module,
    preprocessing: Preprocessing,
    classes: Sequence[str],
    image_shape: Sequence[int],
    extra: dict[str, Any] | None = None,
) -> None:
    """Write the weights, the preprocessing numbers and the model's config as one safetensors file.

    Tensors: ``param.<name>`` for each parameter, ``preprocessing.*`` for the fitted numbers.
    Metadata: the model config, class names, image shape, and ``extra`` (e.g. the dataset name).
    Written atomically (``data.files.save_arrays``); raises OSError when it cannot be.
    """
    arrays = {f"param.{k}": v for k, v in model.state_dict().items()}
    arrays.update(preprocessing.to_arrays())
    meta = {
        "model": model.config(),
        "classes": list(classes),
        "image_shape": list(image_shape),
        **(extra or {}),
    }
    save_arrays(path, arrays, meta)


def load_model(path: str | Path) -> SavedModel:
    """Read a model file; refuse one whose tensors and metadata disagree, naming the mismatch.

    Raises DataNotFoundError/DataError as ``files.load_arrays`` does for a missing or damaged
    file, and DataError for metadata that is missing or disagrees with the tensors (sizes, class
    count, image shape) or for non-finite parameters.
    """
    arrays, meta = load_arrays(path)
    try:
        config, classes = meta["model"], [str(c) for c in meta["classes"]]
        image_shape = tuple(int(n) for n in meta["image_shape"])
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: the model metadata lacks or garbles {e}") from None
    params = {k[len("param.") :]: v for k, v in arrays.items() if k.startswith("param.")}
    first = next(iter(params.values()), None)
    if first is None:
        raise DataError(f"{path}: the file holds no parameters")
    try:
        model = build_model(config, dtype=first.dtype)
        model.load_state_dict(params)
    except ChainruleError as e:
        raise DataError(f"{path}: the tensors do not match the model metadata: {e}") from None
    preprocessing = Preprocessing.from_arrays(arrays)
    if preprocessing.num_features != model.input_size:
        raise DataError(
            f"{path}: preprocessing is for {preprocessing.num_features} features but the model "
            f"takes {model.input_size}"
        )
    if len(classes) != model.num_classes:
        raise DataError(
            f"{path}: {len(classes)} class names for a model with {model.num_classes} outputs"
        )
    if int(np.prod(image_shape)) != model.input_size:
        raise DataError(
            f"{path}: image shape {image_shape} does not give {model.input_size} values"
        )
    for name, value in params.items():
        if not np.all(np.isfinite(value)):
            raise DataError(f"{path}: parameter {name} holds NaN or infinite values")
    return SavedModel(model, preprocessing, classes, image_shape, meta)
