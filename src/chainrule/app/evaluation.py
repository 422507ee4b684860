"""Reading a run back: its saved model scored again on its dataset's splits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from chainrule.app.prepare import load_data, read_config
from chainrule.engine.errors import DataError, DataNotFoundError
from chainrule.training import checkpoints


def evaluate_run(run_dir: str | Path, data_dir: str | None = None) -> dict[str, Any]:
    """Score a saved run's model again on its dataset's validation and test splits.

    Returns run_dir, dataset, val_accuracy, test_accuracy, n_test and per_class: for each class
    (in order) its precision, recall, F1 and support on the test split (scikit-learn's
    ``precision_recall_fscore_support``; 0 where a class is never predicted).
    """
    from sklearn.metrics import precision_recall_fscore_support

    run_dir = Path(run_dir)
    config = read_config(run_dir)
    if data_dir is not None:
        config.data_dir = data_dir
    if not (run_dir / checkpoints.MODEL_FILE).exists():
        then = (
            f"chainrule train --resume {run_dir} continues it"
            if (run_dir / checkpoints.CHECKPOINT_FILE).exists()
            else f"start it again with chainrule train --out {run_dir}"
        )
        raise DataNotFoundError(f"{run_dir} has no model yet: no epoch has finished ({then})")
    saved = checkpoints.load_model(run_dir / checkpoints.MODEL_FILE)
    data = load_data(config)
    saved_mean = saved.preprocessing.mean
    if saved_mean.shape != data.preprocessing.mean.shape or not np.array_equal(
        saved_mean, data.preprocessing.mean
    ):
        raise DataError(
            f"the {config.dataset} data differ from the data {run_dir} was trained on "
            "(their training means disagree)"
        )
    with np.errstate(all="ignore"):
        val_pred = saved.model.predict(data.X_val)
        test_pred = saved.model.predict(data.X_test)
    labels = list(range(len(saved.classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        data.y_test, test_pred, labels=labels, zero_division=0
    )
    per_class = [
        {
            "class": name,
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(saved.classes)
    ]
    return {
        "run_dir": str(run_dir),
        "dataset": data.name,
        "val_accuracy": float(np.mean(val_pred == data.y_val)),
        "test_accuracy": float(np.mean(test_pred == data.y_test)),
        "n_test": len(data.y_test),
        "per_class": per_class,
    }
