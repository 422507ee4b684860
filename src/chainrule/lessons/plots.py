"""Figures a person can look at: learning curves, learned weights as images, a confusion matrix.

Everything renders with matplotlib's Agg backend (no display needed) straight to PNG files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from chainrule.lessons.atomic import save_atomically
from chainrule.training.loop import History


def save_figure(fig: plt.Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG (110 dpi, cropped to its content) atomically, then close it.

    Returns ``Path(path)``; raises OSError where the folder is missing or not writable."""
    try:
        return save_atomically(
            path, lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
        )
    finally:
        plt.close(fig)


def plot_curves(history: History, path: str | Path, title: str = "") -> Path:
    """Loss per epoch (left) and train/validation accuracy per epoch (right), as a PNG at
    ``path`` (returned), with the kept (best validation) epoch marked. Raises OSError where it
    cannot be written."""
    epochs = history.epoch
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_loss.plot(epochs, history.loss, marker="o", ms=3, color="tab:red")
    ax_loss.set(xlabel="epoch", ylabel="mean training loss", title="loss")
    ax_loss.grid(alpha=0.3)
    ax_acc.plot(epochs, history.train_accuracy, marker="o", ms=3, label="train")
    ax_acc.plot(epochs, history.val_accuracy, marker="o", ms=3, label="validation")
    if history.best_epoch > 0:
        ax_acc.axvline(history.best_epoch, color="grey", ls="--", lw=1, label="kept (best val)")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_acc.grid(alpha=0.3)
    ax_acc.legend(loc="lower right")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def to_image(row: np.ndarray, image_shape: Sequence[int]) -> np.ndarray:
    """A weight row (D,) as an image (H, W[, C]) rescaled to [0, 1] for display."""
    image = np.asarray(row, dtype=np.float64).reshape(tuple(image_shape))
    low, high = image.min(), image.max()
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def show_image(
    ax: plt.Axes, image: np.ndarray, title: str | None = None, **title_style: Any
) -> None:
    """Draw an image (H, W) in grey or (H, W, 3) in colour, values in [0, 1], in ``ax``: sharp
    pixels, no ticks, ``title`` above (9 pt unless ``title_style`` says otherwise)."""
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, **{"fontsize": 9, **title_style})


def plot_templates(
    W: np.ndarray,
    image_shape: Sequence[int],
    classes: Sequence[str],
    path: str | Path,
    title: str = "class templates: the rows of W",
) -> Path:
    """A linear classifier's rows W (K, D) as K images (H, W[, C]) = image_shape, each titled
    with its class, five to a row; a PNG at ``path`` (returned)."""
    k = len(W)
    cols = min(k, 5)
    rows = math.ceil(k / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(1.9 * cols, 2.1 * rows + 0.4), squeeze=False, layout="constrained"
    )
    for i, ax in enumerate(axes.flat):
        if i < k:
            show_image(ax, to_image(W[i], image_shape), classes[i])
        else:
            ax.axis("off")
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_features(
    W1: np.ndarray,
    image_shape: Sequence[int],
    path: str | Path,
    max_units: int = 100,
    title: str = "first-layer features: rows of W1",
) -> Path:
    """A net's first-layer rows W1 (H, D) as a square grid of images of ``image_shape`` (the
    first ``max_units`` rows); a PNG at ``path`` (returned)."""
    n = min(len(W1), max_units)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(0.9 * cols + 0.5, 0.9 * rows + 0.8), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        if i < n:
            show_image(ax, to_image(W1[i], image_shape))
        else:
            ax.axis("off")
    fig.suptitle(f"{title} ({n} of {len(W1)} hidden units)")
    return save_figure(fig, path)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts (K, K) int64: row = true class, column = predicted class, for labels y_true (N,)
    and y_pred (N,) in 0..K-1 (K = num_classes); a label of K or more raises IndexError."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def plot_confusion(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    classes: Sequence[str],
    path: str | Path,
    title: str = "confusion matrix (test)",
) -> Path:
    """The confusion matrix of labels y_true (N,) and y_pred (N,) with counts in the cells (up
    to 20 classes) and class names on both axes, the accuracy in the title; a PNG at ``path``
    (returned)."""
    k = len(classes)
    matrix = confusion_matrix(y_true, y_pred, k)
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    size = max(4.5, 0.55 * k + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(k), labels=classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), labels=classes, fontsize=8)
    ax.set(xlabel="predicted class", ylabel="true class", title=f"{title}, accuracy {accuracy:.3f}")
    threshold = matrix.max() / 2 if matrix.size else 0
    if k <= 20:
        for i in range(k):
            for j in range(k):
                color = "white" if matrix[i, j] > threshold else "black"
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7, color=color)
    return save_figure(fig, path)


def plot_diagnostics(history: History, path: str | Path, title: str = "") -> Path:
    """Per epoch: update/weight ratio and gradient norm per parameter (log scales), and the
    fraction of dead or saturated hidden units, with the healthy ranges marked (an update of
    about 1e-3 of the weight per step: CS231n's rule of thumb). A PNG at ``path`` (returned).
    """
    epochs = history.epoch
    keys = list(history.epochs[0].diagnostics) if history.epochs else []
    units = [k for k in keys if k.startswith(("dead_relu/", "saturated/"))]
    panels = 3 if units else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 3.8), layout="constrained")

    def series(key: str) -> list[float]:
        return [r.diagnostics.get(key, float("nan")) for r in history.epochs]

    ax = axes[0]
    for key in (k for k in keys if k.startswith("update_ratio/")):
        ax.plot(epochs, series(key), marker="o", ms=3, label=key.split("/")[1])
    ax.axhspan(1e-4, 1e-2, color="tab:green", alpha=0.1, label="healthy (~1e-3)")
    ax.set(yscale="log", xlabel="epoch", ylabel="||update|| / ||W||", title="update / weight")
    ax.legend(fontsize=8)
    ax = axes[1]
    for key in (k for k in keys if k.startswith("grad_norm/")):
        ax.plot(epochs, series(key), marker="o", ms=3, label=key.split("/")[1])
    ax.set(yscale="log", xlabel="epoch", ylabel="||dW||", title="gradient norms (last step)")
    ax.legend(fontsize=8, ncol=2)
    if units:
        ax = axes[2]
        for key in units:
            kind, layer = key.split("/")
            label = f"{'dead ReLUs' if kind == 'dead_relu' else 'saturated'}, layer {layer}"
            ax.plot(epochs, series(key), marker="o", ms=3, label=label)
        ax.axhline(0.5, color="tab:red", ls="--", lw=1, label="warning level")
        ax.set(
            ylim=(-0.02, 1.02),
            xlabel="epoch",
            ylabel="fraction of hidden units",
            title="unit health (validation sample)",
        )
        ax.legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
