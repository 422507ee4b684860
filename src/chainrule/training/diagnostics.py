"""Training health, measured once per epoch: is the net learning, or quietly broken?

- update ratio ||dW_step|| / ||W|| per weight: about 1e-3 is healthy; far above, the learning rate
  is too high (weights are being thrown around); far below, too low (nothing moves).
- gradient norm ||dW|| per weight: vanishing or exploding gradients show here first.
- dead ReLUs: hidden units that output 0 for every example of a sample; they get no gradient
  and never recover.
- saturated sigmoid/tanh units: outputs pinned at their limits, where the local gradient is ~0.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from chainrule.nn import MLP, Module, ReLU, Sigmoid, Tanh

if TYPE_CHECKING:
    from chainrule.training.history import History

UPDATE_RATIO_RANGE = (1e-5, 1e-1)  # healthy: around 1e-3; warn only when far outside
DEAD_LIMIT = 0.5
SATURATED_LIMIT = 0.5


def update_ratios(
    names: Sequence[str], before: Sequence[np.ndarray], after: Sequence[np.ndarray]
) -> dict[str, float]:
    """||after - before|| / ||before|| for each named weight (arrays of any shape)."""
    ratios = {}
    for name, b, a in zip(names, before, after):
        scale = float(np.linalg.norm(b))
        ratios[f"update_ratio/{name}"] = float(np.linalg.norm(a - b)) / scale if scale else 0.0
    return ratios


def gradient_norms(names: Sequence[str], grads: Sequence[np.ndarray | None]) -> dict[str, float]:
    """||dW|| for each named parameter (0 where there is no gradient)."""
    return {
        f"grad_norm/{n}": float(np.linalg.norm(g)) if g is not None else 0.0
        for n, g in zip(names, grads)
    }


def unit_health(model: Module, X_sample: np.ndarray) -> dict[str, float]:
    """For each hidden layer of an MLP on rows X_sample (N, D): the fraction of dead ReLUs, or
    of saturated sigmoid/tanh outputs. Empty for models without hidden layers."""
    if not isinstance(model, MLP) or model.num_layers < 2 or len(X_sample) == 0:
        return {}
    health = {}
    for i, h in enumerate(model.hidden_activations(X_sample), start=1):
        if isinstance(model.activation, ReLU):
            health[f"dead_relu/{i}"] = float(np.mean(~(h > 0).any(axis=0)))
        elif isinstance(model.activation, Tanh):
            health[f"saturated/{i}"] = float(np.mean(np.abs(h) > 0.99))
        elif isinstance(model.activation, Sigmoid):
            health[f"saturated/{i}"] = float(np.mean((h < 0.01) | (h > 0.99)))
    return health


@dataclass(frozen=True)
class HealthWarning:
    """One diagnostic outside its healthy range. kind: what repeats from epoch to epoch (e.g.
    ``update_ratio/W1/high``); text: the line for the user, with the value and likely cause."""

    kind: str
    text: str


# kind -> (what happened, said of the epochs it happened in; the likely cause)
_SUMMARY = {
    "update_ratio/high": (
        "the update of {where} was above {high:.0e} of its size",
        "the learning rate is likely too high",
    ),
    "update_ratio/low": (
        "the update of {where} was below {low:.0e} of its size at the base learning rate",
        "the learning rate is likely too low",
    ),
    "dead_relu": (
        "more than half the ReLUs in hidden layer {where} were dead",
        "lower the learning rate or check the initialization",
    ),
    "saturated": (
        "more than half the units in hidden layer {where} were saturated",
        "scale the inputs or the initial weights down",
    ),
}


def health_warnings(diagnostics: dict[str, float], lr_factor: float = 1.0) -> list[HealthWarning]:
    """The diagnostics of one epoch that are outside their healthy range.

    lr_factor: the epoch's learning rate over the base rate (the schedule's factor). An update is
    judged too small at the base rate (its ratio divided by lr_factor), so a schedule that decays
    on purpose (cosine ends near 0) is not taken for a learning rate set too low.
    """
    warnings = []
    low, high = UPDATE_RATIO_RANGE
    for key, value in diagnostics.items():
        kind, _, where = key.partition("/")
        if kind == "update_ratio" and value > high:
            warnings.append(
                HealthWarning(
                    f"{key}/high",
                    f"the update of {where} is {value:.1e} of its size (healthy ~1e-3): the "
                    "learning rate is likely too high",
                )
            )
        elif kind == "update_ratio" and 0 < value / max(lr_factor, 1e-300) < low:
            warnings.append(
                HealthWarning(
                    f"{key}/low",
                    f"the update of {where} is {value:.1e} of its size (healthy ~1e-3): the "
                    "learning rate is likely too low",
                )
            )
        elif kind == "dead_relu" and value > DEAD_LIMIT:
            warnings.append(
                HealthWarning(
                    key,
                    f"{value:.0%} of the ReLUs in hidden layer {where} are dead (never active on "
                    "the sample): lower the learning rate or check the initialization",
                )
            )
        elif kind == "saturated" and value > SATURATED_LIMIT:
            warnings.append(
                HealthWarning(
                    key,
                    f"{value:.0%} of the units in hidden layer {where} are saturated (gradient "
                    "~0): scale the inputs or the initial weights down",
                )
            )
    return warnings


def warnings_for(diagnostics: dict[str, float], epoch: int, lr_factor: float = 1.0) -> list[str]:
    """One line for each diagnostic outside the healthy range, naming the likely cause."""
    return [f"warning: epoch {epoch}: {w.text}" for w in health_warnings(diagnostics, lr_factor)]


def _epoch_warnings(history: History, base_lr: float) -> Iterator[tuple[int, HealthWarning]]:
    for record in history.epochs:
        factor = record.learning_rate / base_lr if base_lr else 1.0
        for warning in health_warnings(record.diagnostics, factor):
            yield record.epoch, warning


def warning_kinds(history: History, base_lr: float) -> set[str]:
    """The kinds of warning the epochs of ``history`` raised (base_lr: the unscheduled rate)."""
    return {warning.kind for _, warning in _epoch_warnings(history, base_lr)}


def summarize_warnings(history: History, base_lr: float) -> list[str]:
    """One line per kind of warning over a whole run: what, in how many epochs, from when."""
    epochs: dict[str, list[int]] = {}
    for epoch, warning in _epoch_warnings(history, base_lr):
        epochs.setdefault(warning.kind, []).append(epoch)
    low, high = UPDATE_RATIO_RANGE
    lines = []
    for kind, seen in epochs.items():
        name, _, rest = kind.partition("/")
        where, _, direction = rest.partition("/")
        what, cause = _SUMMARY[f"{name}/{direction}" if direction else name]
        lines.append(
            f"{what.format(where=where, low=low, high=high)} in {len(seen)} of {len(history)} "
            f"epochs (first in epoch {seen[0]}): {cause}"
        )
    return lines


def final_warnings(model: Module, X_sample: np.ndarray) -> list[str]:
    """Warnings about the model a run kept, on rows X_sample (N, D): a hidden layer whose ReLUs
    are all dead passes nothing on, so the model gives every input the same scores."""
    lines = []
    with np.errstate(all="ignore"):
        health = unit_health(model, X_sample)
    for key, value in health.items():
        kind, _, where = key.partition("/")
        if kind == "dead_relu" and value == 1.0:
            lines.append(
                f"every ReLU in hidden layer {where} of the kept model is dead (none is active on "
                f"{len(X_sample)} validation images): it gives every image the same class; "
                "lower the learning rate (--lr) and train again"
            )
    return lines
