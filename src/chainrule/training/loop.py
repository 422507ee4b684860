"""Training: the cycle of the track, epoch after epoch.

forward pass -> loss (data loss + reg * sum W^2) -> backward pass for every weight ->
optimizer step (W <- W - lr * dW for SGD) -> the next mini-batch. Each epoch visits every training
example once, in a fresh random order drawn from ``rng``.

In pieces, as CS231n's Solver is: ``train_step`` (one mini-batch), ``train_epoch`` (one pass,
then ``check_accuracy``; all three in ``training.epoch``), ``fit`` (here: the epochs, keeping
the best). Everything else a run does
(checkpoints, stopping on a signal, progress, warnings, metrics files) is a hook
(``training.hooks``) that ``fit`` calls at fixed points.

``fit(hooks=[...])`` takes them as they are. Its older keywords stand for hooks, added before
the given ones: ``checkpoint=`` a ``Checkpoint``, ``log=`` a ``HealthLog`` (a warning line the
first time a diagnostic leaves its healthy range), ``on_epoch=`` an ``EpochCallback`` (what it
raises propagates, after the epoch's checkpoint), ``progress=True`` a ``Progress``. Without
``hooks``, fit also stops on SIGINT/SIGTERM after the current step (``StopOnSignal``:
TrainingInterrupted, with a checkpoint when it has a place for one), and progress is on unless
``progress=False``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from chainrule.engine.errors import ConfigError, DataError, ShapeError
from chainrule.nn import Module
from chainrule.nn.losses import LossFn, softmax_loss
from chainrule.nn.optim import SGD, Constant, Optimizer, Schedule
from chainrule.training import captured
from chainrule.training import hooks as hooks_
from chainrule.training.config import check_setting
from chainrule.training.epoch import check_accuracy, evaluate, train_epoch, train_step
from chainrule.training.history import EpochRecord, History, write_metrics_row
from chainrule.training.hooks import Hook, TrainingInterrupted
from chainrule.training.progress import Progress
from chainrule.training.state import (
    Data,
    Run,
    Splits,
    TrainState,
    checkpoint_history,
    load_checkpoint,
)

# fit and check_data are this module's; the others are importable from here as they always were.
__all__ = [
    "Data",
    "EpochRecord",
    "History",
    "Splits",
    "TrainingInterrupted",
    "check_accuracy",
    "check_data",
    "checkpoint_history",
    "evaluate",
    "fit",
    "train_epoch",
    "train_step",
    "write_metrics_row",
]


def check_data(model: Module, X: np.ndarray, y: np.ndarray, split: str) -> None:
    """Refuse data the model cannot train on, with a message naming the problem.

    X: (N, D) floating point, D = model.input_size, all finite; y: (N,) integers in
    [0, model.num_classes). Raises ShapeError (shapes) or DataError (types, values, emptiness).
    """
    if not isinstance(X, np.ndarray) or X.ndim != 2:
        raise ShapeError(f"{split}: X must be a 2-D array (N, D), got {getattr(X, 'shape', X)!r}")
    if X.shape[1] != model.input_size:
        raise ShapeError(
            f"{split}: rows have {X.shape[1]} features but the model takes {model.input_size}"
        )
    if not np.issubdtype(X.dtype, np.floating):
        raise DataError(f"{split}: X must be floating point (float32), got dtype {X.dtype}")
    if len(X) == 0:
        raise DataError(f"{split}: the data set is empty")
    y = np.asarray(y)
    if y.shape != (len(X),):
        raise ShapeError(f"{split}: expected {len(X)} labels (one per row), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{split}: labels must be integers, got dtype {y.dtype}")
    k = model.num_classes
    if y.min() < 0 or y.max() >= k:
        raise DataError(
            f"{split}: labels must lie in [0, {k - 1}] for {k} classes, "
            f"got values from {y.min()} to {y.max()}"
        )
    # The float64 sum is finite exactly when every element is: no (N, D) temporary of booleans.
    if not np.isfinite(X.sum(dtype=np.float64)):
        raise DataError(f"{split}: X contains NaN or infinite values")


def fit(
    model: Module,
    data: Data,
    loss: LossFn = softmax_loss,
    optimizer: Optimizer | None = None,
    epochs: int = 10,
    batch_size: int = 64,
    reg: float = 0.0,
    rng: np.random.Generator | None = None,
    schedule: Schedule | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    progress: bool | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    train_eval_size: int = 10_000,
    log: Callable[[str], None] | None = None,
    augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
    patience: int | None = None,
    hooks: Sequence[Hook] | None = None,
    device: str | None = None,
) -> History:
    """Train ``model`` on ``data`` by mini-batch gradient descent; keep the best-validation weights.

    data: X_train (N, D) of the model's float dtype, y_train (N,) ints; X_val, y_val likewise.
    loss: ``softmax_loss`` or ``svm_loss`` (scores (B, K), labels (B,) -> 0-d Tensor).
    optimizer: default SGD, learning rate 1e-2. reg: L2 strength on weights, not biases: the
    optimizer's weight_decay is 2 * reg for the run; the reported loss adds reg * sum(W**2).
    rng: shuffles the epochs. schedule: per-epoch factor of the learning rate. augment: remakes
    each batch from a generator seeded by the epoch's draw and the step (a resume sees the same).
    train_eval_size: training rows scored each epoch (a fixed sample). patience: stop after this
    many epochs without a better validation accuracy (``History.stopped_early``); None: never.
    hooks: checkpoints, signals, progress, files (``training.hooks``). The older keywords add
    hooks (see the module docstring): checkpoint (also the file ``resume=True`` continues from,
    bit for bit; else the first Checkpoint hook's), on_epoch, log, progress.
    device: "cpu", "cuda", "cuda:N" (None: the model's): model and optimizer move there; on a
    GPU all but each epoch's last step replay a captured CUDA graph (``training.captured``).
    Raises ConfigError, DataError, ShapeError (bad settings or data, before training),
    DivergenceError (a non-finite loss: where, why, what was saved), TrainingInterrupted.
    Returns the History; the model ends with the parameters of the best validation epoch.
    """
    optimizer = optimizer if optimizer is not None else SGD(model.parameters(), 1e-2)
    _check_arguments(model, data, optimizer, epochs, batch_size, reg, patience)
    hook_list = _hook_list(hooks, checkpoint, progress, log, on_epoch)
    saved_to = Path(checkpoint) if checkpoint is not None else hooks_.checkpoint_path(hook_list)
    rng = rng if rng is not None else np.random.default_rng(0)
    sample = np.random.default_rng(12345).permutation(len(data.X_train))[:train_eval_size]
    state = _start(model, optimizer, rng, saved_to, resume)
    schedule = schedule if schedule is not None else Constant()
    run = Run(model, data, loss, optimizer, rng, schedule, epochs, batch_size, reg, augment)
    run.patience, run.sample, run.state, run.hooks = patience, np.sort(sample), state, hook_list
    run.base_learning_rate, run.checkpoint = optimizer.learning_rate, saved_to
    own_decay, optimizer.weight_decay = optimizer.weight_decay, optimizer.weight_decay or 2 * reg
    run.fast = captured.for_fit(model, loss, optimizer, data, batch_size, reg, device, not augment)
    try:
        _train_hooked(run)
    finally:
        optimizer.weight_decay = own_decay
    model.load_state_dict(run.state.best)
    return run.state.history


def _start(
    model: Module,
    optimizer: Optimizer,
    rng: np.random.Generator,
    saved_to: Path | None,
    resume: bool,
) -> TrainState:
    """A fresh state, or with ``resume`` the one in the checkpoint (loaded into the model,
    optimizer and rng). Raises ConfigError when there is nothing to resume from."""
    if not resume:
        return TrainState(history=History(), best=model.state_dict())
    if saved_to is None or not saved_to.exists():
        raise ConfigError(f"nothing to resume: no checkpoint at {saved_to}")
    return load_checkpoint(saved_to, model, optimizer, rng, optimizer.learning_rate)


def _check_arguments(
    model: Module,
    data: Data,
    optimizer: Optimizer,
    epochs: int,
    batch_size: int,
    reg: float,
    patience: int | None,
) -> None:
    """fit's settings and data, checked before anything is trained (ConfigError, DataError,
    ShapeError), against the rules of a run's settings (``config.SETTINGS``)."""
    check_setting("epochs", epochs)
    check_setting("batch_size", batch_size, "batch size")
    check_setting("reg", reg, "regularization strength", ">= 0")
    check_setting("patience", patience, expected="a positive integer or None")
    check_data(model, data.X_train, data.y_train, "training data")
    check_data(model, data.X_val, data.y_val, "validation data")
    n = len(data.X_train)
    if batch_size > n:
        raise ConfigError(f"batch size {batch_size} is larger than the {n} training examples")
    dtype = model.parameters()[0].dtype
    if data.X_train.dtype != dtype:
        raise DataError(
            f"training data is {data.X_train.dtype} but the model is {dtype}: convert one of them "
            "(a silent cast would copy the whole data set every batch)"
        )
    if reg > 0 and optimizer.weight_decay:
        raise ConfigError(
            f"the optimizer has weight_decay {optimizer.weight_decay:g} and fit got reg {reg:g}: "
            "give the L2 strength once (weight_decay = 2 * reg)"
        )


def _hook_list(
    hooks: Sequence[Hook] | None,
    checkpoint: str | Path | None,
    progress: bool | None,
    log: Callable[[str], None] | None,
    on_epoch: Callable[[EpochRecord], None] | None,
) -> list[Hook]:
    """The hooks of a run: those fit's older keywords stand for, then the given ones."""
    made: list[Hook] = [] if hooks is not None else [hooks_.StopOnSignal()]
    if progress or (progress is None and hooks is None):
        made.append(Progress())
    if log is not None:
        made.append(hooks_.HealthLog(log))
    if checkpoint is not None:
        made.append(hooks_.Checkpoint(checkpoint))
    if on_epoch is not None:
        made.append(hooks_.EpochCallback(on_epoch))
    return made + list(hooks or [])


def _train_hooked(run: Run) -> None:
    """The epochs between the hooks' on_train_begin and on_train_end (always called, for the
    hooks that began, in reverse order)."""
    began: list[Hook] = []
    try:
        for hook in run.hooks:
            hook.on_train_begin(run)
            began.append(hook)
        # Overflow is caught as a non-finite loss, not printed by NumPy on the way there.
        with np.errstate(all="ignore"):
            _train_epochs(run)
    except BaseException as error:
        for hook in reversed(began):
            hook.on_train_end(run, error)
        raise
    for hook in reversed(began):
        hook.on_train_end(run, None)


def _train_epochs(run: Run) -> None:
    """From the state's epoch to the last (or until patience runs out), keeping the best."""
    state = run.state
    for epoch in range(state.epoch, run.epochs):
        if _stalled(state.history, run.patience):
            state.history.stopped_early = True
            break
        record = train_epoch(run, epoch)
        history = state.history
        history.epochs.append(record)
        if record.val_accuracy > history.best_val_accuracy:
            history.best_epoch, history.best_val_accuracy = record.epoch, record.val_accuracy
            state.best = run.model.state_dict()
        state.epoch, state.step = epoch + 1, 0
        for hook in run.hooks:
            hook.on_epoch_end(run, record)


def _stalled(history: History, patience: int | None) -> bool:
    """Whether the last ``patience`` epochs brought no better validation accuracy."""
    return patience is not None and len(history) - history.best_epoch >= patience
