"""The benchmark cases and the time-to-accuracy recipe, shared by the parent and its children.

A case fixes everything the contenders must agree on: the data, the layer sizes, the batch size,
the optimizer (plain SGD), its learning rate and the L2 strength. The learning rates only need to
keep training stable (chainrule stops on a non-finite loss); speed does not depend on them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Case:
    """One speed case. hidden_size None: the linear softmax classifier (D -> K)."""

    name: str
    title: str
    dataset: str  # a name for chainrule.data.load
    input_size: int
    hidden_size: int | None
    num_classes: int
    batch_size: int
    learning_rate: float
    reg: float

    @property
    def architecture(self) -> str:
        sizes = [self.input_size, self.hidden_size, self.num_classes]
        return "-".join(str(s) for s in sizes if s is not None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


CASES: dict[str, Case] = {
    c.name: c
    for c in (
        Case(
            "fmnist-128", "Fashion-MNIST, batch 128", "fashion-mnist", 784, 512, 10, 128, 1e-2, 1e-4
        ),
        Case(
            "fmnist-256", "Fashion-MNIST, batch 256", "fashion-mnist", 784, 512, 10, 256, 1e-2, 1e-4
        ),
        Case(
            "cifar-200",
            "CIFAR-10 (JPEG), batch 200",
            "cifar10-jpeg",
            3072,
            1000,
            10,
            200,
            1e-3,
            1e-4,
        ),
        Case(
            "cifar-linear",
            "CIFAR-10 (JPEG), linear softmax, batch 200",
            "cifar10-jpeg",
            3072,
            None,
            10,
            200,
            1e-3,
            1e-4,
        ),
    )
}

# The quick run's cases: one MLP and the linear classifier, so every contender's two code paths
# (hidden layer or not) run.
QUICK_CASES = ("fmnist-128", "cifar-linear")


@dataclass(frozen=True)
class AccuracyRecipe:
    """One recipe that chainrule and torch both follow until the test accuracy reaches a target."""

    dataset: str = "fashion-mnist"
    input_size: int = 784
    hidden_size: int = 512
    num_classes: int = 10
    batch_size: int = 128
    optimizer: str = "adam"  # lr 1e-3, betas (0.9, 0.999), eps 1e-8 in both libraries
    learning_rate: float = 1e-3
    reg: float = 0.0
    target: float = 0.89
    max_epochs: int = 30

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
