"""Optimizers, in increasing complexity, and learning-rate schedules.

The update-rule interface, stated once (as CS231n's optim.py states its own): an optimizer holds
references to parameter tensors; ``step()`` changes each one's ``data`` in place from its
``grad``, through ``update(i, w, dw, decay)``, and records the change on it
(``Tensor.mark_modified``), so a graph recorded before the step refuses ``backward()``. Updates
never happen inside a gate's backward (that could not be gradient-checked): training calls
``backward()`` then ``step()``. State per parameter (velocity, Adam's moments) is kept by the
optimizer and saved by ``state_dict`` for a resume bit for bit.

Weight decay, as PyTorch and Keras name it: ``weight_decay`` (λ) adds λ·w to the gradient of every
parameter it applies to, which is the gradient of (λ/2)·sum(w**2). Our L2 convention puts
reg·sum(W**2) in the loss, over the weights and not the biases, so ``weight_decay = 2 * reg`` is
the same term (``fit(reg=...)`` sets it so). Which parameters: each one says for itself
(``nn.Parameter.decay``; nn's layers mark weights True and biases False, a plain Tensor counts as
decayed). Adam couples it, as ``torch.optim.Adam`` does: λ·w joins the gradient before the
moments, because the penalty is part of the loss (decoupled decay, AdamW, would be another
objective). A decayed parameter with no gradient of the data loss still decays, as it would
through the penalty's gates.

The updates are spelled with operators and in-place operators that any array module has (NumPy,
CuPy, array_api_strict: the state lives beside each parameter, ``to`` moves it); the one NumPy-only
trick, writing a scaled gradient into a scratch array allocated once per parameter, is in
``inplace`` (benchmarks/README.md has the A/B that chose it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from chainrule.engine.backend import is_numpy, like, namespace, to_device, to_numpy
from chainrule.engine.errors import ConfigError
from chainrule.engine.tensor import Tensor
from chainrule.nn import inplace, settings
from chainrule.nn.parameter import decays
from chainrule.nn.schedules import Constant, CosineDecay, Schedule, StepDecay

# The schedules live in ``schedules``; they are optim's public names too (optim.StepDecay).
__all__ = [
    "OPTIMIZERS",
    "OPTIMIZER_STATE",
    "SGD",
    "Adam",
    "Constant",
    "CosineDecay",
    "Momentum",
    "Optimizer",
    "Schedule",
    "StepDecay",
    "optimizer_from_name",
]

Array = np.ndarray


class Optimizer:
    """Base: the parameters, the learning rate, weight decay and per-parameter state.

    params: the tensors to train (float32 or float64, any shapes). learning_rate: > 0.
    weight_decay: λ >= 0, added as λ·w to the gradient of each parameter ``decays`` says it
    applies to (2 * reg for our L2 term reg·sum(W**2); see the module docstring). Raises
    ConfigError for no parameters, a bad number, or a float16 parameter, whose updates would be
    made in float16, where every change below 1/2048 of a weight is lost and Adam's eps (1e-8)
    is 0: train in float32 and cast the trained weights if float16 is wanted.
    """

    def __init__(
        self, params: Iterable[Tensor], learning_rate: float, weight_decay: float = 0.0
    ) -> None:
        self.params = list(params)
        if not self.params:
            raise ConfigError("the optimizer got no parameters")
        for i, p in enumerate(self.params):
            if is_numpy(p.data) and p.dtype == np.float16:
                raise ConfigError(
                    f"{type(self).__name__}: parameter {i} ({p.name or f'shape {p.shape}'}) is "
                    "float16, which cannot be trained here (updates below 1/2048 of a weight "
                    "are lost): train in float32 and cast the trained weights"
                )
        self.learning_rate = settings.positive("learning rate", learning_rate)
        self.weight_decay = settings.decay_rate(weight_decay)
        self.decayed = [decays(p) for p in self.params]
        self.steps = 0
        # On a GPU, a 0-d array counting the steps there: a captured CUDA graph replays the
        # step (see training.captured), and Adam's bias corrections must see the count grow.
        self.device_steps: Array | None = None
        # One scratch array per parameter, reused every step (see inplace.scaled).
        self.scratch = [namespace(p.data).empty_like(p.data) for p in self.params]

    buffers = ("scratch",)  # the per-parameter array lists, moved by ``to``

    def to(self, device: str) -> Optimizer:
        """Move the optimizer's state to ``device`` (as ``Module.to`` moves the parameters);
        returns self. Raises DeviceError as ``backend.to_device``."""
        for name in self.buffers:
            setattr(self, name, [to_device(a, device) for a in getattr(self, name)])
        if device == "cpu":
            self.device_steps = None
        return self

    def zero_grad(self) -> None:
        """Forget every parameter's gradient."""
        for p in self.params:
            p.grad = None

    def decay(self, i: int) -> float:
        """λ for parameter i: ``weight_decay`` where it applies, else 0."""
        return self.weight_decay if self.decayed[i] else 0.0

    def gradients(self) -> list[Array | None]:
        """Each parameter's gradient as the update takes it, grad + λ·w (new arrays where λ > 0;
        None for a parameter with neither a gradient nor decay), in ``params`` order."""
        out: list[Array | None] = []
        for i, p in enumerate(self.params):
            g, decay = p.grad, self.decay(i)
            out.append(g if not decay else decay * p.data + (0 if g is None else g))
        return out

    def step(self) -> None:
        """Update every parameter that has a gradient, or weight decay, in place."""
        self.steps += 1
        if self.device_steps is not None:  # (before the updates: Adam's t counts this step)
            self.device_steps += 1
        by = f"{type(self).__name__}.step()"
        for i, p in enumerate(self.params):
            g, decay = p.grad, self.decay(i)
            if g is None and decay:  # unused by the loss, but the L2 term still pulls it to 0
                g = namespace(p.data).zeros_like(p.data)
            if g is not None:
                self.update(i, p.data, g, decay)
                p.mark_modified(by)  # a graph recorded before this step can no longer backward

    def update(self, i: int, w: Array, dw: Array, decay: float) -> None:
        """Change parameter i's values w in place. w, dw: one shape (dw the gradient of the data
        loss); decay: λ, so that the gradient the rule follows is dw + λ·w."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Array]:
        """The optimizer's state as named NumPy arrays, whatever the device (to checkpoint, and
        resume bit for bit)."""
        state = {"steps": np.array(self.steps), "learning_rate": np.array(self.learning_rate)}
        for key, arrays in self._buffers().items():
            for i, a in enumerate(arrays):
                state[f"{key}.{i}"] = to_numpy(a).copy()
        return state

    def load_state_dict(self, state: dict[str, Array]) -> None:
        """Restore what ``state_dict`` returned. Raises KeyError for a missing entry, ValueError
        for an array of another shape."""
        # safetensors may hand 0-d values back as (1,)
        self.steps = int(np.asarray(state["steps"]).reshape(-1)[0])
        self.learning_rate = float(np.asarray(state["learning_rate"]).reshape(-1)[0])
        for key, arrays in self._buffers().items():
            for i, a in enumerate(arrays):
                a[...] = like(state[f"{key}.{i}"], a)

    def _buffers(self) -> dict[str, list[Array]]:
        return {}

    def _lr_gradient(self, i: int, w: Array, dw: Array, decay: float, scale: float) -> Array:
        """scale * (dw + decay * w), in parameter i's scratch array."""
        if not decay:
            return inplace.scaled(scale, dw, self.scratch[i])
        s = inplace.scaled(decay, w, self.scratch[i])
        s += dw
        s *= scale
        return s


