"""Gradient check of a whole model: every parameter, against centred differences, in float64."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.engine.gradcheck import GradcheckReport, gradcheck
from chainrule.engine.tensor import Tensor
from chainrule.nn import build_model
from chainrule.nn.losses import LOSSES, l2_penalty
from chainrule.training.config import TrainConfig


def check_model(
    config: TrainConfig, batch: int = 8, reg: float = 0.1, seed: int = 0
) -> GradcheckReport:
    """Build the model ``config`` names on ``batch`` rows of the 8x8 digits and check the
    gradient of (data loss + reg * sum W^2, the weights only) with respect to every parameter
    against centred differences (``engine.gradcheck``), all in float64.

    X: (batch, 64) float64, pixels / 16 - 0.3; y: (batch,) labels 0..9; the rows and the
    elements checked are drawn with ``seed``, the weights with the config's own seed.
    Returns the report, one entry per parameter. Raises ValueError when ``batch`` is above the
    1797 digits (the command line refuses that first).
    """
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    digits = load_digits()
    rows = rng.choice(len(digits.target), size=batch, replace=False)
    X = digits.data[rows] / 16.0 - 0.3
    y = digits.target[rows]
    model = build_model(config.model_config(X.shape[1], 10), config.weights_rng())
    params = dict(model.named_parameters())
    for p in params.values():
        p.data = p.data.astype(np.float64)
    loss_fn = LOSSES[config.loss_name]
    names = list(params)

    def f(*tensors: Tensor) -> Tensor:
        for name, t in zip(names, tensors):
            _set(model, name, t)
        return loss_fn(model(Tensor(X)), y) + l2_penalty([t for t in tensors if t.ndim >= 2], reg)

    try:
        return gradcheck(f, [params[n].data for n in names], names=names, rng=rng)
    finally:
        for name, p in params.items():
            _set(model, name, p)


def _set(model: Any, dotted: str, value: Tensor) -> None:
    """Put ``value`` where the dotted parameter name (``W1``, ``layers.0.W``) points."""
    *path, leaf = dotted.split(".")
    owner = model
    for part in path:
        owner = owner[int(part)] if part.isdigit() else getattr(owner, part)
    setattr(owner, leaf, value)


def report_json(report: GradcheckReport) -> dict[str, Any]:
    """The report as a JSON-able dict (what ``chainrule gradcheck --json`` prints): ok,
    max_rel_error, tolerance, forward_passes, seconds_numerical, seconds_analytic, and per
    parameter its name, shape, elements checked, errors and ok."""
    return {
        "ok": report.ok,
        "max_rel_error": report.max_rel_error,
        "tolerance": report.tol,
        "forward_passes": report.forward_passes,
        "seconds_numerical": report.seconds_numerical,
        "seconds_analytic": report.seconds_analytic,
        "parameters": [
            {
                "name": c.name,
                "shape": list(c.shape),
                "checked": c.checked,
                "max_abs_error": c.max_abs_error,
                "max_rel_error": c.max_rel_error,
                "ok": c.ok,
            }
            for c in report.inputs
        ],
    }
