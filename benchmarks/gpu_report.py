"""RESULTS.md's GPU section, from gpu_results.json (what benchmarks/gpu.py wrote on the GPU).

report.py adds it to RESULTS.md; without gpu_results.json the section says the GPU was not
measured. The numbers are never typed here: copy $OUT/gpu_results.json from a gpu_check.sh run
to benchmarks/ and run ``python benchmarks/report.py``.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "gpu_results.json"
TARGET_SECONDS = 0.10  # issue 24: at most this per epoch on an H200
ROWS = (
    ("chainrule", 'chainrule, `fit(device="cuda")` (captured CUDA graph)'),
    ("plain", "chainrule on the GPU without capture (plain steps)"),
    ("torch", "PyTorch CUDA eager"),
    ("floor", "floor: the five matrix products of each step only"),
    ("cpu", "chainrule on the CPU (NumPy), same machine"),
)


def load(path: Path = RESULTS) -> dict[str, Any] | None:
    """The GPU results, or None where none were recorded."""
    return json.loads(path.read_text()) if path.exists() else None


def timed(name: str, run: dict[str, Any]) -> list[float]:
    """The timed epochs: fit's records lose their first (the warm-up epoch, capture included);
    the other measurements already left their warm-up out."""
    return run["seconds"][1:] if name in ("chainrule", "cpu") else run["seconds"]


def section(results: dict[str, Any] | None) -> list[str]:
    """The lines of RESULTS.md's GPU section."""
    out = ["## GPU", ""]
    if results is None:
        return [
            *out,
            "Not measured: no gpu_results.json (run benchmarks/gpu_check.sh on a GPU).",
            "",
        ]
    m, s = results["machine"], results["settings"]
    d, h, k = s["sizes"]
    out += [
        f"Measured on {m['device']} (driver {m['driver']}, CUDA runtime {m['cuda_runtime']}), "
        f"CuPy {m['cupy']}, NumPy {m['numpy']}, Python {m['python']}, {results['date']}, by "
        "`benchmarks/gpu_check.sh` (benchmarks/gpu.py).",
        "",
        f"{s['dataset']}, {d}-{h}-{k}, batch {s['batch_size']}, {s['dtype']}, {s['optimizer']} "
        f"(learning rate {s['learning_rate']:g}, reg {s['reg']:g}), {results['train_rows']:,} "
        f"training rows. Seconds per epoch: the median of the timed epochs after a warm-up "
        f"epoch; test accuracy after {s['epochs']} epochs.",
        "",
        "| contender | s/epoch (median) | epochs timed | vs chainrule | test accuracy |",
        "| --- | --- | --- | --- | --- |",
    ]
    ours = statistics.median(timed("chainrule", results["chainrule"]))
    for name, label in ROWS:
        run = results.get(name)
        if run is None or "seconds" not in run:
            reason = "not measured" if run is None else run.get("reason", "not measured")
            out.append(f"| {label} | {reason} | | | |")
            continue
        epochs = timed(name, run)
        median = statistics.median(epochs)
        accuracy = f"{run['test_accuracy']:.4f}" if "test_accuracy" in run else ""
        out.append(
            f"| {label} | {median:.4f} | {len(epochs)} | {median / ours:.2f}x | {accuracy} |"
        )
    verdict = "met" if ours <= TARGET_SECONDS else "NOT met"
    out += [
        "",
        f"Target (issue 24): at most {TARGET_SECONDS:.2f} s per epoch: {verdict} ({ours:.4f} s).",
    ]
    cpu = results.get("cpu", {})
    if "test_accuracy" in cpu:
        out += [
            "",
            f"Test accuracy after {s['epochs']} epochs from the same start and batches: GPU "
            f"{results['chainrule']['test_accuracy']:.4f}, CPU {cpu['test_accuracy']:.4f}.",
        ]
    return [*out, ""]
