"""Checking analytic gradients against finite differences.

The analytic gradient (one forward and one backward pass) is what we train with; the numerical
one (two forward passes per coordinate) is slow but needs no calculus, so it is the referee.
Checks run in float64: float32's 7 digits drown a centred difference in round-off.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.engine.tensor import Tensor, no_grad


def rel_error(a: Any, b: Any, floor: float = 1e-8) -> float:
    """max |a - b| / max(|a| + |b|, floor), elementwise, over arrays of the same shape.

    The floor keeps two gradients that are both (almost) zero from counting as far apart.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes {a.shape} and {b.shape} differ")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), floor)))


def numerical_gradient(
    f: Callable[[np.ndarray], Any],
    x: np.ndarray,
    h: float = 1e-5,
    dout: np.ndarray | None = None,
    coords: Sequence[tuple[int, ...]] | None = None,
) -> np.ndarray:
    """Centred differences: df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / 2h, one coordinate at a time.

    f: takes ``x`` (any shape) and returns a number, or an array when ``dout`` (same shape as that
    array) is given: then the result is the gradient of sum(f(x) * dout). ``x`` is perturbed in
    place and restored. coords: the indices to check (default all); the others stay 0.
    Returns an array of x's shape. Costs two calls of ``f`` per coordinate.
    """
    return _centred_differences(f, x, h, dout, coords)[0]


