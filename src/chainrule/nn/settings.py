"""The checks of the optimizers' numbers (learning rate, momentum, betas, eps, weight_decay): one
line naming the setting, as a ConfigError, before any training starts."""

from __future__ import annotations

import math

import numpy as np

from chainrule.engine.errors import ConfigError


def positive(name: str, value: float) -> float:
    """value as a float; ConfigError naming ``name`` unless it is a finite number > 0."""
    if not (isinstance(value, (int, float, np.floating)) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def fraction(name: str, value: float) -> float:
    """value as a float; ConfigError naming ``name`` unless it lies in [0, 1)."""
    if not (isinstance(value, (int, float, np.floating)) and 0 <= value < 1):
        raise ConfigError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


def decay_rate(value: float) -> float:
    """weight_decay as a float; ConfigError unless it is a finite number >= 0."""
    ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and value >= 0):
        raise ConfigError(f"weight_decay must be a number >= 0, got {value!r}")
    return float(value)
