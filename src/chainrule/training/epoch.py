"""One epoch of training in its pieces, as CS231n's Solver has them: ``train_step`` (one
mini-batch: forward, loss, backward, update), ``train_epoch`` (one pass in a fresh order) and
``check_accuracy`` (the epoch's record, scored by ``evaluate``). ``loop.fit`` runs the epochs.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from chainrule.engine.errors import DataError, DivergenceError, ShapeError
from chainrule.engine.tensor import Tensor
from chainrule.nn import Module
from chainrule.nn.losses import LossFn
from chainrule.nn.optim import Optimizer
from chainrule.training import diagnostics as diag
from chainrule.training import hooks as hooks_
from chainrule.training.history import EpochRecord
from chainrule.training.hooks import TrainingInterrupted
from chainrule.training.state import Run


def evaluate(
    model: Module,
    X: np.ndarray,
    y: np.ndarray,
    batch_size: int = 1024,
    rows: np.ndarray | None = None,
) -> float:
    """Accuracy in [0, 1] of ``model.predict`` on rows X (N, D) with labels y (N,).

    rows: score only these row indices (M,); gathered a batch at a time, so no copy of the
    sample. Raises ShapeError when X and y differ in length, DataError when nothing is scored.
    """
    y = np.asarray(y)
    if len(X) != len(y):
        raise ShapeError(f"evaluate: {len(X)} rows but {len(y)} labels")
    whole = rows is None  # then slices: views, no copies
    rows = np.arange(len(y)) if rows is None else rows
    if len(rows) == 0:
        raise DataError("evaluate: no examples to score")
    correct = 0
    for i in range(0, len(rows), batch_size):
        chunk = rows[i : i + batch_size]
        batch = X[i : i + batch_size] if whole else X[chunk]
        correct += int(np.sum(model.predict(batch, batch_size) == y[chunk]))
    return correct / len(rows)


def train_epoch(run: Run, epoch: int) -> EpochRecord:
    """One pass over the training rows in a fresh order (from ``run.state.step`` when resumed
    mid-epoch: the order is drawn again from the state the epoch began with), then scored by
    ``check_accuracy``. Raises DivergenceError on a non-finite loss, TrainingInterrupted when a
    hook set ``run.stop_signal``."""
    state, rng, optimizer = run.state, run.rng, run.optimizer
    optimizer.learning_rate = run.base_learning_rate * run.schedule.factor(epoch)
    if state.step == 0:
        state.rng_at_epoch_start = rng.bit_generator.state
        state.loss_sum = 0.0
        state.epoch_seconds = 0.0
    else:  # resumed mid-epoch: draw this epoch's order again from the state it began with
        rng.bit_generator.state = state.rng_at_epoch_start
    order = rng.permutation(len(run.data.X_train))
    epoch_key = int(rng.integers(2**63))
    start = time.perf_counter()
    for hook in run.hooks:
        hook.on_epoch_begin(run, epoch)
    per_step, last = hooks_.stepping(run.hooks), run.steps_per_epoch - 1
    weights = run.model.weights() if run.reg > 0 else []
    if run.fast is not None:  # on a GPU: all but the last step, as replays of the captured step
        state.loss_sum += run.fast.run(order, state.step, last, epoch)
        state.step = max(state.step, last)
    for step, idx in _batches(order, run.batch_size, state.step):
        X_batch, y_batch = run.data.X_train[idx], run.data.y_train[idx]
        if run.augment is not None:
            X_batch = run.augment(X_batch, np.random.default_rng([epoch_key, step]))
        # The penalty's value only (its gradient is the optimizer's weight decay), taken before
        # the forward pass, whose first product then finds the weights in cache.
        penalty = run.reg * sum(_sum_of_squares(w.data) for w in weights)
        measured: dict[str, float] | None = {} if step == last else None
        value = train_step(run.model, run.loss, optimizer, X_batch, y_batch, penalty, measured)
        if not math.isfinite(value):
            raise DivergenceError(_divergence(value, run, epoch, step))
        if measured is not None:  # the epoch's last step: its health
            state.diagnostics = measured
        state.loss_sum += value * len(idx)
        state.step = step + 1
        for hook in per_step:
            hook.on_step_end(run, value)
        if run.stop_signal is not None:
            _interrupt(run, epoch, step, start)
    return check_accuracy(run, epoch, state.epoch_seconds + time.perf_counter() - start)


def train_step(
    model: Module,
    loss: LossFn,
    optimizer: Optimizer,
    X_batch: np.ndarray,
    y_batch: np.ndarray,
    penalty: float = 0.0,
    diagnostics: dict[str, float] | None = None,
) -> float:
    """One mini-batch: forward, loss, backward, optimizer step. Returns the loss value.

    X_batch: (B, D) of the model's dtype; y_batch: (B,) ints. penalty: added to the reported
    value (fit's reg * sum(W**2), whose gradient is the optimizer's weight decay). A non-finite
    value is returned before the backward pass, leaving parameters and gradients untouched.
    diagnostics: when a dict is given, the step's gradient norms and update/weight ratios are
    put in it (``training.diagnostics``; costs a copy of the weights).
    """
    data_loss = loss(model(Tensor(X_batch)), y_batch)
    value = float(data_loss.data) + penalty
    if not math.isfinite(value):
        return value
    optimizer.zero_grad()
    data_loss.backward()
    if diagnostics is None:
        optimizer.step()
        return value
    names, params = zip(*model.named_parameters())
    weights = [(name, p) for name, p in zip(names, params) if p.ndim >= 2]
    before = [p.data.copy() for _, p in weights]
    grads = optimizer.gradients()
    optimizer.step()
    diagnostics.update(diag.gradient_norms(names, grads))
    after = [p.data for _, p in weights]
    diagnostics.update(diag.update_ratios([name for name, _ in weights], before, after))
    return value


def check_accuracy(run: Run, epoch: int, seconds: float) -> EpochRecord:
    """The epoch's record: its mean loss, accuracy on the training sample and the validation
    set, the learning rate, ``seconds`` of training, and the health diagnostics."""
    model, data, state = run.model, run.data, run.state
    return EpochRecord(
        epoch=epoch + 1,
        loss=state.loss_sum / len(data.X_train),
        train_accuracy=evaluate(model, data.X_train, data.y_train, rows=run.sample),
        val_accuracy=evaluate(model, data.X_val, data.y_val),
        learning_rate=run.optimizer.learning_rate,
        seconds=seconds,
        diagnostics={**state.diagnostics, **diag.unit_health(model, data.X_val[:1000])},
    )


def _sum_of_squares(a: Any) -> float:
    """sum(a**2) over an array of any shape and array module, as a Python float."""
    if isinstance(a, np.ndarray):  # one BLAS dot, no temporary, and the least fixed cost
        return float(np.vdot(a, a))
    xp = array_namespace(a)
    flat = xp.reshape(a, (-1,))
    return float(xp.vecdot(flat, flat))


def _batches(order: np.ndarray, batch_size: int, start: int) -> Iterator[tuple[int, np.ndarray]]:
    for step, i in enumerate(range(start * batch_size, len(order), batch_size), start=start):
        yield step, order[i : i + batch_size]


def _interrupt(run: Run, epoch: int, step: int, start: float) -> None:
    """Stop mid-epoch: the hooks' on_interrupt (a checkpoint, the bar), then
    TrainingInterrupted."""
    run.state.epoch_seconds += time.perf_counter() - start
    for hook in run.hooks:
        hook.on_interrupt(run)
    signum = run.stop_signal
    assert signum is not None
    raise TrainingInterrupted(
        f"stopped by {signal.Signals(signum).name} at epoch {epoch + 1}, step {step + 1}"
        + (f"; resume from {run.checkpoint}" if run.checkpoint else ""),
        run.state.history,
        signum,
    )


def _divergence(value: float, run: Run, epoch: int, step: int) -> str:
    """The one line a non-finite loss ends training with: where, the likely cause, and what was
    saved (naming only a file that exists)."""
    where = f"the loss became {value} at epoch {epoch + 1}, step {step + 1}"
    lr, reg = run.optimizer.learning_rate, run.reg
    if lr * reg > 1 and reg > lr:
        # the L2 step alone scales a weight by 1 - 2 lr reg, which is past -1 here
        cause = (
            f"the regularization strength ({reg:g}) is likely too high: with the learning rate "
            f"{lr:g}, the L2 step alone scales the weights by 1 - 2 lr reg = {1 - 2 * lr * reg:.3g}"
        )
    else:
        cause = f"the learning rate ({lr:g}) is likely too high"
    if run.checkpoint is None:
        return f"{where}: {cause}"
    if not run.checkpoint.exists():
        return f"{where}: {cause}; no epoch had finished, so no checkpoint was saved"
    return f"{where}: {cause}; the last good checkpoint is {run.checkpoint}"