def _centred_differences(
    f: Callable[[np.ndarray], Any],
    x: np.ndarray,
    h: float,
    dout: np.ndarray | None,
    coords: Sequence[tuple[int, ...]] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The numerical gradient, and for each coordinate the round-off it cannot resolve below."""
    grad = np.zeros(x.shape, dtype=np.float64)
    noise = np.zeros(x.shape, dtype=np.float64)
    weights = 1.0 if dout is None else np.abs(dout)
    indices = coords if coords is not None else list(np.ndindex(*x.shape))
    for idx in indices:
        old = x[idx]
        x[idx] = old + h
        plus = np.array(f(x), dtype=np.float64)  # a copy: f may return a view of x
        x[idx] = old - h
        minus = np.array(f(x), dtype=np.float64)
        x[idx] = old
        # Subtract the outputs before weighting them: unchanged elements cancel exactly, so the
        # round-off is that of the elements that moved, not of the whole sum.
        diff = plus - minus
        grad[idx] = (np.sum(diff) if dout is None else np.sum(diff * dout)) / (2 * h)
        moved = diff != 0
        rounding = np.finfo(np.float64).eps * (np.abs(plus) + np.abs(minus)) * weights
        noise[idx] = np.sum(rounding * moved) / (2 * h)
    return grad, noise


@dataclass
class InputCheck:
    """The outcome for one input: how many coordinates were checked and the worst errors."""

    name: str
    shape: tuple[int, ...]
    checked: int
    max_abs_error: float
    max_rel_error: float
    ok: bool


@dataclass
class GradcheckReport:
    """All inputs' outcomes; ``ok`` when every checked coordinate is within ``tol``.

    forward_passes counts the forward evaluations the numerical gradient cost; the two times set
    that against one analytic forward-and-backward pass.
    """

    inputs: list[InputCheck] = field(default_factory=list)
    tol: float = 1e-7
    forward_passes: int = 0
    seconds_numerical: float = 0.0
    seconds_analytic: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every input passed."""
        return all(check.ok for check in self.inputs)

    @property
    def max_rel_error(self) -> float:
        """The largest relative error over all inputs (0 with none checked)."""
        return max((check.max_rel_error for check in self.inputs), default=0.0)

    def _repr_html_(self) -> str:  # Jupyter's rich display
        from chainrule.engine.display import gradcheck_html

        return gradcheck_html(self)

    def table(self) -> str:
        """The report as a fixed-width text table."""
        rows = [
            f"{'input':<10} {'shape':<14} {'checked':>8} {'max abs err':>12} "
            f"{'max rel err':>12}  result"
        ]
        for c in self.inputs:
            rows.append(
                f"{c.name:<10} {c.shape!s:<14} {c.checked:>8} {c.max_abs_error:>12.2e} "
                f"{c.max_rel_error:>12.2e}  {'pass' if c.ok else 'FAIL'}"
            )
        verdict = "pass" if self.ok else "FAIL"
        rows.append(
            f"overall: {verdict} (max rel err {self.max_rel_error:.2e}, tolerance {self.tol:.0e}); "
            f"{self.forward_passes} forward passes in {self.seconds_numerical:.3f} s for the "
            f"numerical gradient vs {self.seconds_analytic:.4f} s for one forward+backward"
        )
        return "\n".join(rows)

    def __str__(self) -> str:
        return self.table()


def gradcheck(
    f: Callable[..., Tensor],
    inputs: Sequence[Any],
    names: Sequence[str] | None = None,
    h: float = 1e-5,
    tol: float = 1e-7,
    max_coords: int | None = None,
    rng: np.random.Generator | None = None,
    dout: np.ndarray | None = None,
) -> GradcheckReport:
    """Compare the analytic gradient of ``f`` for every input with centred differences.

    f: takes one Tensor per input and returns a Tensor of any shape. A non-scalar output is
    reduced with an upstream gradient ``dout`` (random normal from ``rng`` if not given), which
    checks the backward pass for every output element at once.
    inputs: arrays or Tensors; each is copied to float64, so the caller's data is not touched.
    max_coords: check at most this many coordinates per input, sampled with ``rng``.
    ``f`` must be a pure function of its inputs: it is called three times for the analytic
    timing (the best counts) and twice per checked coordinate.
    Relative error per coordinate: |a - n| / max(|a| + |n|, 2 * noise / tol, 1e-8), where noise is
    the float64 round-off of that coordinate's difference (eps * |f| / h, ~1e-11 for f ~ 1): a
    component too small for a centred difference to resolve (an exact 0, say) passes when it
    agrees to within that round-off. Away from kinks only: a difference across a kink measures
    neither side.
    Returns a GradcheckReport (``.ok``, ``.max_rel_error``, a printable table).
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    arrays = [np.array(x.data if isinstance(x, Tensor) else x, dtype=np.float64) for x in inputs]
    names = list(names) if names is not None else [f"x{i}" for i in range(len(arrays))]
    if len(names) != len(arrays):
        raise ValueError(f"gradcheck: {len(names)} names for {len(arrays)} inputs")

    analytic, seed, seconds_analytic = _analytic_gradients(f, arrays, rng, dout)
    report = GradcheckReport(tol=tol, seconds_analytic=seconds_analytic)
    start = time.perf_counter()
    for i, (name, x) in enumerate(zip(names, arrays)):
        coords = list(np.ndindex(*x.shape))
        if max_coords is not None and len(coords) > max_coords:
            picked = rng.choice(len(coords), size=max_coords, replace=False)
            coords = [coords[j] for j in sorted(picked)]

        def evaluate(xi: np.ndarray, i: int = i) -> np.ndarray:
            with no_grad():
                args = [Tensor(xi) if j == i else Tensor(arrays[j]) for j in range(len(arrays))]
                return f(*args).data

        numeric, noise = _centred_differences(evaluate, x, h, seed, coords)
        report.forward_passes += 2 * len(coords)
        report.inputs.append(_compare(name, x.shape, coords, analytic[i], numeric, noise, tol))
    report.seconds_numerical = time.perf_counter() - start
    return report


def _analytic_gradients(
    f: Callable[..., Tensor],
    arrays: list[np.ndarray],
    rng: np.random.Generator,
    dout: np.ndarray | None,
) -> tuple[list[np.ndarray], np.ndarray | None, float]:
    """The gradient of every input by one backward pass (the best time of three calls), and the
    upstream gradient used: None for a one-element output (then it is 1), else ``dout`` or a
    random normal array of the output's shape. Raises TypeError when f returns no Tensor."""
    seed = None
    seconds = float("inf")
    for _ in range(3):  # the best of three: one cold call can be an outlier
        leaves = [Tensor(a.copy(), requires_grad=True) for a in arrays]
        start = time.perf_counter()
        out = f(*leaves)
        if not isinstance(out, Tensor):
            raise TypeError(f"gradcheck: f must return a Tensor, got {type(out).__name__}")
        if seed is None and out.size == 1:
            seed = np.ones(out.shape)
        elif seed is None:
            seed = rng.standard_normal(out.shape) if dout is None else np.asarray(dout, np.float64)
        out.backward(seed)
        seconds = min(seconds, time.perf_counter() - start)
    analytic = [
        np.zeros(a.shape) if t.grad is None else np.asarray(t.grad) for t, a in zip(leaves, arrays)
    ]
    return analytic, None if out.size == 1 else seed, seconds


def _compare(
    name: str,
    shape: tuple[int, ...],
    coords: list[tuple[int, ...]],
    analytic: np.ndarray,
    numeric: np.ndarray,
    noise: np.ndarray,
    tol: float,
) -> InputCheck:
    """One input's verdict over the checked coordinates (all three arrays of ``shape``)."""
    if not coords:
        return InputCheck(name, shape, 0, 0.0, 0.0, True)
    idx = tuple(np.array(coords).T)
    a, n = analytic[idx], numeric[idx]
    abs_err = float(np.max(np.abs(a - n)))
    # A component smaller than the difference's own round-off is compared at that
    # round-off: (|a| + |n|) is floored at 2 * noise / tol.
    floor = np.maximum(2 * noise[idx] / tol, 1e-8)
    rel = float(np.max(np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), floor)))
    return InputCheck(name, shape, len(coords), abs_err, rel, rel < tol)
