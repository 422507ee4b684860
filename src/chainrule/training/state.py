"""The state of a training run: what ``fit`` and its hooks share (``Run``), the part of it a
checkpoint saves (``TrainState``), and the checkpoint file itself.

A checkpoint holds the model, the best-validation copy and the optimizer's state as tensors, and
the rest (epoch, step, partial sums, the random generator's states, the history) as metadata of
one safetensors file (``data.files``), so that a resumed run continues bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from chainrule.data import files
from chainrule.engine.errors import ChainruleError, DataError
from chainrule.nn import Module
from chainrule.nn.losses import LossFn
from chainrule.nn.optim import Optimizer, Schedule
from chainrule.training.history import History

if TYPE_CHECKING:
    from chainrule.training.hooks import Hook


class Data(Protocol):
    """What ``fit`` needs of a dataset: float rows X (N, D) and integer labels y (N,) for
    training and validation."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray


@dataclass
class Splits:
    """The plainest Data: training and validation arrays, X (N, D) float, y (N,) int."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray


@dataclass
class TrainState:
    """Everything a resumed run needs beyond the model and optimizer.

    best: the best-validation parameters (name -> array). epoch: epochs done; step: steps done
    in the epoch under way (0 between epochs). loss_sum: the epoch's summed loss so far (loss x
    batch rows); epoch_seconds: its training seconds before an interruption.
    rng_at_epoch_start: the generator's state when the epoch began (its order is drawn again on
    resume). diagnostics: of the epoch's last step.
    """

    history: History
    best: dict[str, np.ndarray]
    epoch: int = 0
    step: int = 0
    loss_sum: float = 0.0
    epoch_seconds: float = 0.0
    rng_at_epoch_start: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, float] = field(default_factory=dict)


@dataclass
class Run:
    """One call of ``fit``: its settings, its state, and its hooks.

    Hooks read it; the one field they write is ``stop_signal`` (a signal number): the loop then
    ends the run after the current step, as ``StopOnSignal`` does on SIGINT/SIGTERM.
    sample: the sorted training rows whose accuracy is scored each epoch.
    checkpoint: the file a ``Checkpoint`` hook writes (and ``resume`` reads), or None.
    fast: on a GPU, the CUDA-graph steps that run all but each epoch's last step; else None.
    ``fit`` sets every field; the defaults only spare a Run made by hand the ones it ignores.
    """

    model: Module
    data: Data
    loss: LossFn
    optimizer: Optimizer
    rng: np.random.Generator
    schedule: Schedule
    epochs: int
    batch_size: int
    reg: float
    augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None
    patience: int | None = None
    sample: np.ndarray = field(default_factory=lambda: np.arange(0))
    base_learning_rate: float = 1.0
    state: TrainState = field(default_factory=lambda: TrainState(History(), {}))
    hooks: list[Hook] = field(default_factory=list)
    checkpoint: Path | None = None
    stop_signal: int | None = None
    fast: Any = None  # on a GPU, the captured steps (training.captured.CapturedSteps)

    @property
    def steps_per_epoch(self) -> int:
        """ceil(N / batch_size): the last batch of an epoch may be smaller."""
        return -(-len(self.data.X_train) // self.batch_size)


def save_checkpoint(
    path: Path, state: TrainState, model: Module, optimizer: Optimizer, rng_state: dict[str, Any]
) -> None:
    """Write the training state to ``path`` atomically (safetensors; ``files.save_arrays``).
    rng_state: the generator's ``bit_generator.state`` now. Raises OSError on a failed write."""
    arrays = {f"model.{k}": v for k, v in model.state_dict().items()}
    arrays.update({f"best.{k}": v for k, v in state.best.items()})
    arrays.update({f"optimizer.{k}": np.asarray(v) for k, v in optimizer.state_dict().items()})
    meta = {
        "epoch": state.epoch,
        "step": state.step,
        "loss_sum": state.loss_sum,
        "epoch_seconds": state.epoch_seconds,
        "rng_at_epoch_start": state.rng_at_epoch_start,
        "rng_state": rng_state,
        "diagnostics": state.diagnostics,
        "history": state.history.to_json(),
        "model": model.config(),
    }
    files.save_arrays(path, arrays, meta)


def load_checkpoint(
    path: Path, model: Module, optimizer: Optimizer, rng: np.random.Generator, base_lr: float
) -> TrainState:
    """Read a checkpoint into ``model``, ``optimizer`` (its learning rate set back to base_lr)
    and ``rng``; return the rest. Raises DataError for a checkpoint of another model or
    optimizer, or one whose training state is missing or garbled."""
    arrays, meta = files.load_arrays(path)
    if meta.get("model") != model.config():
        raise DataError(
            f"the checkpoint {path} is for model {meta.get('model')}, not {model.config()} "
            "(were the run's settings changed?)"
        )

    def section(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}

    try:
        model.load_state_dict(section("model."))
        optimizer.load_state_dict(section("optimizer."))
    except (ChainruleError, KeyError, ValueError) as e:
        raise DataError(
            f"the checkpoint {path} does not fit this {type(optimizer).__name__} optimizer and "
            f"model (missing or mismatched {e}; were the run's settings changed?)"
        ) from None
    optimizer.learning_rate = base_lr
    try:
        state = TrainState(
            history=History.from_json(meta["history"]),
            best=section("best."),
            epoch=meta["epoch"],
            step=meta["step"],
            loss_sum=meta["loss_sum"],
            epoch_seconds=meta["epoch_seconds"],
            rng_at_epoch_start=meta["rng_at_epoch_start"],
            diagnostics=meta.get("diagnostics", {}),
        )
        rng.bit_generator.state = meta["rng_state"]
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(
            f"the checkpoint {path} lacks or garbles its training state ({e})"
        ) from None
    return state


def checkpoint_history(path: str | Path) -> History:
    """The history stored in a training checkpoint (DataError when it has none or a bad one)."""
    _, meta = files.load_arrays(path)
    try:
        return History.from_json(meta["history"])
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"the checkpoint {path} lacks or garbles its history ({e})") from None
