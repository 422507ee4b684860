"""What training records: one ``EpochRecord`` per epoch, the ``History`` of a run, and the
metrics CSV a run folder keeps of it (one row per epoch, ``write_metrics_row``)."""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class EpochRecord:
    """One epoch: mean training loss (data loss + the L2 penalty, per example), accuracies in
    [0, 1], the learning rate used, the seconds of training (scoring excluded), and the health
    ``diagnostics`` (``training.diagnostics``: name -> value)."""

    epoch: int
    loss: float
    train_accuracy: float
    val_accuracy: float
    learning_rate: float
    seconds: float
    diagnostics: dict[str, float] = field(default_factory=dict)


@dataclass
class History:
    """Every epoch's record, and which epoch gave the parameters that were kept.

    ``history.loss``, ``history.val_accuracy``...: one list per column of EpochRecord.
    best_epoch counts from 1 (-1 before any epoch); stopped_early: by ``fit(patience=...)``,
    before the last planned epoch.
    """

    epochs: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = -1
    best_val_accuracy: float = -1.0
    stopped_early: bool = False

    def __getattr__(self, name: str) -> list[Any]:
        if name in EpochRecord.__dataclass_fields__:
            return [getattr(r, name) for r in self.epochs]
        raise AttributeError(name)

    def __len__(self) -> int:
        return len(self.epochs)

    def _repr_html_(self) -> str:  # Jupyter's rich display
        from chainrule.training.display import history_html

        return history_html(self)

    def to_json(self) -> dict[str, Any]:
        """The history as plain JSON values (what a checkpoint's metadata stores)."""
        return {
            "epochs": [dataclasses.asdict(r) for r in self.epochs],
            "best_epoch": self.best_epoch,
            "best_val_accuracy": self.best_val_accuracy,
            "stopped_early": self.stopped_early,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> History:
        """The inverse of ``to_json``. Raises KeyError or TypeError for a malformed object."""
        return cls(
            [EpochRecord(**r) for r in obj["epochs"]],
            obj["best_epoch"],
            obj["best_val_accuracy"],
            obj.get("stopped_early", False),
        )


def write_metrics_row(path: Path, record: EpochRecord) -> None:
    """Append one epoch to a metrics CSV (header first if the file is new); the diagnostics
    become columns of their own. Raises OSError when the file cannot be written."""
    row = dataclasses.asdict(record)
    diagnostics = row.pop("diagnostics")
    row.update(diagnostics)
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
