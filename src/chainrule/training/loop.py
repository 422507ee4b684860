"""Training: the cycle of the track, epoch after epoch.

forward pass -> loss (data loss + reg * sum W^2) -> backward pass for every weight ->
optimizer step (W <- W - lr * dW for SGD) -> the next mini-batch. Each epoch visits every training
example once, in a fresh random order drawn from ``rng``.

In pieces, as CS231n's Solver is: ``train_step`` (one mini-batch), ``train_epoch`` (one pass,
then ``check_accuracy``; all three in ``training.epoch``), ``fit`` (here: the epochs, keeping
the best). Everything else a run does
(checkpoints, stopping on a signal, progress, warnings, metrics files) is a hook
(``training.hooks``) that ``fit`` calls at fixed points.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from chainrule.engine.errors import ConfigError, DataError, ShapeError
from chainrule.nn import Module
from chainrule.nn.losses import LossFn, softmax_loss
from chainrule.nn.optim import SGD, Constant, Optimizer, Schedule
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
) -> History:
    """Train ``model`` on ``data`` by mini-batch gradient descent; keep the best-validation weights.

    data: X_train (N, D) float of the model's dtype, y_train (N,) ints, X_val, y_val likewise.
    loss: ``softmax_loss`` or ``svm_loss`` (scores (B, K), labels (B,) -> 0-d Tensor).
    optimizer: default SGD with learning rate 1e-2. reg: L2 strength on the weights (not biases):
    the optimizer's weight_decay is set to 2 * reg for the run, and each reported loss adds
    reg * sum(W**2) (``losses.l2_penalty``'s term). rng: shuffles the epochs. schedule: the
    learning rate per epoch as a factor of the base rate. augment: makes each training batch
    anew (e.g. ``augment.HorizontalFlip``), from a generator seeded by the epoch's draw and the
    step, so a resumed run sees the same batches. train_eval_size: train accuracy is scored
    each epoch on this many training rows (a fixed sample). patience: stop once validation
    accuracy has not improved for this many epochs (Keras's EarlyStopping;
    ``History.stopped_early``); None runs every epoch.
    hooks: what the run does besides training (``training.hooks``: checkpoints, signals,
    progress, metrics files). The older keywords add hooks of their own: ``checkpoint`` a
    ``Checkpoint`` (after every epoch and on SIGINT/SIGTERM; with ``resume=True`` training
    continues from that file, or else from the first Checkpoint hook's, bit for bit as if never
    stopped), ``on_epoch`` an ``EpochCallback``, ``log`` a ``HealthLog`` (a warning line the
    first time a diagnostic leaves its healthy range), ``progress`` a ``Progress`` (a bar per
    epoch on a terminal, else a line). Without ``hooks``, SIGINT/SIGTERM stop training after
    the current step (``StopOnSignal``: TrainingInterrupted) and progress defaults to on.
    NumPy's floating-point warnings are silenced while training: a loss that overflows stops
    training with a DivergenceError that says where, why, and what was saved. ConfigError and
    DataError/ShapeError name a bad setting or bad data before anything is trained.
    Returns the History. The model ends with the parameters of the best validation epoch.
    """
    optimizer = optimizer if optimizer is not None else SGD(model.parameters(), 1e-2)
    _check_arguments(model, data, optimizer, epochs, batch_size, reg, patience)
    hook_list = _hook_list(hooks, checkpoint, progress, log, on_epoch)
    saved_to = Path(checkpoint) if checkpoint is not None else hooks_.checkpoint_path(hook_list)
    rng = rng if rng is not None else np.random.default_rng(0)
    base_lr, n = optimizer.learning_rate, len(data.X_train)
    sample = np.sort(np.random.default_rng(12345).permutation(n)[:train_eval_size])
    state = TrainState(history=History(), best=model.state_dict())
    if resume:
        if saved_to is None or not saved_to.exists():
            raise ConfigError(f"nothing to resume: no checkpoint at {saved_to}")
        state = load_checkpoint(saved_to, model, optimizer, rng, base_lr)
    run = Run(
        model=model,
        data=data,
        loss=loss,
        optimizer=optimizer,
        rng=rng,
        schedule=schedule if schedule is not None else Constant(),
        epochs=epochs,
        batch_size=batch_size,
        reg=reg,
        augment=augment,
        patience=patience,
        sample=sample,
        base_learning_rate=base_lr,
        state=state,
        hooks=hook_list,
        checkpoint=saved_to,
    )
    own_decay = optimizer.weight_decay
    optimizer.weight_decay = own_decay or 2 * reg
    try:
        _train_hooked(run)
    finally:
        optimizer.weight_decay = own_decay
    model.load_state_dict(run.state.best)
    return run.state.history


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
