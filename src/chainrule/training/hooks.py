"""Hooks: what a training run does besides training, passed to ``fit(hooks=[...])``.

The protocol (Keras's callbacks and CS231n's Solver, in small): a hook is an object with any of
these methods (``Hook`` has them all, doing nothing); ``fit`` calls them in list order, except
``on_train_end``, called in reverse order, as nested ``with`` blocks would exit:

- ``on_train_begin(run)``: after the arguments are checked and a checkpoint resumed;
- ``on_epoch_begin(run, epoch)``: epoch counts from 0;
- ``on_step_end(run, loss)``: after every optimizer step, with the step's loss (a float): keep
  it cheap, it runs thousands of times an epoch (``fit`` calls only hooks that override it);
- ``on_epoch_end(run, record)``: the EpochRecord, once it is in ``run.state.history`` (and the
  model, when it is the best so far, in ``run.state.best``);
- ``on_interrupt(run)``: a hook set ``run.stop_signal`` and the loop stops mid-epoch; next,
  ``fit`` raises ``TrainingInterrupted``;
- ``on_train_end(run, error)``: always, with the exception training ends with, or None.

An exception a hook raises ends training and propagates (an ``on_epoch_end`` one after the
hooks before it in the list ran: the checkpoint of that epoch is written).
``Run`` (``training.state``) is what a hook sees: the model, optimizer, state and settings.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from chainrule.training import diagnostics as diag
from chainrule.training.history import EpochRecord, History, write_metrics_row
from chainrule.training.state import Run, save_checkpoint


class Hook:
    """A hook that does nothing: subclass it and override what you need (see the module)."""

    def on_train_begin(self, run: Run) -> None:
        """Training starts (or resumes: ``run.state`` holds what was done)."""

    def on_epoch_begin(self, run: Run, epoch: int) -> None:
        """Epoch ``epoch`` (from 0) starts, at step ``run.state.step`` (> 0 when resumed)."""

    def on_step_end(self, run: Run, loss: float) -> None:
        """One optimizer step is done; loss: its mini-batch loss (data + L2 penalty)."""

    def on_epoch_end(self, run: Run, record: EpochRecord) -> None:
        """An epoch is done and recorded."""

    def on_interrupt(self, run: Run) -> None:
        """Training stops mid-epoch because ``run.stop_signal`` was set."""

    def on_train_end(self, run: Run, error: BaseException | None) -> None:
        """Training ends: normally (error None) or with ``error``, which ``fit`` raises next."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT/SIGTERM after saving a checkpoint (when it had a place to).

    history: the epochs done; signum: the signal; run_dir: set by a caller that knows the run
    folder.
    """

    def __init__(self, message: str, history: History, signum: int) -> None:
        super().__init__(message)
        self.history, self.signum = history, signum
        self.run_dir: Path | None = None


class StopOnSignal(Hook):
    """Turns SIGINT/SIGTERM into ``run.stop_signal``, checked between steps, so a checkpoint can
    be saved; a second signal stops at once (KeyboardInterrupt). Off the main thread, where
    Python cannot install handlers, signals are left alone."""

    def __init__(self) -> None:
        self.run: Run | None = None
        self.signum: int | None = None
        self.previous: dict[int, Any] = {}

    def on_train_begin(self, run: Run) -> None:
        """Install the handlers, keeping the previous ones."""
        self.run, self.signum = run, None
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self.signum = signum
        if self.run is not None:
            self.run.stop_signal = signum

    def on_train_end(self, run: Run, error: BaseException | None) -> None:
        """Put the previous handlers back; pass on a signal that came too late to stop a step."""
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        pending, previous = self.signum, self.previous
        self.run, self.previous = None, {}
        if pending is not None and error is None and callable(previous.get(pending)):
            # It came after the last step's check (while the last epoch was being scored):
            # passed on to the Python handler from before (KeyboardInterrupt for SIGINT), so
            # that a caller with more work to do (compare's next row) stops too.
            signal.raise_signal(pending)


class Checkpoint(Hook):
    """Saves the full training state to ``path`` after every epoch and on an interruption
    (``state.save_checkpoint``), so ``fit(resume=True)`` continues bit for bit."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_epoch_end(self, run: Run, record: EpochRecord) -> None:
        """Save the state after the epoch."""
        self._save(run)

    def on_interrupt(self, run: Run) -> None:
        """Save the state mid-epoch."""
        self._save(run)

    def _save(self, run: Run) -> None:
        save_checkpoint(self.path, run.state, run.model, run.optimizer, run.rng.bit_generator.state)


class EpochCallback(Hook):
    """Calls ``fn(record)`` after each epoch (``fit``'s ``on_epoch=``). What it raises ends
    training, after the epoch's checkpoint (e.g. optuna.TrialPruned)."""

    def __init__(self, fn: Callable[[EpochRecord], None]) -> None:
        self.fn = fn

    def on_epoch_end(self, run: Run, record: EpochRecord) -> None:
        """Pass the record on."""
        self.fn(record)


class HealthLog(Hook):
    """Writes a warning line through ``log`` the first time a diagnostic leaves its healthy range
    (``diagnostics.health_warnings``); kinds already warned of in a resumed history stay quiet."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.seen: set[str] = set()

    def on_train_begin(self, run: Run) -> None:
        """Remember the kinds of warning the history already has."""
        self.seen = diag.warning_kinds(run.state.history, run.base_learning_rate)

    def on_epoch_end(self, run: Run, record: EpochRecord) -> None:
        """Log each new kind of warning once."""
        factor = record.learning_rate / run.base_learning_rate
        for warning in diag.health_warnings(record.diagnostics, factor):
            if warning.kind not in self.seen:
                self.log(f"warning: epoch {record.epoch}: {warning.text} (shown once)")
            self.seen.add(warning.kind)


class MetricsFile(Hook):
    """Keeps a metrics CSV (``history.write_metrics_row``) of every epoch: at the start it is
    written again from the history, so a process killed between a checkpoint and its row
    neither loses nor repeats an epoch; then one row per epoch is appended."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_train_begin(self, run: Run) -> None:
        """Rewrite the file from the (resumed) history."""
        self.path.unlink(missing_ok=True)
        for record in run.state.history.epochs:
            write_metrics_row(self.path, record)

    def on_epoch_end(self, run: Run, record: EpochRecord) -> None:
        """Append the epoch's row."""
        write_metrics_row(self.path, record)


def checkpoint_path(hooks: Sequence[Hook]) -> Path | None:
    """The file of the first ``Checkpoint`` hook, or None."""
    return next((h.path for h in hooks if isinstance(h, Checkpoint)), None)


def stepping(hooks: Sequence[Hook]) -> list[Hook]:
    """The hooks that override ``on_step_end``: the only ones called every step."""
    return [h for h in hooks if type(h).on_step_end is not Hook.on_step_end]
