"""Progress of training, as a hook: a tqdm bar per epoch on a terminal (or in Jupyter), one plain
line per epoch elsewhere (a pipe, a log file, CI)."""

from __future__ import annotations

import sys
import time
from typing import Any

from chainrule.training.history import EpochRecord
from chainrule.training.hooks import Hook
from chainrule.training.state import Run


class _EpochLines:
    """Progress where no one watches a bar: one plain line per epoch, written when the epoch
    ends, instead of a bar redrawn with carriage returns."""

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


class Progress(Hook):
    """A bar per epoch on standard error when it is a terminal (or in Jupyter), showing the
    mini-batch loss every 10 steps and the epoch's loss and accuracies at its end; elsewhere one
    line per epoch: ``epoch 3/10: loss 0.4123, train 0.871, val 0.853 (2.1 s)``."""

    def __init__(self) -> None:
        self.bar: Any = None

    def on_epoch_begin(self, run: Run, epoch: int) -> None:
        """Open the epoch's bar (at the step a resumed epoch starts from)."""
        desc = f"epoch {epoch + 1}/{run.epochs}"
        if not (sys.stderr.isatty() or "ipykernel" in sys.modules):
            self.bar = _EpochLines(desc)
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=run.steps_per_epoch,
            initial=run.state.step,
            desc=desc,
            unit="batch",
            leave=True,
            file=sys.stderr,
            dynamic_ncols=True,
        )

    def on_step_end(self, run: Run, loss: float) -> None:
        """Advance the bar; show the loss of every tenth step."""
        self.bar.update(1)
        if run.state.step % 10 == 1:  # steps 0, 10, 20... of the epoch (state.step is one on)
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def on_epoch_end(self, run: Run, record: EpochRecord) -> None:
        """Show the epoch's numbers and close its bar (the plain line is written then)."""
        self.bar.set_postfix(
            loss=f"{record.loss:.4f}",
            train=f"{record.train_accuracy:.3f}",
            val=f"{record.val_accuracy:.3f}",
        )
        self._close()

    def on_interrupt(self, run: Run) -> None:
        """Close the bar; the interruption's message says why it stopped."""
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
