"""Looking at what a trained model learned: its weights as images.

A linear classifier has one row of W per class: a template, the direction in image space that
raises that class's score fastest, so it looks like a blurred average of its class (often a
two-headed horse: one template must cover every pose). A 2-layer net's first layer has many
rows, each a feature that the second layer mixes, so no single row has to look like a whole
class. Rows are flattened images in (H, W[, C]) order; each is rescaled to [0, 1] on its own for
display.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import nn
from chainrule.engine.errors import ConfigError, DataNotFoundError
from chainrule.lessons import plots
from chainrule.lessons.atomic import save_atomically
from chainrule.training import checkpoints

TEMPLATE_PIXELS = 128  # a saved template is upscaled (nearest neighbour) to about this size


def model_file(run: str | Path) -> Path:
    """The model file of a run folder (or the file itself). Raises DataNotFoundError where
    there is none."""
    path = Path(run)
    path = path / checkpoints.MODEL_FILE if path.is_dir() else path
    if not path.is_file():
        raise DataNotFoundError(f"no model at {path}: expected a run folder written by train")
    return path


def file_names(classes: Sequence[str]) -> list[str]:
    """A safe, unique file stem per class name ("T-shirt/top" -> "T-shirt_top")."""
    stems: list[str] = []
    for i, name in enumerate(classes):
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._") or f"class{i}"
        stems.append(stem if stem not in stems else f"{stem}_{i}")
    return stems


def upscale(image: np.ndarray, size: int = TEMPLATE_PIXELS) -> np.ndarray:
    """An image (H, W[, C]) in [0, 1] -> uint8, each pixel repeated to make it about ``size`` px
    on its longer side (nearest neighbour: the pixels stay sharp squares)."""
    factor = max(1, round(size / max(image.shape[:2])))
    big = np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)
    return np.round(np.clip(big, 0, 1) * 255).astype(np.uint8)


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """A uint8 image (H, W) or (H, W, 3) as a PNG, written atomically; returns its path.
    Raises OSError where the folder is missing or not writable."""
    from PIL import Image

    return save_atomically(path, lambda f: Image.fromarray(image).save(f, format="PNG"))


def save_templates(
    W: np.ndarray, image_shape: Sequence[int], classes: Sequence[str], folder: str | Path
) -> list[Path]:
    """One PNG per class, ``folder/<class>.png`` (folder made if missing): the rows of W (K, D)
    as images of ``image_shape`` upscaled to about TEMPLATE_PIXELS px. Returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [
        save_png(upscale(plots.to_image(row, image_shape)), folder / f"{stem}.png")
        for row, stem in zip(W, file_names(classes))
    ]


@dataclass
class Shown:
    """What ``show_run`` wrote: the kind of picture and the files."""

    kind: str  # "templates" or "features"
    paths: list[Path] = field(default_factory=list)


def _title(saved: checkpoints.SavedModel, run: Path) -> str:
    dataset = saved.meta.get("dataset", "")
    summary = run.parent / "summary.json" if run.is_file() else run / "summary.json"
    kind = "linear classifier" if isinstance(saved.model, nn.LinearClassifier) else "2-layer net"
    if isinstance(saved.model, nn.MLP) and saved.model.num_layers > 2:
        kind = f"{saved.model.num_layers}-layer net"
    title = f"{kind} on {dataset}" if dataset else kind
    if summary.is_file():
        try:
            accuracy = json.loads(summary.read_text())["test_accuracy"]
            title += f", test accuracy {accuracy:.3f}"
        except (ValueError, KeyError, TypeError):
            pass
    return title


