"""Where one chainrule training epoch spends its time, beyond the matrix products.

    python benchmarks/profile_chainrule.py --case cifar-200 --threads 2

Three views of one epoch of ``chainrule.fit`` on a case of ``run.py``:

1. per gate: every gate's forward and backward wrapped in a timer (cProfile cannot see inside
   them: ``@`` and ufuncs are not function calls), plus the optimizer step and the rest of the
   loop (batch gathering, the graph walk, Python overhead) as what is left;
2. the matrix products alone (run.py's floor) on the same batches, each product timed apart;
3. cProfile's top functions by own time.

Run it in a fresh process with the thread count fixed, as run.py's children are.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import os
import pstats
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import sysinfo
from cases import CASES


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case", choices=sorted(CASES), default="cifar-200")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    p.add_argument("--max-train", type=int)
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args(argv)
    if os.environ.get("OPENBLAS_NUM_THREADS") != str(args.threads):
        # The thread counts must be set before NumPy loads: start again with them.
        env = sysinfo.child_env(args.threads)
        return os.execve(sys.executable, [sys.executable, *sys.argv], env)  # type: ignore[func-returns-value]

    import contenders
    from chainrule import fit, gates
    from chainrule.optim import SGD
    from child import load_data

    limits = sysinfo.limit_threads(args.threads)  # noqa: F841
    case = CASES[args.case]
    data = load_data(case.dataset, {"data_dir": str(args.data_dir), "max_train": args.max_train})
    print(f"{case.title}: {case.architecture}, {len(data.X_train)} rows, {args.threads} thread(s)")
    print(f"BLAS: {sysinfo.blas_info()}")

    model, options = contenders.chainrule_setup(case, 0, train_eval_size=256)
    fit(model, contenders._warmup_data(data, 20 * case.batch_size), epochs=1, **options)
    # fit scores the validation set after the epoch, and the gate timers would count that too:
    # all training rows, but only 256 validation rows, so evaluation adds ~1% to the gates' time.
    train = contenders._warmup_data(data, len(data.X_train))

    # 1. per gate, and the optimizer step
    times: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    originals = []
    depth = [0]  # a gate calling its parent class's method is counted once, by the outer one

    def wrap(owner: Any, name: str, label: str) -> None:
        original = owner.__dict__[name]

        def timed(*a: Any, **k: Any) -> Any:
            depth[0] += 1
            start = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    times[label] += time.perf_counter() - start
                    calls[label] += 1

        originals.append((owner, name, original))
        setattr(owner, name, timed)

    for cls in vars(gates).values():
        if isinstance(cls, type) and issubclass(cls, gates.Gate) and cls is not gates.Gate:
            for method in ("forward", "backward"):
                if method in cls.__dict__:
                    wrap(cls, method, f"{cls.__name__}.{method}")
    wrap(SGD, "update", "SGD.update (with the dW products, into W)")
    epoch = fit(model, train, epochs=1, **options).epochs[0].seconds
    for owner, name, original in originals:
        setattr(owner, name, original)
    print(f"\n1. one epoch of fit: {epoch:.3f} s (steps only)")
    print(f"{'where':<52}{'seconds':>9}{'share':>8}{'calls':>8}")
    for label, seconds in sorted(times.items(), key=lambda kv: -kv[1]):
        print(f"{label:<52}{seconds:9.3f}{seconds / epoch:8.1%}{calls.get(label, 0):8d}")
    rest = epoch - sum(times.values())
    print(f"{'the rest: gathering, graph walk, Python':<52}{rest:9.3f}{rest / epoch:8.1%}")

    # 2. the products alone, each one timed apart
    print("\n2. the matrix products alone (float32, contiguous batches):")
    products = floor_products(case, data.X_train)
    floor = sum(v for k, v in products.items() if not k.startswith("[not"))
    for label, seconds in products.items():
        print(f"{label:<52}{seconds:9.3f}{seconds / epoch:8.1%}")
    print(f"{'all products (the floor)':<52}{floor:9.3f}{floor / epoch:8.1%}")
    print(f"{'chainrule beyond the floor':<52}{epoch - floor:9.3f}{(epoch - floor) / epoch:8.1%}")

    # 3. cProfile
    profiler = cProfile.Profile()
    profiler.enable()
    epoch = fit(model, train, epochs=1, **options).epochs[0].seconds
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.top)
    print(f"\n3. cProfile of another epoch ({epoch:.3f} s under the profiler), by own time:")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])
    return 0


def floor_products(case: Any, X: Any) -> dict[str, float]:
    """Seconds of each matrix product of a step, summed over one epoch of contiguous batches."""
    import numpy as np

    rng = np.random.default_rng(0)
    n, D = X.shape
    B, K = case.batch_size, case.num_classes
    H = case.hidden_size
    f32 = np.float32
    if H is None:
        W, dS = rng.standard_normal((K, D), dtype=f32), rng.standard_normal((B, K), dtype=f32)
        steps = {
            "X·Wᵀ (B x D x K)": lambda x, b: x @ W.T,
            "dSᵀ·X = dW (K x B x D)": lambda x, b: dS[:b].T @ x,
        }
    else:
        W1 = rng.standard_normal((H, D), dtype=f32) * math.sqrt(2 / D)  # stays float32
        W2 = rng.standard_normal((K, H), dtype=f32)
        dS, h = rng.standard_normal((B, K), dtype=f32), np.ones((B, H), f32)
        dh = rng.standard_normal((B, H), dtype=f32)
        steps = {
            "X·W1ᵀ (B x D x H)": lambda x, b: x @ W1.T,
            "H·W2ᵀ (B x H x K)": lambda x, b: h[:b] @ W2.T,
            "dSᵀ·H = dW2 (K x B x H)": lambda x, b: dS[:b].T @ h[:b],
            "dS·W2 = dH (B x K x H)": lambda x, b: dS[:b] @ W2,
            "dHᵀ·X = dW1 (H x B x D)": lambda x, b: dh[:b].T @ x,
            "[not in the floor] dH·W1 = dX (B x H x D)": lambda x, b: dh[:b] @ W1,
        }
    totals = dict.fromkeys(steps, 0.0)
    for i in range(0, n, B):
        x = X[i : i + B]
        for label, step in steps.items():
            start = time.perf_counter()
            step(x, len(x))
            totals[label] += time.perf_counter() - start
    return totals


if __name__ == "__main__":
    sys.exit(main())
