"""The GPU's fast path: a fixed-shape training step captured once as a CUDA graph and replayed.

A training step of a small net on a GPU is bound by launching kernels from Python, not by the
arithmetic: the 2-layer net's step is about 40 small kernels around five matrix products. But its
graph of gates is the same every step, so ``CapturedSteps`` runs the plain step (the gates, the
loss, ``backward()``, the optimizer) once under CuPy's stream capture, which records the kernels
instead of running them, and then launches that recording (a CUDA graph) once per step:

- the mini-batch is gathered on the device into preallocated buffers (``cupy.take(..., out=)``),
  from the epoch's order uploaded once and a step counter that the graph itself advances;
- the loss of every step is added into one device scalar, read back once per epoch;
- values that change between steps live on the device: the step counter, and Adam's step count
  (``Optimizer.device_steps``) for its bias corrections. The learning rate is a constant of the
  recording: a new rate (a schedule's next epoch) is captured anew.

What capture cannot take runs the plain path with the same numbers: the last step of each epoch
(a short batch, or the step that measures the diagnostics) is left to ``fit``'s loop, and a
capture that CuPy refuses leaves every step to it (``CapturedSteps.fallback`` says why).

Memory: CuPy's pool keeps one arena per stream. The graph is recorded on a stream of its own that
nothing else allocates on, so the blocks its temporaries took during capture (freed to the pool
when Python dropped them) are never handed to other work while the graph may still write them.
Nothing in the step copies from the host: constants are made on the device (``full``, not
``asarray`` of a number), since a recorded copy would read a staging buffer that is reused.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.engine import cublas
from chainrule.engine.backend import cupy_module
from chainrule.engine.errors import DivergenceError
from chainrule.engine.tensor import Tensor
from chainrule.nn import Module
from chainrule.nn.losses import LossFn
from chainrule.nn.optim import Optimizer
from chainrule.training.device import DeviceData, prepare


class CapturedSteps:
    """Full mini-batches of one epoch, replayed as a captured CUDA graph (CuPy).

    model, optimizer: already on ``data``'s device. loss: scores (B, K), labels (B,) -> 0-d.
    data: the training rows (N, D) and labels (N,) on the device. batch_size: B (<= N). reg:
    the L2 strength whose penalty ``fit`` adds to the reported loss (its gradient is the
    optimizer's weight decay). Raises DeviceError when CuPy or the GPU is missing.
    """

    def __init__(
        self,
        model: Module,
        loss: LossFn,
        optimizer: Optimizer,
        data: DeviceData,
        batch_size: int,
        reg: float = 0.0,
    ) -> None:
        cp = self.cupy = cupy_module(data.device)
        self.model, self.loss, self.optimizer, self.data = model, loss, optimizer, data
        self.batch_size, self.reg = batch_size, reg
        self.full = len(data) // batch_size  # full batches per epoch
        dims = data.X.shape[1]
        self.order = cp.zeros((max(self.full, 1), batch_size), dtype=cp.int64)
        self.position = cp.zeros((), dtype=cp.int64)  # the next row of ``order``
        self.rows = cp.empty(batch_size, dtype=cp.int64)
        self.X = cp.empty((batch_size, dims), dtype=data.X.dtype)
        self.y = cp.empty(batch_size, dtype=cp.int64)
        self.loss_sum = cp.zeros((), dtype=cp.float64)
        self.stream = cp.cuda.Stream(non_blocking=True)
        self.graph: Any = None
        self.graph_lr: float | None = None
        self.fallback: str | None = None  # why capture failed, when it did
        self.captures = 0
        self.weights = model.weights() if reg > 0 else []
        optimizer.device_steps = cp.asarray(float(optimizer.steps))

    def step(self) -> None:
        """One training step on the device, from the batch at ``position``: what the graph
        records. Gather, forward, loss (+ the penalty's value), backward, update."""
        cp = self.cupy
        cp.take(self.order, self.position, axis=0, out=self.rows)
        cp.take(self.data.X, self.rows, axis=0, out=self.X)
        cp.take(self.data.y, self.rows, axis=0, out=self.y)
        self.position += 1
        data_loss = self.loss(self.model(Tensor(self.X)), self.y)
        value = data_loss.data.astype(cp.float64)
        for w in self.weights:  # (fit's vdot is cuBLAS's, which capture refuses: a sum)
            value = value + self.reg * cp.sum(w.data * w.data, dtype=cp.float64)
        self.loss_sum += value * self.batch_size
        self.optimizer.zero_grad()
        data_loss.backward()
        self.optimizer.step()

    def run(self, order: np.ndarray, start: int, stop: int, epoch: int = 0) -> float:
        """Steps ``start`` to ``stop - 1`` of an epoch whose shuffled row order is ``order``
        (N,) ints (step s takes rows order[s*B:(s+1)*B]; every such step must be a full batch:
        stop <= N // B). Returns the sum over those steps of loss * B, read back once. Raises
        DivergenceError when that sum is not finite."""
        steps = stop - start
        if steps <= 0:
            return 0.0
        if stop > self.full:
            raise ValueError(f"step {stop - 1} is not a full batch ({self.full} per epoch)")
        cp, lr = self.cupy, self.optimizer.learning_rate
        cp.cuda.Device().synchronize()  # the plain path's work (other streams) comes first
        with self.stream:
            host = np.ascontiguousarray(order[: self.full * self.batch_size], dtype=np.int64)
            self.order.set(host.reshape(self.full, self.batch_size), stream=self.stream)
            self.position.fill(start)
            self.loss_sum.fill(0)
            done = 0
            if self.fallback is None and (self.graph is None or self.graph_lr != lr):
                if self.captures == 0:  # first a plain step: kernels compiled, cuBLAS set up
                    self.step()
                    done = 1
                if done < steps:
                    done += self._capture(lr)
            for _ in range(steps - done):
                if self.graph is None:
                    self.step()
                    continue
                self.graph.launch(self.stream)
                self.optimizer.steps += 1  # (Python's count; the device's is in the graph)
            total = float(self.loss_sum.get(stream=self.stream))  # waits for the stream
        if not math.isfinite(total):
            raise DivergenceError(
                f"the loss became {total} in epoch {epoch + 1} (on the GPU, read once per "
                f"epoch): the learning rate ({lr:g}) is likely too high"
            )
        return total

    def _capture(self, lr: float) -> int:
        """Record one step as the graph (replacing any older one). Returns the steps this ran:
        0 (recording runs nothing), or 1 when CuPy refused the capture and the step ran
        plainly instead (``fallback`` then says why, and later steps stay plain)."""
        self.graph = None  # its memory is free for the new recording
        self.optimizer.zero_grad()
        steps = self.optimizer.steps
        try:
            with cublas.recording(self.stream):
                self.stream.begin_capture()
                self.step()
        except Exception as err:  # a kernel or library call that capture does not allow
            self._end_capture_quietly()
            self.fallback = f"{type(err).__name__}: {err}"
            self.optimizer.steps = steps  # nothing recorded ran
            self.step()
            return 1
        self.graph = self.stream.end_capture()
        self.graph_lr, self.captures = lr, self.captures + 1
        self.optimizer.steps = steps  # recorded, not run: the launches count
        return 0

    def _end_capture_quietly(self) -> None:
        try:
            self.stream.end_capture()
        except Exception:  # an invalidated capture: nothing to keep
            pass


def for_fit(
    model: Module,
    loss: LossFn,
    optimizer: Optimizer,
    data: Any,
    batch_size: int,
    reg: float,
    device: str | None,
    captured: bool = True,
) -> CapturedSteps | None:
    """What ``fit`` calls before its first epoch: move the model and optimizer to ``device``
    (None: leave them where the model is) and, for a model on a GPU, return the CapturedSteps
    over data's training rows (X_train (N, D), y_train (N,), copied to the device once). None
    on the CPU, or when ``captured`` is False (an augmentation that makes batches on the host:
    every step then runs the plain path). Raises DeviceError (one line) without CuPy or a GPU."""
    if prepare(model, optimizer, device) == "cpu" or not captured:
        return None
    rows = DeviceData.move(data.X_train, data.y_train, model.device)
    return CapturedSteps(model, loss, optimizer, rows, batch_size, reg)
