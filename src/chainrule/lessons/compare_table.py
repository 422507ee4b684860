"""The era table's rows and how the table is written: a terminal table, Markdown, JSON.

A ``RowSpec`` says what one row trains (model, inputs, settings; ``DEFAULT_ROWS`` the six of
the lesson); a ``RowResult`` what it scored; a ``Comparison`` holds them all with what they
were computed on, and writes them out. The training itself is ``compare.compare``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chainrule.training import config

# How results name the datasets (the JPEG re-encoding is not the official CIFAR-10).
DISPLAY_NAMES = {
    "cifar10-jpeg": "CIFAR-10 (JPEG)",
    "cifar10": "CIFAR-10",
    "mnist": "MNIST",
    "fashion-mnist": "Fashion-MNIST",
    "digits": "8x8 digits",
}

# The CS231n reference (official CIFAR-10, their assignment 1), for the Markdown's note.
CS231N_REFERENCE = (
    "CS231n reference on official CIFAR-10: linear SVM about 0.39 on pixels and 0.44-0.50 on "
    "features; 2-layer net about 0.52 on pixels and 0.55-0.60 on features."
)


@dataclass(frozen=True)
class RowSpec:
    """One row of the table: a model, its inputs and its training settings.

    label: the row's name in the table. model: "linear-svm", "softmax" or "two-layer" (ReLU,
    softmax loss). inputs: "pixels" or "features". lr: the learning rate; reg: the L2
    strength; epochs: passes over the training split; batch_size: rows per mini-batch;
    hidden: the 2-layer net's hidden units (0 for a linear model). lr_decay: the learning rate
    is multiplied by it after every epoch.
    """

    label: str
    model: str
    inputs: str
    lr: float
    reg: float
    epochs: int
    batch_size: int = 128
    hidden: int = 0
    lr_decay: float = 1.0

    def settings(self) -> str:
        """The settings as one short line for the table."""
        parts = []
        if self.hidden:
            parts.append(f"{self.hidden} ReLU units")
        parts += [f"lr {self.lr:g}", f"reg {self.reg:g}", f"{self.epochs} epochs"]
        parts.append(f"batch {self.batch_size}")
        if self.lr_decay != 1.0:
            parts.append(f"lr ×{self.lr_decay:g}/epoch")
        return ", ".join(parts)


# The models of the era table: the one table's (config.MODELS) without the deeper MLP.
MODELS = tuple(m for m in config.MODELS if m != "mlp")

# Chosen on the validation split of CIFAR-10 (JPEG), a few values each (see docs/tour.md).
DEFAULT_ROWS: tuple[RowSpec, ...] = (
    RowSpec("linear SVM", "linear-svm", "pixels", lr=1e-3, reg=1e-3, epochs=10),
    RowSpec("softmax", "softmax", "pixels", lr=1e-3, reg=1e-3, epochs=10),
    RowSpec("linear SVM", "linear-svm", "features", lr=1e-3, reg=1e-3, epochs=10),
    RowSpec("softmax", "softmax", "features", lr=1e-3, reg=1e-3, epochs=10),
    RowSpec(
        "2-layer net", "two-layer", "pixels", lr=0.01, reg=1e-3, epochs=20, hidden=100, lr_decay=0.9
    ),
    RowSpec(
        "2-layer net",
        "two-layer",
        "features",
        lr=0.01,
        reg=1e-3,
        epochs=20,
        hidden=500,
        lr_decay=0.9,
    ),
)


@dataclass
class RowResult:
    """A trained row: its spec, its accuracies (fractions in [0, 1]) on the test split and on
    the validation split at the kept epoch, that epoch (from 1), and the training time in
    seconds (the features not included)."""

    spec: RowSpec
    test_accuracy: float
    val_accuracy: float
    best_epoch: int
    seconds: float


COLUMNS = ("model", "input", "D", "settings", "test accuracy", "train time")


@dataclass
class Comparison:
    """The whole table, with what it was computed on: the dataset's name, its split sizes in
    images, the pixel columns, the feature blocks' columns ({"hog": 324, ...}), the seconds
    the features took (extracted or read) and whether they were read from the cache."""

    dataset: str
    n_train: int
    n_val: int
    n_test: int
    pixel_dims: int
    feature_dims: dict[str, int]
    feature_seconds: float
    features_cached: bool
    rows: list[RowResult] = field(default_factory=list)

    def _cells(self) -> list[list[str]]:
        dims = {"pixels": self.pixel_dims, "features": sum(self.feature_dims.values())}
        return [
            [
                r.spec.label,
                r.spec.inputs,
                str(dims[r.spec.inputs]),
                r.spec.settings(),
                f"{r.test_accuracy:.4f}",
                f"{r.seconds:.1f} s",
            ]
            for r in self.rows
        ]

    def features_summary(self) -> str:
        """E.g. "HOG 324 + hue 10 = 334 numbers per image, computed in 9.1 s for all 60000
        images"."""
        if not self.feature_dims:
            return "none (no row uses them)"
        names = {"hog": "HOG"}
        parts = " + ".join(f"{names.get(k, k)} {n}" for k, n in self.feature_dims.items())
        how = "read from the cache" if self.features_cached else "computed"
        total = self.n_train + self.n_val + self.n_test
        return (
            f"{parts} = {sum(self.feature_dims.values())} numbers per image, "
            f"{how} in {self.feature_seconds:.1f} s for all {total} images"
        )

    def features_line(self) -> str:
        """The features' summary as the terminal table's second line."""
        return f"features: {self.features_summary()}"

    def header_line(self) -> str:
        """The dataset and its split sizes, the terminal table's first line."""
        return (
            f"{self.dataset}: {self.n_train} training, {self.n_val} validation, "
            f"{self.n_test} test images"
        )

    def table(self) -> str:
        """A fixed-width text table for the terminal."""
        cells = self._cells()
        widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(COLUMNS)]
        right = {2, 4, 5}

        def line(values: Sequence[str]) -> str:
            return "  ".join(
                v.rjust(w) if i in right else v.ljust(w)
                for i, (v, w) in enumerate(zip(values, widths))
            ).rstrip()

        return "\n".join(
            [self.header_line(), self.features_line(), "", line(COLUMNS)]
            + [line(["-" * w for w in widths])]
            + [line(row) for row in cells]
        )

    def markdown(self) -> str:
        """The table as Markdown, with the setup above it."""
        name = DISPLAY_NAMES.get(self.dataset, self.dataset)
        lines = [
            f"# Pixels vs hand-designed features: {name}",
            "",
            f"{self.n_train} training, {self.n_val} validation and {self.n_test} test images. "
            "Every row: SGD with momentum 0.9, the hinge (SVM) or softmax loss, L2 on the "
            "weights, the best-validation epoch kept, scored once on the test split. Train time "
            "is the training alone (features are computed once, before).",
            "",
            "- **Pixels**: the rows as `chainrule.data.load` gives them (scaled to [0, 1], "
            "centred with the training mean).",
            "- **Features**: HOG of the grayscale image (4x4 cells, 9 orientations, 2x2 blocks, "
            "L2-Hys), plus for colour images a 10-bin hue histogram weighted by saturation; "
            "standardized with the training mean and std. " + self.features_summary() + ".",
            "",
            "| " + " | ".join(COLUMNS) + " |",
            "| --- | --- | ---: | --- | ---: | ---: |",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in self._cells()]
        if self.dataset.startswith("cifar10"):
            lines += ["", CS231N_REFERENCE]
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        """Every field as plain JSON types, each row with its settings line added."""
        obj = dataclasses.asdict(self)
        for row in obj["rows"]:
            row["settings"] = RowSpec(**row["spec"]).settings()
        return obj
