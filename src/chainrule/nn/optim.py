"""Optimizers, in increasing complexity, and learning-rate schedules.

An optimizer holds references to parameter tensors and, on ``step()``, changes their ``data`` in
place from their ``grad``, and records that change on each (``Tensor.mark_modified``), so a graph
recorded before the step refuses ``backward()``. Updates never happen inside a gate's backward
(that could not be gradient-checked); training calls ``backward()`` then ``step()``.

Two things make a step cheap. A dense layer's weight gradient arrives unformed, as the factors of
dᵀx (``gates.OuterProduct``): the update adds ``-lr * dᵀx`` into the weights (or the velocity) in
the matrix product itself, so the gradient is never written out and read back. And ``step`` takes
the L2 penalty's gradient as ``decay * w``, folded into the same update (``fit`` passes
``2 * reg`` for the weights), so the penalty needs no gates and no pass of its own. The level-1
updates (y <- a x + b y) are BLAS calls on NumPy's own BLAS (``chainrule.engine.blas``): one
threaded pass where NumPy needs two or three.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from chainrule.engine.blas import axpby, axpy, gemm_tn
from chainrule.engine.errors import ConfigError
from chainrule.engine.gates import OuterProduct
from chainrule.engine.tensor import Tensor

Grad = np.ndarray | OuterProduct


def _positive(name: str, value: float) -> float:
    if not (isinstance(value, (int, float, np.floating)) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _fraction(name: str, value: float) -> float:
    if not (isinstance(value, (int, float, np.floating)) and 0 <= value < 1):
        raise ConfigError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


class Optimizer:
    """Base: the parameters, the learning rate, and per-parameter state (for resuming).

    Parameters must be float32 or float64: a ConfigError refuses float16 ones, whose updates
    would be made in float16, where every change below 1/2048 of a weight is lost and Adam's eps
    (1e-8) is 0. Train in float32 and cast the trained weights if float16 is wanted.
    """

    def __init__(self, params: Iterable[Tensor], learning_rate: float) -> None:
        self.params = list(params)
        if not self.params:
            raise ConfigError("the optimizer got no parameters")
        for i, p in enumerate(self.params):
            if p.dtype == np.float16:
                raise ConfigError(
                    f"{type(self).__name__}: parameter {i} ({p.name or f'shape {p.shape}'}) is "
                    "float16, which cannot be trained here (updates below 1/2048 of a weight "
                    "are lost): train in float32 and cast the trained weights"
                )
        self.learning_rate = _positive("learning rate", learning_rate)
        self.steps = 0
        # One scratch array per parameter, reused every step: a step allocates nothing.
        self.scratch = [np.empty_like(p.data) for p in self.params]

    def zero_grad(self) -> None:
        """Forget every parameter's gradient."""
        for p in self.params:
            p.grad = None

    def step(self, decay: Sequence[float] | None = None) -> None:
        """Update every parameter that has a gradient.

        decay: one number c per parameter (in ``params`` order): c * w is added to that
        parameter's gradient, which is the gradient of (c / 2) * sum(w**2). ``fit`` passes
        2 * reg for each weight and 0 for each bias. None: no decay.
        """
        if decay is not None and len(decay) != len(self.params):
            raise ConfigError(f"decay has {len(decay)} values for {len(self.params)} parameters")
        self.steps += 1
        by = f"{type(self).__name__}.step()"
        for i, p in enumerate(self.params):
            g, c = p.raw_grad, 0.0 if decay is None else float(decay[i])
            if g is None and c:  # unused by the loss, but the L2 term still pulls it to 0
                g = np.zeros_like(p.data)
            if g is not None:
                self.update(i, p.data, g, c)
                p.mark_modified(by)  # a graph recorded before this step can no longer backward

    def update(self, i: int, w: np.ndarray, dw: Grad, decay: float) -> None:
        """Change parameter i's values w in place, given its gradient dw + decay * w.

        dw: an array of w's shape, or an ``OuterProduct`` of that shape not yet formed.
        """
        raise NotImplementedError

    def _add_grad(self, i: int, alpha: float, dw: Grad, y: np.ndarray) -> None:
        """y <- y + alpha * dw, without forming dw when it is unformed."""
        if type(dw) is OuterProduct:
            gemm_tn(alpha, dw.d, dw.x, 1.0, y)
        else:
            axpy(alpha, dw, y, self.scratch[i])

    def state_dict(self) -> dict[str, np.ndarray]:
        """The optimizer's state as named arrays (to checkpoint, and resume bit for bit)."""
        state = {"steps": np.array(self.steps), "learning_rate": np.array(self.learning_rate)}
        for key, arrays in self._buffers().items():
            for i, a in enumerate(arrays):
                state[f"{key}.{i}"] = a
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore what ``state_dict`` returned."""
        # safetensors may hand 0-d values back as (1,)
        self.steps = int(np.asarray(state["steps"]).reshape(-1)[0])
        self.learning_rate = float(np.asarray(state["learning_rate"]).reshape(-1)[0])
        for key, arrays in self._buffers().items():
            for i, a in enumerate(arrays):
                a[...] = state[f"{key}.{i}"]

    def _buffers(self) -> dict[str, list[np.ndarray]]:
        return {}


class SGD(Optimizer):
    """Vanilla gradient descent: w <- w - learning_rate * dw."""

    def update(self, i: int, w: np.ndarray, dw: Grad, decay: float) -> None:
        # The decay as its own pass, not BLAS's beta (w <- (1 - lr * decay) w + ...): in float32
        # 1 - lr * decay rounds, and at lr * decay ~ 1e-7 the decay would be 10% or more off.
        # (Carrying that rounding from step to step fixes the precision but not the speed:
        # OpenBLAS scales C by a beta other than 1 in a pass of its own before the product.
        # Measured on CIFAR-10: no faster than this threaded axpy, or slower.)
        if decay:
            axpy(-self.learning_rate * decay, w, w, self.scratch[i])
        self._add_grad(i, -self.learning_rate, dw, w)


class Momentum(Optimizer):
    """SGD with momentum: v <- mu * v - lr * dw; w <- w + v.

    With ``nesterov=True`` the gradient is, in effect, taken at the look-ahead point w + mu * v;
    in the form that needs no second gradient: w <- w - mu * v_prev + (1 + mu) * v.
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        learning_rate: float,
        momentum: float = 0.9,
        nesterov: bool = False,
    ) -> None:
        super().__init__(params, learning_rate)
        self.momentum = _fraction("momentum", momentum)
        self.nesterov = nesterov
        self.velocity = [np.zeros_like(p.data) for p in self.params]

    def update(self, i: int, w: np.ndarray, dw: Grad, decay: float) -> None:
        v, mu, lr, tmp = self.velocity[i], self.momentum, self.learning_rate, self.scratch[i]
        if not self.nesterov:
            # v <- mu v - lr decay w, one pass (mu as axpby's beta)
            if decay:
                axpby(-lr * decay, w, mu, v, tmp)
            else:
                v *= mu
            self._add_grad(i, -lr, dw, v)
            axpy(1.0, v, w, tmp)
            return
        axpy(-mu, v, w, tmp)  # w <- w - mu v_prev
        v *= mu
        if decay:
            # the decay term needs w from before the line above: w_before = w + v (= + mu v_prev).
            # Its beta's rounding is an error of ~1e-8 of v, far below v's own.
            axpby(-lr * decay, w, 1 - lr * decay, v, tmp)
        self._add_grad(i, -lr, dw, v)
        axpy(1 + mu, v, w, tmp)  # w <- w - mu v_prev + (1 + mu) v

    def _buffers(self) -> dict[str, list[np.ndarray]]:
        return {"velocity": self.velocity}


