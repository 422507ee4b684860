"""The scalar engine: chainrule's 0-d Tensors against micrograd's Values.

Three measurements:

- agreement: the gradients of sum(tanh(a_i*b_i + c_i)) from both engines on a small case;
- wide: building and back-propagating sum(tanh(a_i*b_i + c_i)) for many terms, summed two ways:
  a Python ``sum`` (a left fold, so the graph is as deep as it is wide) and a pairwise tree
  (depth log2 n, which micrograd's recursive topological sort can handle);
- deep: a chain y = y * 1.0 repeated; micrograd's recursive sort raises RecursionError past about
  the interpreter's recursion limit, chainrule's iterative sort does not.

micrograd 0.1.0 has no tanh (its Value has +, *, **, relu). ``micrograd_tanh`` adds one in its
own style, a closure ``_backward`` next to the forward, as its author's lecture version does.
"""

from __future__ import annotations

import gc
import math
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any


def micrograd_tanh(x: Any) -> Any:
    """tanh for a micrograd Value, written the way micrograd writes its own ops."""
    from micrograd.engine import Value

    t = math.tanh(x.data)
    out = Value(t, (x,), "tanh")

    def _backward() -> None:
        x.grad += (1 - t * t) * out.grad

    out._backward = _backward
    return out


def _inputs(n: int) -> tuple[list[float], list[float], list[float]]:
    import random

    r = random.Random(0)
    return (
        [r.uniform(-1, 1) for _ in range(n)],
        [r.uniform(-1, 1) for _ in range(n)],
        [r.uniform(-1, 1) for _ in range(n)],
    )


def tree_sum(terms: Sequence[Any]) -> Any:
    """Pairwise sum: depth log2(len(terms)) instead of len(terms)."""
    xs = list(terms)
    while len(xs) > 1:
        xs = [xs[i] + xs[i + 1] if i + 1 < len(xs) else xs[i] for i in range(0, len(xs), 2)]
    return xs[0]


def python_sum(terms: Sequence[Any]) -> Any:
    return sum(terms)


class Engine:
    """How one engine makes leaves, applies tanh, and reads a gradient."""

    def __init__(
        self,
        name: str,
        leaf: Callable[[float], Any],
        tanh: Callable[[Any], Any],
        grad: Callable[[Any], float],
    ) -> None:
        self.name, self.leaf, self.tanh, self.grad = name, leaf, tanh, grad


def engines() -> tuple[list[Engine], list[str]]:
    """The engines that are importable here, and a note for each one that is not."""
    import chainrule

    found = [
        Engine(
            "chainrule",
            lambda v: chainrule.Tensor(v, requires_grad=True),
            lambda x: x.tanh(),
            lambda x: float(x.grad),
        )
    ]
    notes = []
    try:
        from micrograd.engine import Value
    except ImportError as err:
        notes.append(f"micrograd is not importable ({err}): its rows are skipped")
    else:
        found.append(Engine("micrograd", Value, micrograd_tanh, lambda x: float(x.grad)))
    return found, notes


def wide(engine: Engine, n: int, summation: Callable[[Sequence[Any]], Any]) -> dict[str, Any]:
    """Build sum(tanh(a*b + c)) over n terms and back-propagate it; the seconds of each phase."""
    A, B, C = _inputs(n)
    a, b, c = ([engine.leaf(v) for v in vs] for vs in (A, B, C))
    gc.collect()
    start = time.perf_counter()
    total = summation([engine.tanh(ai * bi + ci) for ai, bi, ci in zip(a, b, c)])
    limit = sys.getrecursionlimit()
    result = _backward_timed(total, start, f"RecursionError (recursion limit {limit})")
    if "error" not in result:
        result["grad_a0"] = engine.grad(a[0])
    return result


def _backward_timed(root: Any, start: float, error: str) -> dict[str, Any]:
    """Back-propagate ``root``, built since ``start``: the seconds of each phase, or ``error``
    when the engine runs out of recursion."""
    built = time.perf_counter()
    result: dict[str, Any] = {"build_seconds": built - start}
    try:
        root.backward()
    except RecursionError:
        result["error"] = error
        return result
    result["backward_seconds"] = time.perf_counter() - built
    result["seconds"] = result["build_seconds"] + result["backward_seconds"]
    return result