def show_run(run: str | Path, out: str | Path | None = None) -> Shown:
    """Save a run's weights as images into ``out`` (default: the run folder).

    Linear model: ``templates/<class>.png`` (one upscaled template per class) and
    ``templates.png`` (all of them, titled). Net: ``features.png``, a grid of the first layer's
    rows W1 (H, D). Raises DataNotFoundError for a run without a model, DataError for an
    unreadable one, ConfigError for a model of another kind.
    """
    path = model_file(run)
    saved = checkpoints.load_model(path)
    out = Path(out) if out is not None else path.parent
    out.mkdir(exist_ok=True)  # one level: a missing folder above it is the caller's mistake
    title = _title(saved, Path(run))
    if isinstance(saved.model, nn.LinearClassifier):
        W = saved.model.W.data
        paths = save_templates(W, saved.image_shape, saved.classes, out / "templates")
        paths.append(
            plots.plot_templates(
                W, saved.image_shape, saved.classes, out / "templates.png", f"{title}: templates"
            )
        )
        return Shown("templates", paths)
    if isinstance(saved.model, nn.MLP):
        grid = plots.plot_features(
            saved.model.W1.data, saved.image_shape, out / "features.png", title=f"{title}: W1"
        )
        return Shown("features", [grid])
    raise ConfigError(f"cannot show a model of type {type(saved.model).__name__}")


def plot_side_by_side(linear_run: str | Path, net_run: str | Path, path: str | Path) -> Path:
    """One figure: a linear run's templates (left) next to a net run's first-layer features
    (right, up to 50 units), for runs on data of the same image shape; a PNG at ``path``.

    The runs may come in either order. Raises ConfigError unless one is linear (linear-svm,
    softmax) and the other a net, DataNotFoundError for a run without a model."""
    import matplotlib.pyplot as plt

    linear, net = (
        checkpoints.load_model(model_file(linear_run)),
        checkpoints.load_model(model_file(net_run)),
    )
    if not isinstance(linear.model, nn.LinearClassifier):
        linear, net, linear_run, net_run = net, linear, net_run, linear_run
    if not isinstance(linear.model, nn.LinearClassifier) or not isinstance(net.model, nn.MLP):
        raise ConfigError("--compare needs one linear run (linear-svm, softmax) and one net run")
    k = len(linear.classes)
    units = min(50, len(net.model.W1.data))
    t_cols = 2 if k > 4 else 1
    t_rows = math.ceil(k / t_cols)
    # as many rows of features as of templates (at least a roughly 2:1 grid): equal cells
    rows = max(t_rows, math.ceil(math.sqrt(units / 2)))
    f_cols = math.ceil(units / rows)
    # One grid, templates | a spacer column | features, so that every cell has the same size.
    fig, axes = plt.subplots(
        rows,
        t_cols + 1 + f_cols,
        figsize=(1.2 * (t_cols + 1 + f_cols), 1.3 * rows + 1.2),
        squeeze=False,
        gridspec_kw={"width_ratios": [1] * t_cols + [0.3] + [1] * f_cols},
    )
    for ax in axes.flat:
        ax.axis("off")
    W, W1 = linear.model.W.data, net.model.W1.data
    for i, ax in enumerate(axes[:t_rows, :t_cols].flat[:k]):
        _cell(ax, plots.to_image(W[i], linear.image_shape), linear.classes[i])
    for i, ax in enumerate(axes[:, t_cols + 1 :].flat[:units]):
        _cell(ax, plots.to_image(W1[i], net.image_shape))
    fig.subplots_adjust(top=1 - 1.0 / (1.3 * rows + 1.2), hspace=0.25, wspace=0.1)
    what = f"one template per class ({k} rows of W)"
    _group_title(fig, axes[:t_rows, :t_cols], _title(linear, Path(linear_run)), what)
    what = f"first-layer features ({units} of {len(W1)} rows of W1)"
    _group_title(fig, axes[:, t_cols + 1 :], _title(net, Path(net_run)), what)
    return plots.save_figure(fig, path)


def _cell(ax: Any, image: np.ndarray, title: str | None = None) -> None:
    """One image of the side-by-side grid, framed, with its class name above (templates)."""
    ax.axis("on")
    plots.show_image(ax, image, title, fontsize=8, pad=2)


def _group_title(fig: Any, grid: Any, title: str, what: str) -> None:
    """The run's title and what its images are, centred over its block of axes ``grid``."""
    left = grid[0, 0].get_position().x0
    right = grid[0, -1].get_position().x1
    title = title.replace(", test", ",\ntest", 1)
    fig.text((left + right) / 2, 0.995, f"{title}\n{what}", ha="center", va="top", fontsize=10)
