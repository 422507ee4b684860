"""Training health, measured once per epoch: is the net learning, or quietly broken?

- update ratio ||dW_step|| / ||W|| per weight: about 1e-3 is healthy; far above, the learning rate
  is too high (weights are being thrown around); far below, too low (nothing moves).
- gradient norm ||dW|| per weight: vanishing or exploding gradients show here first.
- dead ReLUs: hidden units that output 0 for every example of a sample; they get no gradient
  and never recover.
- saturated sigmoid/tanh units: outputs pinned at their limits, where the local gradient is ~0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from chainrule.nn import MLP, Module, ReLU, Sigmoid, Tanh

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


def warnings_for(diagnostics: dict[str, float], epoch: int) -> list[str]:
    """One line for each diagnostic outside the healthy range, naming the likely cause."""
    lines = []
    low, high = UPDATE_RATIO_RANGE
    head = f"warning: epoch {epoch}:"
    for key, value in diagnostics.items():
        kind, _, where = key.partition("/")
        if kind == "update_ratio" and (value > high or 0 < value < low):
            lines.append(
                f"{head} the update of {where} is {value:.1e} of its size (healthy ~1e-3): the "
                f"learning rate is likely too {'high' if value > high else 'low'}"
            )
        elif kind == "dead_relu" and value > DEAD_LIMIT:
            lines.append(
                f"{head} {value:.0%} of the ReLUs in hidden layer {where} are dead (never active "
                "on the sample): lower the learning rate or check the initialization"
            )
        elif kind == "saturated" and value > SATURATED_LIMIT:
            lines.append(
                f"{head} {value:.0%} of the units in hidden layer {where} are saturated "
                "(gradient ~0): scale the inputs or the initial weights down"
            )
    return lines