class SGD(Optimizer):
    """Vanilla gradient descent: w <- w - learning_rate * (dw + λ·w)."""

    def update(self, i: int, w: Array, dw: Array, decay: float) -> None:
        """One step of parameter i (see ``Optimizer.update``)."""
        w -= self._lr_gradient(i, w, dw, decay, self.learning_rate)


class Momentum(Optimizer):
    """SGD with momentum: v <- mu * v - lr * g; w <- w + v, with g = dw + λ·w.

    ``nesterov=True``: the gradient is, in effect, taken at the look-ahead point w + mu * v, in
    the form that needs no second gradient (Keras's): v <- mu * v - lr * g;
    w <- w + mu * v - lr * g.
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        learning_rate: float,
        momentum: float = 0.9,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, learning_rate, weight_decay)
        self.momentum = settings.fraction("momentum", momentum)
        self.nesterov = nesterov
        self.velocity = [namespace(p.data).zeros_like(p.data) for p in self.params]

    buffers = ("scratch", "velocity")

    def update(self, i: int, w: Array, dw: Array, decay: float) -> None:
        """One step of parameter i (see ``Optimizer.update``)."""
        v, mu = self.velocity[i], self.momentum
        step = self._lr_gradient(i, w, dw, decay, self.learning_rate)  # lr * g
        v *= mu
        v -= step
        if not self.nesterov:
            w += v
            return
        w -= step
        w += inplace.scaled(mu, v, step)  # (the scratch is free again)

    def _buffers(self) -> dict[str, list[Array]]:
        return {"velocity": self.velocity}


class Adam(Optimizer):
    """Adam: running means of the gradient (m) and its square (v), bias-corrected.

    g = dw + λ·w (coupled L2, as torch.optim.Adam); m <- b1 m + (1 - b1) g;
    v <- b2 v + (1 - b2) g^2; t <- t + 1; w <- w - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t))
    + eps). Kingma and Ba, "Adam: A Method for Stochastic Optimization" (2015), Algorithm 1.
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        learning_rate: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, learning_rate, weight_decay)
        self.beta1, self.beta2 = (
            settings.fraction("beta1", beta1),
            settings.fraction("beta2", beta2),
        )
        self.eps = settings.positive("eps", eps)
        self.m = [namespace(p.data).zeros_like(p.data) for p in self.params]
        self.v = [namespace(p.data).zeros_like(p.data) for p in self.params]
        self.total = [
            namespace(p.data).empty_like(p.data) for p in self.params
        ]  # g = dw + λ·w, where λ > 0

    buffers = ("scratch", "m", "v", "total")

    def update(self, i: int, w: Array, dw: Array, decay: float) -> None:
        """One step of parameter i (see ``Optimizer.update``)."""
        m, v, b1, b2 = self.m[i], self.v[i], self.beta1, self.beta2
        g = self._lr_gradient(i, w, dw, decay, 1.0) if decay else dw
        tmp = self.total[i] if decay else self.scratch[i]  # the buffer g does not hold
        m *= b1
        m += inplace.scaled(1 - b1, g, tmp)
        v *= b2
        tmp = inplace.scaled(g, g, tmp)
        tmp *= 1 - b2
        v += tmp
        step, eps = self._corrected()
        tmp = inplace.sqrt(v, tmp)
        tmp += eps
        tmp = inplace.divided(m, tmp)
        w -= inplace.scaled(step, tmp, tmp)

    def _buffers(self) -> dict[str, list[Array]]:
        return {"m": self.m, "v": self.v}

    def _corrected(self) -> tuple[float | Array, float | Array]:
        """The step size and eps with both bias corrections folded in (the same maths, two
        passes fewer): Python numbers, or 0-d arrays computed on the GPU from ``device_steps``
        (in a captured step the count is a value on the device, not in Python)."""
        t = self.steps if self.device_steps is None else self.device_steps
        sqrt = math.sqrt if self.device_steps is None else namespace(t).sqrt
        c2 = sqrt(1 - self.beta2**t)
        return self.learning_rate * c2 / (1 - self.beta1**t), self.eps * c2


OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
# The arrays of state each keeps per parameter (velocity; Adam's m and v), for memory estimates.
OPTIMIZER_STATE = {"sgd": 0, "momentum": 1, "nesterov": 1, "adam": 2}


def optimizer_from_name(
    name: str, params: Iterable[Tensor], learning_rate: float, weight_decay: float = 0.0
) -> Optimizer:
    """The optimizer for a command-line name (one of OPTIMIZERS), with ``weight_decay`` (λ).

    Raises ConfigError for an unknown name or a bad number."""
    if name == "sgd":
        return SGD(params, learning_rate, weight_decay)
    if name in ("momentum", "nesterov"):
        nesterov = name == "nesterov"
        return Momentum(params, learning_rate, 0.9, nesterov, weight_decay)
    if name == "adam":
        return Adam(params, learning_rate, weight_decay=weight_decay)
    raise ConfigError(f"unknown optimizer {name!r} (choose from {', '.join(OPTIMIZERS)})")
