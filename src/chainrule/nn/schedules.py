"""Learning-rate schedules: the rate for an epoch (counted from 0) as a factor of the base rate.

``fit`` sets ``optimizer.learning_rate = base_rate * schedule.factor(epoch)`` at the start of each
epoch. Re-exported by ``optim`` (``optim.StepDecay``).
"""

from __future__ import annotations

import math

from chainrule.engine.errors import ConfigError


class Schedule:
    """The learning rate for an epoch as a multiple of the base rate."""

    def factor(self, epoch: int) -> float:
        raise NotImplementedError


class Constant(Schedule):
    """No decay."""

    def factor(self, epoch: int) -> float:
        return 1.0


class StepDecay(Schedule):
    """Multiply the rate by ``gamma`` every ``step_size`` epochs (0.95 every epoch: the classic)."""

    def __init__(self, gamma: float, step_size: int = 1) -> None:
        if not 0 < gamma <= 1:
            raise ConfigError(f"learning-rate decay must be in (0, 1], got {gamma!r}")
        if step_size < 1:
            raise ConfigError(f"the decay step must be at least 1 epoch, got {step_size!r}")
        self.gamma, self.step_size = float(gamma), int(step_size)

    def factor(self, epoch: int) -> float:
        return self.gamma ** (epoch // self.step_size)


class CosineDecay(Schedule):
    """From the base rate down to ``min_factor`` of it along half a cosine over ``epochs``."""

    def __init__(self, epochs: int, min_factor: float = 0.0) -> None:
        if epochs < 1:
            raise ConfigError(f"cosine decay needs at least 1 epoch, got {epochs!r}")
        self.epochs, self.min_factor = int(epochs), float(min_factor)

    def factor(self, epoch: int) -> float:
        progress = min(epoch / self.epochs, 1.0)
        return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * progress))
