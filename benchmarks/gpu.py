"""The GPU section: ``python benchmarks/gpu.py DATA_DIR OUT_JSON`` (where CuPy and a GPU are).

CIFAR-10 (JPEG), the 2-layer net 3072-1000-10, batch 200, float32, SGD (learning rate 1e-3,
reg 1e-4: contenders.py's cifar-200 case), the same batches for every contender. Measured, each
as seconds per epoch, the median of 5 epochs after a warm-up epoch:

- chainrule on the GPU: ``fit(device="cuda")``, steps replayed as a captured CUDA graph
  (EpochRecord.seconds: the steps, not the evaluation);
- chainrule's plain path on the GPU (no capture; one epoch after a warm-up), to show what capture
  buys;
- PyTorch CUDA eager, the same net and optimizer, where torch with CUDA is installed (otherwise
  the output says it is not there: no figure is made up);
- the floor: only the five matrix products of every step (forward 2, backward 3), one step's
  five recorded as a CUDA graph and replayed per step, timed with CUDA events.

Then the test accuracy after those 6 epochs, and the same 6 epochs of ``fit`` on the CPU (NumPy)
from the same start: the two accuracies must agree within noise. Device name, driver and CuPy
version go into the JSON; ``report.py`` writes RESULTS.md's GPU section from it.
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

SIZES, BATCH, LR, REG, EPOCHS, SEED = (3072, 1000, 10), 200, 1e-3, 1e-4, 6, 0


def device_facts(cupy: Any) -> dict[str, Any]:
    """The GPU's name, the driver (nvidia-smi's and CUDA's numbers) and the library versions."""
    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    try:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        smi = "unknown"
    return {
        "device": name,
        "driver": smi,
        "cuda_driver_api": cupy.cuda.runtime.driverGetVersion(),
        "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
        "cupy": cupy.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def load(data_dir: str) -> Any:
    import chainrule

    return chainrule.data.load("cifar10-jpeg", data_dir=data_dir, val_size=0.1, seed=SEED)


def model_and_optimizer(device: str) -> tuple[Any, Any]:
    from chainrule.nn import optim
    from chainrule.nn.models import TwoLayerNet

    model = TwoLayerNet(*SIZES, rng=np.random.default_rng(SEED)).to(device)
    return model, optim.SGD(model.parameters(), LR)


def chainrule_fit(data: Any, device: str) -> dict[str, Any]:
    """fit for EPOCHS epochs on ``device``: seconds per epoch and the test accuracy after."""
    from chainrule.nn.losses import softmax_loss
    from chainrule.training.loop import evaluate, fit

    model, optimizer = model_and_optimizer(device)
    history = fit(
        model,
        data,
        loss=softmax_loss,
        optimizer=optimizer,
        epochs=EPOCHS,
        batch_size=BATCH,
        reg=REG,
        rng=np.random.default_rng([SEED, 1]),
        progress=False,
        device=device,
    )
    return {
        "seconds": history.seconds,
        "loss": history.loss,
        "val_accuracy": history.val_accuracy,
        "best_epoch": history.best_epoch,
        "test_accuracy": evaluate(model, data.X_test, data.y_test),
    }


def chainrule_plain(data: Any, cupy: Any) -> dict[str, Any]:
    """The same steps on the GPU without capture: a warm-up epoch, then one timed."""
    from chainrule.nn.losses import softmax_loss
    from chainrule.training.captured import CapturedSteps
    from chainrule.training.device import DeviceData

    model, optimizer = model_and_optimizer("cuda")
    rows = DeviceData.move(data.X_train, data.y_train, "cuda")
    steps = CapturedSteps(model, softmax_loss, optimizer, rows, BATCH, REG)
    steps.fallback = "benchmark: the plain path, on purpose"
    seconds = []
    for epoch in range(2):
        order = np.random.default_rng([SEED, epoch]).permutation(len(rows))
        start = time.perf_counter()
        steps.run(order, 0, steps.full, epoch)
        seconds.append(time.perf_counter() - start)
    return {"seconds": seconds[1:]}


def torch_eager(data: Any) -> dict[str, Any]:
    """PyTorch CUDA eager, the same net (chainrule's initial weights), SGD and batches."""
    try:
        import torch
    except ImportError:
        return {"status": "skipped", "reason": "PyTorch is not installed on this machine"}
    if not torch.cuda.is_available():
        return {"status": "skipped", "reason": "PyTorch here has no CUDA"}
    dev = torch.device("cuda")
    host, _ = model_and_optimizer("cpu")
    W1, b1, W2, b2 = (
        torch.tensor(p.data, device=dev, requires_grad=True)
        for p in (host.W1, host.b1, host.W2, host.b2)
    )
    X = torch.tensor(data.X_train, device=dev)
    y = torch.tensor(data.y_train, device=dev, dtype=torch.int64)
    opt = torch.optim.SGD([W1, b1, W2, b2], lr=LR)
    seconds = []
    for epoch in range(EPOCHS):
        order = torch.tensor(np.random.default_rng([SEED, epoch]).permutation(len(X)), device=dev)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for i in range(0, len(X), BATCH):
            rows = order[i : i + BATCH]
            scores = torch.relu(X[rows] @ W1.T + b1) @ W2.T + b2
            loss = torch.nn.functional.cross_entropy(scores, y[rows])
            loss = loss + REG * ((W1 * W1).sum() + (W2 * W2).sum())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return {"status": "ok", "seconds": seconds[1:], "torch": torch.__version__}


def floor(n: int, cupy: Any) -> dict[str, Any]:
    """The five matrix products of each step, for every step of an epoch (CUDA events)."""
    D, H, K = SIZES
    rng = cupy.random.default_rng(1)
    X = rng.standard_normal((BATCH, D), dtype=cupy.float32)
    W1 = rng.standard_normal((H, D), dtype=cupy.float32)
    W2 = rng.standard_normal((K, H), dtype=cupy.float32)

    from chainrule.engine import cublas

    def five() -> None:  # (cuBLAS as the captured step calls it: CuPy refuses it in capture)
        h = cublas.matmul(X, W1.T)
        s = cublas.matmul(h, W2.T)
        cublas.matmul(s.T, h)
        dh = cublas.matmul(s, W2)
        cublas.matmul(dh.T, X)

    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        five()  # (handles and kernels loaded outside the recording)
        stream.synchronize()
        with cublas.recording(stream):
            stream.begin_capture()
            five()
        graph = stream.end_capture()
        steps, times = -(-n // BATCH), []
        for _ in range(6):
            start, end = cupy.cuda.Event(), cupy.cuda.Event()
            start.record(stream)
            for _ in range(steps):
                graph.launch(stream)
            end.record(stream)
            end.synchronize()
            times.append(cupy.cuda.get_elapsed_time(start, end) / 1000)
    return {"seconds": times[1:]}


def main(argv: list[str]) -> int:
    import cupy

    data_dir, out = argv
    results: dict[str, Any] = {
        "settings": {
            "dataset": "CIFAR-10 (JPEG)",
            "sizes": SIZES,
            "batch_size": BATCH,
            "learning_rate": LR,
            "reg": REG,
            "optimizer": "SGD",
            "epochs": EPOCHS,
            "dtype": "float32",
        },
        "machine": device_facts(cupy),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    data = load(data_dir)
    results["train_rows"] = len(data.X_train)
    print(f"{results['machine']['device']}: {len(data.X_train)} training rows", flush=True)
    for name, measure in (
        ("chainrule", lambda: chainrule_fit(data, "cuda")),
        ("plain", lambda: chainrule_plain(data, cupy)),
        ("floor", lambda: floor(len(data.X_train), cupy)),
        ("torch", lambda: torch_eager(data)),
        ("cpu", lambda: chainrule_fit(data, "cpu")),
    ):
        start = time.perf_counter()
        results[name] = measure()
        print(f"{name}: {time.perf_counter() - start:.1f} s", flush=True)
        Path(out).write_text(json.dumps(results, indent=1))
    print(summary(results))
    return 0


def summary(results: dict[str, Any]) -> str:
    """The table at the end of the output (report.py writes the same into RESULTS.md)."""
    lines = []
    for name in ("chainrule", "plain", "torch", "floor", "cpu"):
        r = results.get(name, {})
        if "seconds" not in r:
            lines.append(f"{name:10s} {r.get('reason', 'not measured')}")
            continue
        timed = r["seconds"][1:] if name in ("chainrule", "cpu") else r["seconds"]
        acc = f"  test accuracy {r['test_accuracy']:.4f}" if "test_accuracy" in r else ""
        lines.append(f"{name:10s} {statistics.median(timed):.4f} s/epoch{acc}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
