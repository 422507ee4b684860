"""One benchmark child: ``python benchmarks/child.py TASK_JSON``; writes its result to task["out"].

The parent starts one child per contender per round, with the thread counts fixed in the
environment, so each measurement gets a fresh process: its own peak memory, no state left over
from another library. Kinds of task: "prepare" (load the data once, building caches), "epoch"
(time epochs of one contender on one case), "accuracy" (time to a test accuracy) and "scalar".

A contender whose library is not importable, or a case whose data is not on this machine, is
reported with status "skipped" and a reason; any other error is a failure (a traceback, exit 1).
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import sysinfo
from cases import CASES, AccuracyRecipe


def load_data(dataset: str, task: dict[str, Any]) -> Any:
    """The data set exactly as every contender gets it: chainrule's loader, float32 rows."""
    import chainrule.data

    data_dir = task.get("data_dir") if dataset == "cifar10-jpeg" else None
    return chainrule.data.load(
        dataset,
        data_dir=data_dir,
        val_size=0.1,
        seed=0,
        standardize=False,
        max_train=task.get("max_train"),
        max_test=task.get("max_test"),
    )


# The library each contender needs beyond chainrule and NumPy.
LIBRARY = {"torch": "torch", "torch-fused": "torch", "sklearn": "sklearn.neural_network"}


def missing(contender: str) -> str | None:
    """Why ``contender`` cannot run here (its library does not import), or None."""
    module = LIBRARY.get(contender)
    if module is None:
        return None
    try:
        importlib.import_module(module)  # before the data, so a missing library costs no load
    except ImportError as err:
        return f"{module} is not importable: {err}"
    return None


def data_mib(data: Any) -> float:
    """The float32 size of the train, validation and test arrays, MiB."""
    return (data.X_train.nbytes + data.X_val.nbytes + data.X_test.nbytes) / sysinfo.MIB


def run_prepare(task: dict[str, Any]) -> dict[str, Any]:
    from chainrule.errors import DataNotFoundError

    found = {}
    for dataset in task["datasets"]:
        start = time.perf_counter()
        try:
            data = load_data(dataset, task)
        except DataNotFoundError as err:
            found[dataset] = {"status": "missing", "reason": str(err).splitlines()[0]}
        else:
            found[dataset] = {
                "status": "ok",
                "load_seconds": time.perf_counter() - start,
                "train": list(data.X_train.shape),
                "val": list(data.X_val.shape),
                "test": list(data.X_test.shape),
                "data_mib": data_mib(data),
            }
    return {"status": "ok", "datasets": found}


def run_epoch(task: dict[str, Any]) -> dict[str, Any]:
    import contenders

    case = CASES[task["case"]]
    contender = task["contender"]
    reason = missing(contender)
    if reason is not None:
        return {"status": "skipped", "reason": reason}
    start = time.perf_counter()
    data = load_data(case.dataset, task)
    result: dict[str, Any] = {
        "load_seconds": time.perf_counter() - start,
        "data_mib": data_mib(data),
        "train_rows": len(data.X_train),
        "rss_after_load_mib": sysinfo.rss_mib(),
    }
    peak_reset = sysinfo.reset_peak_rss()
    args = (task["warmup_steps"], task["timed_epochs"], task["seed"])
    if contender == "chainrule":
        timing = contenders.time_chainrule(case, data, *args)
    elif contender == "torch":
        timing = contenders.time_torch(case, data, task["threads"], *args)
    elif contender == "sklearn":
        timing = contenders.time_sklearn(case, data, *args)
    elif contender == "floor":
        timing = contenders.time_floor(case, data, *args)
    else:
        raise ValueError(f"unknown contender {contender!r}")
    result.update(timing)
    # The peak since the data were loaded: training alone (None where /proc cannot reset it).
    result["train_peak_mib"] = sysinfo.peak_rss_mib() if peak_reset else None
    return result


def run_accuracy(task: dict[str, Any]) -> dict[str, Any]:
    import contenders

    recipe = AccuracyRecipe(**task["recipe"])
    reason = missing(task["contender"])
    if reason is not None:
        return {"status": "skipped", "reason": reason}
    data = load_data(recipe.dataset, task)
    if task["contender"] == "chainrule":
        return contenders.accuracy_chainrule(recipe, data, task["seed"])
    fused = task["contender"] == "torch-fused"
    return contenders.accuracy_torch(recipe, data, task["threads"], task["seed"], fused)


def run_scalar(task: dict[str, Any]) -> dict[str, Any]:
    import scalar_engine

    return scalar_engine.run(task["terms"], task["depth"], task["rounds"])


def main(argv: list[str]) -> int:
    task = json.loads(argv[1])
    from chainrule.errors import DataNotFoundError

    limits = sysinfo.limit_threads(task["threads"])  # noqa: F841  (held for the process's life)
    runners = {
        "prepare": run_prepare,
        "epoch": run_epoch,
        "accuracy": run_accuracy,
        "scalar": run_scalar,
    }
    try:
        result = runners[task["kind"]](task)
        result.setdefault("status", "ok")
    except DataNotFoundError as err:
        result = {"status": "skipped", "reason": f"data not found: {str(err).splitlines()[0]}"}
    result["maxrss_mib"] = sysinfo.maxrss_mib()
    # Pools are listed after the work: libraries load some of theirs only on first use.
    result["blas"] = sysinfo.blas_info()
    if "torch" in sys.modules:
        result["torch_config"] = sysinfo.torch_config()
    result["numpy"] = np.__version__
    Path(task["out"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