def run_with_deep_stack(fn: Callable[[], Any], limit: int) -> Any:
    """fn() with the recursion limit raised to ``limit``, on a thread with a 1 GiB stack.

    What a micrograd user must do to back-propagate a deep graph; not needed by chainrule.
    """
    box: dict[str, Any] = {}
    old_limit, old_stack = sys.getrecursionlimit(), threading.stack_size()

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as err:  # handed to the caller below
            box["error"] = err

    sys.setrecursionlimit(limit)
    threading.stack_size(1 << 30)
    try:
        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
    finally:
        threading.stack_size(old_stack)
        sys.setrecursionlimit(old_limit)
    if "error" in box:
        raise box["error"]
    return box["value"]


def deep_chain(engine: Engine, depth: int) -> dict[str, Any]:
    """y = x, then y = y * 1.0 ``depth`` times; back-propagate; dy/dx must be exactly 1."""
    x = engine.leaf(0.5)
    gc.collect()
    start = time.perf_counter()
    y = x
    for _ in range(depth):
        y = y * 1.0
    result = {"depth": depth, **_backward_timed(y, start, f"RecursionError at depth {depth}")}
    if "error" not in result:
        result["grad"] = engine.grad(x)
    return result


def deepest_chain(engine: Engine, hi: int) -> int:
    """The deepest chain (<= hi) that ``engine`` back-propagates at the default recursion limit."""
    lo = 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if "error" in deep_chain(engine, mid):
            hi = mid - 1
        else:
            lo = mid
    return lo


def agreement(found: list[Engine], n: int = 50) -> dict[str, Any]:
    """The largest difference between the engines' gradients of sum(tanh(a*b + c)), n terms."""
    A, B, C = _inputs(n)
    grads = {}
    for engine in found:
        a, b, c = ([engine.leaf(v) for v in vs] for vs in (A, B, C))
        total = python_sum([engine.tanh(ai * bi + ci) for ai, bi, ci in zip(a, b, c)])
        total.backward()
        grads[engine.name] = [engine.grad(v) for v in (*a, *b, *c)]
    out: dict[str, Any] = {"terms": n}
    if len(grads) == 2:
        first, second = grads.values()
        out["max_abs_diff"] = max(abs(p - q) for p, q in zip(first, second))
        out["max_abs_grad"] = max(abs(p) for p in first)
    return out


def run(terms: int, depth: int, rounds: int) -> dict[str, Any]:
    """Every scalar measurement; engines interleaved within each round."""
    found, notes = engines()
    result: dict[str, Any] = {
        "terms": terms,
        "depth": depth,
        "rounds": rounds,
        "notes": notes,
        "agreement": agreement(found),
        "recursion_limit": sys.getrecursionlimit(),
    }
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        e.name: {"python_sum": [], "tree_sum": [], "deep": []} for e in found
    }
    for r in range(rounds):
        for engine in found if r % 2 == 0 else found[::-1]:
            print(f"  scalar round {r + 1}/{rounds}: {engine.name}", file=sys.stderr, flush=True)
            per = runs[engine.name]
            per["tree_sum"].append(wide(engine, terms, tree_sum))
            try:
                per["python_sum"].append(wide(engine, terms, python_sum))
            except RecursionError:  # raised while building (not possible today), kept safe
                per["python_sum"].append({"error": "RecursionError while building"})
            per["deep"].append(deep_chain(engine, depth))
            gc.collect()
    result["runs"] = runs
    if any(e.name == "micrograd" for e in found):
        micrograd = next(e for e in found if e.name == "micrograd")
        # What it takes micrograd to back-propagate the Python-sum graph: a raised limit.
        limit = 10 * max(terms, depth) + 1000
        raised = run_with_deep_stack(lambda: wide(micrograd, terms, python_sum), limit)
        raised["recursion_limit"] = limit
        result["micrograd_python_sum_raised_limit"] = raised
        result["micrograd_deepest_chain"] = deepest_chain(micrograd, depth)
    result["summary"] = {
        name: {kind: _stats(rows) for kind, rows in per.items()} for name, per in runs.items()
    }
    return result


def _stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in rows if "seconds" in r]
    errors = sorted({r["error"] for r in rows if "error" in r})
    out: dict[str, Any] = {"ok": len(ok), "errors": errors}
    for key in ("seconds", "build_seconds", "backward_seconds"):
        values = [r[key] for r in ok]
        if values:
            out[key] = {"min": min(values), "median": statistics.median(values)}
    builds = [r["build_seconds"] for r in rows]
    if builds and not ok:
        out["build_seconds"] = {"min": min(builds), "median": statistics.median(builds)}
    return out
