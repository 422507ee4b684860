"""Training on a device: the data moved there once, and the model and optimizer with it.

``fit(..., device="cuda")`` calls ``prepare``: the model's parameters and the optimizer's state go
to the GPU (``Module.to``, ``Optimizer.to``), and ``DeviceData`` copies the training rows and
labels there once, not per batch. The caller's arrays stay where they were (NumPy), so the
checks, the evaluation and the saved files are the same as on the CPU; only the steps run on the
device (``captured``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.engine.backend import cupy_module, parse_device, to_device
from chainrule.nn import Module
from chainrule.nn.optim import Optimizer


@dataclass
class DeviceData:
    """Training rows and labels on a device. X: (N, D) in the model's dtype, y: (N,) int64.

    Built with ``DeviceData.move(X, y, device)``: one copy each, made once.
    """

    X: Any
    y: Any
    device: str

    @classmethod
    def move(cls, X: np.ndarray, y: np.ndarray, device: str) -> DeviceData:
        """X (N, D) float and y (N,) integer labels, copied to ``device``. Raises DeviceError
        (backend) when CuPy or the GPU is missing."""
        return cls(to_device(X, device), to_device(np.asarray(y, dtype=np.int64), device), device)

    def __len__(self) -> int:
        return int(self.X.shape[0])


def prepare(model: Module, optimizer: Optimizer, device: str | None) -> str:
    """Move ``model`` and ``optimizer`` to ``device`` (None: where the model already is) and
    return the device's name (``"cpu"`` or ``"cuda:N"``). Raises DeviceError for an unknown
    device, or for ``"cuda"`` without CuPy or a GPU, before anything is moved."""
    if device is None:
        return model.device
    kind, index = parse_device(device)
    if kind == "cuda":
        cupy_module(device)  # the one-line error first, when there is no GPU
        device = f"cuda:{index}"
    model.to(device)
    optimizer.to(device)
    return model.device