class Adam(Optimizer):
    """Adam: running means of the gradient (m) and its square (v), bias-corrected.

    m <- b1 m + (1 - b1) dw; v <- b2 v + (1 - b2) dw^2; t <- t + 1;
    w <- w - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        learning_rate: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(params, learning_rate)
        self.beta1, self.beta2 = _fraction("beta1", beta1), _fraction("beta2", beta2)
        self.eps = _positive("eps", eps)
        self.m = [np.zeros_like(p.data) for p in self.params]
        self.v = [np.zeros_like(p.data) for p in self.params]
        # Adam needs the gradient itself (it squares it): formed here, allocated once.
        self.formed = [np.empty_like(p.data) for p in self.params]

    def update(self, i: int, w: np.ndarray, dw: Grad, decay: float) -> None:
        m, v, b1, b2, t = self.m[i], self.v[i], self.beta1, self.beta2, self.steps
        tmp, g = self.scratch[i], self.formed[i]
        if type(dw) is OuterProduct:
            dw.form(out=g)
            if decay:
                axpy(decay, w, g, tmp)
        elif decay:
            np.multiply(w, decay, out=g)
            g += dw
        else:
            g = dw
        axpby(1 - b1, g, b1, m, tmp)
        np.multiply(g, g, out=tmp)
        axpby(1 - b2, tmp, b2, v, tmp)
        # Fold both bias corrections into the step size and eps: same maths, two fewer passes.
        step = self.learning_rate * math.sqrt(1 - b2**t) / (1 - b1**t)
        eps = self.eps * math.sqrt(1 - b2**t)
        np.sqrt(v, out=tmp)
        tmp += eps
        np.divide(m, tmp, out=tmp)
        axpy(-step, tmp, w, self.formed[i])  # formed[i] is spent: scratch for the NumPy path

    def _buffers(self) -> dict[str, list[np.ndarray]]:
        return {"m": self.m, "v": self.v}


# --- learning-rate schedules: a factor of the base rate for each epoch (counted from 0) ----------


class Schedule:
    """The learning rate for an epoch as a multiple of the base rate."""

    def factor(self, epoch: int) -> float:
        raise NotImplementedError


class Constant(Schedule):
    """No decay."""

    def factor(self, epoch: int) -> float:
        return 1.0


class StepDecay(Schedule):
    """Multiply the rate by ``gamma`` every ``step_size`` epochs (0.95 every epoch: the classic)."""

    def __init__(self, gamma: float, step_size: int = 1) -> None:
        if not 0 < gamma <= 1:
            raise ConfigError(f"learning-rate decay must be in (0, 1], got {gamma!r}")
        if step_size < 1:
            raise ConfigError(f"the decay step must be at least 1 epoch, got {step_size!r}")
        self.gamma, self.step_size = float(gamma), int(step_size)

    def factor(self, epoch: int) -> float:
        return self.gamma ** (epoch // self.step_size)


class CosineDecay(Schedule):
    """From the base rate down to ``min_factor`` of it along half a cosine over ``epochs``."""

    def __init__(self, epochs: int, min_factor: float = 0.0) -> None:
        if epochs < 1:
            raise ConfigError(f"cosine decay needs at least 1 epoch, got {epochs!r}")
        self.epochs, self.min_factor = int(epochs), float(min_factor)

    def factor(self, epoch: int) -> float:
        progress = min(epoch / self.epochs, 1.0)
        return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * progress))


OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
# The arrays of state each keeps per parameter (velocity; Adam's m and v), for memory estimates.
OPTIMIZER_STATE = {"sgd": 0, "momentum": 1, "nesterov": 1, "adam": 2}


def optimizer_from_name(name: str, params: Iterable[Tensor], learning_rate: float) -> Optimizer:
    """The optimizer for a command-line name (one of OPTIMIZERS)."""
    if name == "sgd":
        return SGD(params, learning_rate)
    if name in ("momentum", "nesterov"):
        return Momentum(params, learning_rate, momentum=0.9, nesterov=name == "nesterov")
    if name == "adam":
        return Adam(params, learning_rate)
    raise ConfigError(f"unknown optimizer {name!r} (choose from {', '.join(OPTIMIZERS)})")
