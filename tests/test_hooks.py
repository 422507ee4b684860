"""fit's hooks: the order they are called in, stopping, checkpoints and metrics through them."""

from __future__ import annotations

import csv
import signal

import numpy as np
import pytest

from chainrule import nn
from chainrule.engine.errors import DivergenceError
from chainrule.nn import optim
from chainrule.training.hooks import (
    Checkpoint,
    EpochCallback,
    Hook,
    MetricsFile,
    StopOnSignal,
    TrainingInterrupted,
)
from chainrule.training.loop import fit
from chainrule.training.progress import Progress
from chainrule.training.state import checkpoint_history
from test_train import blobs


class Recorder(Hook):
    """Writes down every call, and what the run held at each."""

    def __init__(self):
        self.events = []

    def on_train_begin(self, run):
        self.events.append(("begin", len(run.state.history), signal.getsignal(signal.SIGINT)))

    def on_epoch_begin(self, run, epoch):
        self.events.append(("epoch", epoch, run.state.step))

    def on_step_end(self, run, loss):
        self.events.append(("step", run.state.step, round(loss, 12)))

    def on_epoch_end(self, run, record):
        history = run.state.history
        self.events.append(("end", record.epoch, history.epochs[-1] is record, history.best_epoch))

    def on_interrupt(self, run):
        self.events.append(("interrupt", run.state.step))

    def on_train_end(self, run, error):
        self.events.append(("done", type(error).__name__ if error else None))


def train(epochs=2, hooks=(), **kwargs):
    model = nn.TwoLayerNet(5, 8, 3, np.random.default_rng(0))
    history = fit(
        model,
        blobs(),
        optimizer=optim.Momentum(model.parameters(), 0.05),
        epochs=epochs,
        batch_size=80,  # 240 training rows: three steps an epoch
        reg=1e-3,
        rng=np.random.default_rng(3),
        hooks=list(hooks),
        **kwargs,
    )
    return model, history


def test_hooks_are_called_in_order_and_see_the_recorded_epoch(capsys):
    recorder = Recorder()
    _, history = train(hooks=[recorder])
    events = recorder.events
    # with hooks given, fit adds no signal handler and no progress of its own
    assert events[0] == ("begin", 0, signal.default_int_handler)
    assert capsys.readouterr().err == ""
    kinds = [e[0] for e in events]
    assert kinds == ["begin"] + (["epoch"] + ["step"] * 3 + ["end"]) * 2 + ["done"]
    assert [e[1] for e in events if e[0] == "step"] == [1, 2, 3, 1, 2, 3]
    assert events[5] == ("end", 1, True, 1) and events[-1] == ("done", None)
    assert events[10][:3] == ("end", 2, True) and events[10][3] == history.best_epoch
    losses = [e[2] for e in events if e[0] == "step"]
    assert history.loss[0] == pytest.approx((losses[0] + losses[1] + losses[2]) / 3, rel=1e-6)


def test_without_hooks_fit_stops_on_signals_and_restores_the_handlers():
    recorder = Recorder()
    train(epochs=1, on_epoch=lambda r: None, hooks=[recorder])  # keywords add their hooks
    assert recorder.events[0][2] is signal.default_int_handler
    seen = []
    model = nn.LinearClassifier(5, 3, np.random.default_rng(0))
    fit(
        model,
        blobs(),
        epochs=1,
        progress=False,
        on_epoch=lambda r: seen.append(signal.getsignal(signal.SIGINT)),
    )
    assert getattr(seen[0], "__self__", None).__class__ is StopOnSignal
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


class StopAt(Hook):
    def __init__(self, step):
        self.step, self.steps = step, 0

    def on_step_end(self, run, loss):
        self.steps += 1
        if self.steps == self.step:
            run.stop_signal = signal.SIGTERM


def test_a_hook_stops_the_run_and_the_checkpoint_hook_resumes_it_bit_for_bit(tmp_path):
    straight, h1 = train(epochs=3)
    ckpt = tmp_path / "ckpt.safetensors"
    recorder = Recorder()
    with pytest.raises(TrainingInterrupted, match=f"epoch 2, step 2; resume from {ckpt}$"):
        train(epochs=3, hooks=[StopAt(5), Checkpoint(ckpt), recorder])
    assert recorder.events[-2:] == [("interrupt", 2), ("done", "TrainingInterrupted")]
    assert len(checkpoint_history(ckpt)) == 1
    resumer = Recorder()
    resumed, h2 = train(epochs=3, hooks=[Checkpoint(ckpt), resumer], resume=True)
    assert resumer.events[:2] == [("begin", 1, signal.default_int_handler), ("epoch", 1, 2)]
    for k, v in straight.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[k], v)
    assert h2.loss == h1.loss


def test_an_error_from_on_epoch_propagates_after_that_epochs_checkpoint(tmp_path):
    class Pruned(Exception):
        pass

    def prune(record):
        if record.epoch == 2:
            raise Pruned

    ckpt = tmp_path / "ckpt.safetensors"
    recorder = Recorder()
    with pytest.raises(Pruned):
        train(epochs=4, hooks=[Checkpoint(ckpt), EpochCallback(prune), recorder])
    assert len(checkpoint_history(ckpt)) == 2
    assert recorder.events[-1] == ("done", "Pruned")
    assert [e[1] for e in recorder.events if e[0] == "end"] == [1]  # after prune in the list
    with pytest.raises(Pruned):  # the old keywords: the same order
        train(epochs=4, checkpoint=tmp_path / "k2.safetensors", on_epoch=prune, progress=False)
    assert len(checkpoint_history(tmp_path / "k2.safetensors")) == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_metrics_file_restarts_from_the_checkpoints_history(tmp_path):
    ckpt, metrics = tmp_path / "ckpt.safetensors", tmp_path / "metrics.csv"
    train(epochs=2, hooks=[Checkpoint(ckpt), MetricsFile(metrics)])
    rows = metrics.read_text().splitlines()
    metrics.write_text("\n".join(rows[:-1]) + "\n")  # killed between a checkpoint and its row
    _, history = train(epochs=3, hooks=[Checkpoint(ckpt), MetricsFile(metrics)], resume=True)
    with metrics.open() as f:
        table = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in table] == [1, 2, 3]
    assert [float(r["loss"]) for r in table] == history.loss
    assert "grad_norm/W1" in table[0]


def test_a_divergence_reaches_on_train_end():
    recorder = Recorder()
    model = nn.TwoLayerNet(5, 8, 3, np.random.default_rng(0))
    data = blobs()
    data.X_train *= 1e30
    with pytest.raises(DivergenceError, match="epoch 1, step 2: the learning rate"):
        fit(model, data, optimizer=optim.SGD(model.parameters(), 1.0), hooks=[recorder])
    assert [e[0] for e in recorder.events] == ["begin", "epoch", "step", "done"]
    assert recorder.events[-1] == ("done", "DivergenceError")


def test_the_progress_hook_writes_one_line_per_epoch(capsys):
    train(epochs=2, hooks=[Progress()])
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert all(", train 0." in line and ", val 0." in line for line in lines)
