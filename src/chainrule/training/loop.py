"""Training: the cycle of the track, epoch after epoch, and evaluation.

forward pass -> loss (data loss + reg * sum W^2) -> backward pass for every weight ->
optimizer step (W <- W - lr * dW for SGD) -> the next mini-batch. Each epoch visits every training
example once, in a fresh random order drawn from ``rng``.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from chainrule.data import files
from chainrule.engine.errors import (
    ChainruleError,
    ConfigError,
    DataError,
    DivergenceError,
    ShapeError,
)
from chainrule.engine.tensor import Tensor
from chainrule.nn import Module
from chainrule.nn.losses import LossFn, softmax_loss
from chainrule.nn.optim import SGD, Constant, Optimizer, Schedule
from chainrule.training import diagnostics as diag
from chainrule.training.config import check_setting


class Data(Protocol):
    """What ``fit`` needs of a dataset: float rows and integer labels for train and validation."""

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
class EpochRecord:
    """One epoch: mean training loss, accuracies, the learning rate used and the time taken."""

    epoch: int
    loss: float
    train_accuracy: float
    val_accuracy: float
    learning_rate: float
    seconds: float
    diagnostics: dict[str, float] = field(default_factory=dict)


@dataclass
class History:
    """Every epoch's record, and which epoch gave the parameters that were kept."""

    epochs: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = -1
    best_val_accuracy: float = -1.0
    stopped_early: bool = False  # by ``fit(patience=...)``, before the last planned epoch

    def __getattr__(self, name: str) -> list[Any]:
        # history.loss, history.val_accuracy... : one list per column
        if name in EpochRecord.__dataclass_fields__:
            return [getattr(r, name) for r in self.epochs]
        raise AttributeError(name)

    def __len__(self) -> int:
        return len(self.epochs)

    def _repr_html_(self) -> str:  # Jupyter's rich display
        from chainrule.training.display import history_html

        return history_html(self)

    def to_json(self) -> dict[str, Any]:
        return {
            "epochs": [dataclasses.asdict(r) for r in self.epochs],
            "best_epoch": self.best_epoch,
            "best_val_accuracy": self.best_val_accuracy,
            "stopped_early": self.stopped_early,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> History:
        return cls(
            [EpochRecord(**r) for r in obj["epochs"]],
            obj["best_epoch"],
            obj["best_val_accuracy"],
            obj.get("stopped_early", False),
        )


def evaluate(
    model: Module,
    X: np.ndarray,
    y: np.ndarray,
    batch_size: int = 1024,
    rows: np.ndarray | None = None,
) -> float:
    """Accuracy in [0, 1] of ``model.predict`` on rows X (N, D) with labels y (N,).

    rows: score only these row indices; gathered a batch at a time, so no copy of the sample.
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


def check_data(model: Module, X: np.ndarray, y: np.ndarray, split: str) -> None:
    """Refuse data the model cannot train on, with a message naming the problem."""
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


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag checked between steps, so a checkpoint can be saved."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _StopRequest:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, exc_type: object, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        if self.signum is not None and exc_type is None and callable(self.previous[self.signum]):
            # It came after the last step's check (while the last epoch was being scored):
            # passed on to the Python handler from before (KeyboardInterrupt for SIGINT), so
            # that a caller with more work to do (compare's next row) stops too.
            signal.raise_signal(self.signum)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT/SIGTERM after saving a checkpoint (when it had a place to)."""

    def __init__(self, message: str, history: History, signum: int) -> None:
        super().__init__(message)
        self.history, self.signum = history, signum
        self.run_dir: Path | None = None  # set by the caller that knows the run folder


def _batches(order: np.ndarray, batch_size: int, start: int) -> Iterator[tuple[int, np.ndarray]]:
    for step, i in enumerate(range(start * batch_size, len(order), batch_size), start=start):
        yield step, order[i : i + batch_size]


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
    progress: bool = True,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    train_eval_size: int = 10_000,
    log: Callable[[str], None] | None = None,
    augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
    patience: int | None = None,
) -> History:
    """Train ``model`` on ``data`` by mini-batch gradient descent; keep the best-validation weights.

    data: X_train (N, D) float, y_train (N,) ints, X_val, y_val likewise.
    loss: ``softmax_loss`` or ``svm_loss`` (scores (B, K), labels (B,) -> 0-d Tensor).
    optimizer: default SGD with learning rate 1e-2. reg: L2 strength on the weights (not biases).
    rng: shuffles the epochs. schedule: the learning rate per epoch as a factor of the base rate.
    checkpoint: a file to save the training state to after every epoch (and on SIGINT/SIGTERM);
    with ``resume=True`` training continues from it, bit for bit as if never stopped.
    on_epoch: called with each EpochRecord (e.g. to append to a metrics file).
    log: called with a warning line the first time a diagnostic leaves its healthy range (see
    ``diagnostics``: update/weight ratios, gradient norms, dead ReLUs, saturated units; every
    epoch's values are in its record's ``diagnostics``, and ``diagnostics.summarize_warnings``
    counts the epochs of each kind).
    augment: makes each training batch anew (e.g. ``augment.HorizontalFlip``), from a generator
    seeded by the epoch's draw and the step, so a resumed run sees the same batches.
    train_eval_size: train accuracy is measured at the end of each epoch on this many training
    rows (a fixed sample), since a full pass over a large set would cost more than it tells.
    patience: stop early once the validation accuracy has not improved for this many epochs
    (as Keras's EarlyStopping on val_accuracy); ``History.stopped_early`` records it. None: run
    every epoch.
    progress: a bar per epoch on a terminal (or in Jupyter); elsewhere (a pipe, a log file) one
    plain line per epoch.
    NumPy's floating-point warnings are silenced while training: a loss that overflows stops
    training with a DivergenceError that says where and why.
    Returns the History. The model ends with the parameters of the best validation epoch.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    optimizer = optimizer if optimizer is not None else SGD(model.parameters(), 1e-2)
    schedule = schedule if schedule is not None else Constant()
    # the rules of a run's settings (config.SETTINGS), in the words of this function's arguments
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
    base_lr = optimizer.learning_rate
    sample = np.random.default_rng(12345).permutation(n)[:train_eval_size]
    sample.sort()

    state = _TrainState(history=History(), best=model.state_dict())
    if resume:
        if checkpoint is None or not Path(checkpoint).exists():
            raise ConfigError(f"nothing to resume: no checkpoint at {checkpoint}")
        state = _load_checkpoint(Path(checkpoint), model, optimizer, rng, base_lr)
    steps_per_epoch = math.ceil(n / batch_size)
    weights = model.weights() if reg > 0 else []
    names, params = zip(*model.named_parameters())
    if reg > 0 and optimizer.weight_decay:
        raise ConfigError(
            f"the optimizer has weight_decay {optimizer.weight_decay:g} and fit got reg {reg:g}: "
            "give the L2 strength once (weight_decay = 2 * reg)"
        )
    own_decay = optimizer.weight_decay
    optimizer.weight_decay = own_decay or 2 * reg

    seen = diag.warning_kinds(state.history, base_lr)  # each kind of warning is logged once
    # The weight gradients stay unformed: each step adds -lr dᵀx into W inside one product.
    # Overflow is caught as a non-finite loss below, not printed by NumPy on the way there.
    with _StopRequest() as stop, np.errstate(all="ignore"):
        for epoch in range(state.epoch, epochs):
            if _stalled(state.history, patience):
                state.history.stopped_early = True
                break
            optimizer.learning_rate = base_lr * schedule.factor(epoch)
            if state.step == 0:
                state.rng_at_epoch_start = rng.bit_generator.state
                state.loss_sum = 0.0
                state.epoch_seconds = 0.0
            else:
                # resumed mid-epoch: draw this epoch's order again from the state it began with
                rng.bit_generator.state = state.rng_at_epoch_start
            order = rng.permutation(n)
            epoch_key = int(rng.integers(2**63))
            start = time.perf_counter()
            bar = _progress(progress, epoch, epochs, steps_per_epoch, state.step)
            for step, idx in _batches(order, batch_size, state.step):
                X_batch, y_batch = data.X_train[idx], data.y_train[idx]
                if augment is not None:
                    X_batch = augment(X_batch, np.random.default_rng([epoch_key, step]))
                # The penalty's value only: its gradient is the optimizer's decay (see below).
                # Taken before the forward pass, whose first product then finds the weights in
                # cache: ~1.5% of a CIFAR-10 epoch here, 4-13% between the loss and backward.
                penalty = sum(float(np.vdot(w.data, w.data)) for w in weights)
                scores = model(Tensor(X_batch))
                data_loss = loss(scores, y_batch)
                value = float(data_loss.data) + reg * penalty
                if not math.isfinite(value):
                    raise DivergenceError(
                        _divergence(value, reg, optimizer, epoch, step, checkpoint)
                    )
                optimizer.zero_grad()
                data_loss.backward()
                if step == steps_per_epoch - 1:  # the epoch's last step: measure its health
                    before = [p.data.copy() if p.ndim >= 2 else p.data for p in params]
                    grads = optimizer.gradients()
                    optimizer.step()
                    weight_names = [n for n, p in zip(names, params) if p.ndim >= 2]
                    state.diagnostics = {
                        **diag.gradient_norms(names, grads),
                        **diag.update_ratios(
                            weight_names,
                            [b for b, p in zip(before, params) if p.ndim >= 2],
                            [p.data for p in params if p.ndim >= 2],
                        ),
                    }
                else:
                    optimizer.step()
                state.loss_sum += value * len(idx)
                state.step = step + 1
                if bar is not None:
                    bar.update(1)
                    if step % 10 == 0:
                        bar.set_postfix(loss=f"{value:.4f}", refresh=False)
                if stop.signum is not None:
                    state.epoch_seconds += time.perf_counter() - start
                    if bar is not None:
                        bar.close()
                    if checkpoint is not None:
                        _save_checkpoint(
                            Path(checkpoint), state, model, optimizer, rng.bit_generator.state
                        )
                    name = signal.Signals(stop.signum).name
                    raise TrainingInterrupted(
                        f"stopped by {name} at epoch {epoch + 1}, step {step + 1}"
                        + (f"; resume from {checkpoint}" if checkpoint else ""),
                        state.history,
                        stop.signum,
                    )
            seconds = state.epoch_seconds + time.perf_counter() - start
            record = EpochRecord(
                epoch=epoch + 1,
                loss=state.loss_sum / n,
                train_accuracy=evaluate(model, data.X_train, data.y_train, rows=sample),
                val_accuracy=evaluate(model, data.X_val, data.y_val),
                learning_rate=optimizer.learning_rate,
                seconds=seconds,
                diagnostics={**state.diagnostics, **diag.unit_health(model, data.X_val[:1000])},
            )
            if bar is not None:
                bar.set_postfix(
                    loss=f"{record.loss:.4f}",
                    train=f"{record.train_accuracy:.3f}",
                    val=f"{record.val_accuracy:.3f}",
                )
                bar.close()
            for warning in diag.health_warnings(record.diagnostics, record.learning_rate / base_lr):
                if warning.kind not in seen and log is not None:
                    log(f"warning: epoch {record.epoch}: {warning.text} (shown once)")
                seen.add(warning.kind)
            history = state.history
            history.epochs.append(record)
            if record.val_accuracy > history.best_val_accuracy:
                history.best_epoch, history.best_val_accuracy = record.epoch, record.val_accuracy
                state.best = model.state_dict()
            state.epoch, state.step = epoch + 1, 0
            if checkpoint is not None:
                _save_checkpoint(Path(checkpoint), state, model, optimizer, rng.bit_generator.state)
            if on_epoch is not None:
                on_epoch(record)
    optimizer.weight_decay = own_decay
    model.load_state_dict(state.best)
    return state.history


def _stalled(history: History, patience: int | None) -> bool:
    """Whether the last ``patience`` epochs brought no better validation accuracy."""
    return patience is not None and len(history) - history.best_epoch >= patience


def _divergence(
    value: float,
    reg: float,
    optimizer: Optimizer,
    epoch: int,
    step: int,
    checkpoint: str | Path | None,
) -> str:
    """The one line a non-finite loss ends training with: where, the likely cause, and what was
    saved (naming only a file that exists)."""
    where = f"the loss became {value} at epoch {epoch + 1}, step {step + 1}"
    lr = optimizer.learning_rate
    if lr * reg > 1 and reg > lr:
        # the L2 step alone scales a weight by 1 - 2 lr reg, which is past -1 here
        cause = (
            f"the regularization strength ({reg:g}) is likely too high: with the learning rate "
            f"{lr:g}, the L2 step alone scales the weights by 1 - 2 lr reg = {1 - 2 * lr * reg:.3g}"
        )
    else:
        cause = f"the learning rate ({lr:g}) is likely too high"
    if checkpoint is None:
        return f"{where}: {cause}"
    if not Path(checkpoint).exists():
        return f"{where}: {cause}; no epoch had finished, so no checkpoint was saved"
    return f"{where}: {cause}; the last good checkpoint is {checkpoint}"


class _EpochLines:
    """Progress where no one watches a bar (a pipe, a log file, CI): one plain line per epoch,
    written when the epoch ends, instead of a bar redrawn with carriage returns."""

    def __init__(self, desc: str) -> None:
        self.desc, self.postfix, self.start = desc, {}, time.perf_counter()

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, refresh: bool = True, **values: str) -> None:
        self.postfix.update(values)

    def close(self) -> None:
        if "val" not in self.postfix:  # stopped mid-epoch: the caller says why
            return
        values = ", ".join(f"{k} {v}" for k, v in self.postfix.items())
        seconds = time.perf_counter() - self.start
        print(f"{self.desc}: {values} ({seconds:.1f} s)", file=sys.stderr, flush=True)


def _progress(enabled: bool, epoch: int, epochs: int, total: int, initial: int) -> Any:
    if not enabled:
        return None
    if not (sys.stderr.isatty() or "ipykernel" in sys.modules):
        return _EpochLines(f"epoch {epoch + 1}/{epochs}")
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=f"epoch {epoch + 1}/{epochs}",
        unit="batch",
        leave=True,
        file=sys.stderr,
        dynamic_ncols=True,
    )


@dataclass
class _TrainState:
    """Everything a resumed run needs beyond the model and optimizer."""

    history: History
    best: dict[str, np.ndarray]
    epoch: int = 0
    step: int = 0
    loss_sum: float = 0.0
    epoch_seconds: float = 0.0
    rng_at_epoch_start: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, float] = field(default_factory=dict)  # of the epoch's last step


def _save_checkpoint(
    path: Path, state: _TrainState, model: Module, optimizer: Optimizer, rng_state: dict[str, Any]
) -> None:
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


def _load_checkpoint(
    path: Path, model: Module, optimizer: Optimizer, rng: np.random.Generator, base_lr: float
) -> _TrainState:
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
        state = _TrainState(
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


def write_metrics_row(path: Path, record: EpochRecord) -> None:
    """Append one epoch to a metrics CSV (header first if the file is new)."""
    row = dataclasses.asdict(record)
    diagnostics = row.pop("diagnostics")
    row.update(diagnostics)
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
