"""One measurement in a fresh process: ``python benchmarks/child.py TASK_JSON OUT_JSON``.

run.py starts one child per contender, case and round, its thread counts fixed in the environment,
so each measurement has its own peak memory and nothing left over from another library. Tasks:
"prepare" (load a data set with chainrule's loader, once, and save its arrays as .npy), "epoch"
(time one contender on one case), and "accuracy" (time to a test accuracy). Every child
but "prepare" reads the saved arrays, so all contenders, and both source trees of chainrule in a
before/after run, train on the same bytes without calling each other's loader.

A contender whose library does not import is "skipped" with the reason; any other error is a
failure (a traceback on stderr, exit 1).
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

import contenders

ARRAYS = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")


def prepare(task: dict[str, Any]) -> dict[str, Any]:
    """Load ``task["dataset"]`` as every contender gets it (float32 rows, pixels centred, 10% of
    the training images held out) and save it to ``task["folder"]``; or say why it is missing."""
    import chainrule

    cifar = task["dataset"] == "cifar10-jpeg"
    max_train, max_test = task["max_rows"]
    try:
        data = chainrule.data.load(
            task["dataset"],
            data_dir=task["data_dir"] if cifar else None,
            val_size=0.1,
            seed=0,
            max_train=max_train,
            max_test=max_test,
        )
    except chainrule.DataNotFoundError as err:
        return {"status": "skipped", "reason": str(err).splitlines()[0]}
    Path(task["folder"]).mkdir(parents=True)
    for name in ARRAYS:
        np.save(Path(task["folder"]) / f"{name}.npy", getattr(data, name))
    mib = sum(getattr(data, name).nbytes for name in ARRAYS) / 2**20
    return {"train_rows": len(data.X_train), "data_mib": mib}


def load(folder: str) -> SimpleNamespace:
    return SimpleNamespace(**{name: np.load(Path(folder) / f"{name}.npy") for name in ARRAYS})


def measure(task: dict[str, Any]) -> dict[str, Any]:
    kind, name = task["kind"], task.get("contender")
    if name in ("torch", "torch-fused", "sklearn"):
        try:  # before the data, so a missing library costs no load
            __import__("sklearn.neural_network" if name == "sklearn" else "torch")
        except ImportError as err:
            return {"status": "skipped", "reason": f"not importable here: {err}"}
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(task["threads"])
    data = load(task["data"])
    if kind == "accuracy":
        if name == "chainrule":
            return contenders.accuracy_chainrule(data, task["max_epochs"])
        return contenders.accuracy_torch(data, task["max_epochs"], fused=name == "torch-fused")
    time_it = getattr(contenders, f"time_{'chainrule' if name == 'baseline' else name}")
    case = contenders.CASES[task["case"]]
    return time_it(case, data, task["warmup_steps"], task["timed_epochs"])


def blas() -> dict[str, Any]:
    """The BLAS pools this process ran on (threadpoolctl), torch's own build, chainrule's source."""
    from threadpoolctl import threadpool_info

    pools = [
        f"{p['internal_api']} {p['version']} ({Path(p['filepath']).name}, "
        f"{p.get('architecture') or '?'} kernel, {p['num_threads']} threads)"
        for p in threadpool_info()
        if p["user_api"] == "blas"
    ]
    out: dict[str, Any] = {"pools": pools}
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        build = torch.__config__.show()
        info = build.split("BLAS_INFO=")[1].split(",")[0] if "BLAS_INFO=" in build else "?"
        out["torch"] = (
            f"torch {torch.__version__}: BLAS_INFO={info}, CPU capability "
            f"{torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads"
        )
    if "chainrule" in sys.modules:
        out["chainrule"] = str(Path(sys.modules["chainrule"].__file__).parents[1])
    return out


def main(argv: list[str]) -> int:
    from threadpoolctl import threadpool_limits

    task = json.loads(argv[1])
    with threadpool_limits(limits=task.get("threads", 1)):  # pools loaded later: the env vars
        result = prepare(task) if task["kind"] == "prepare" else measure(task)
    result.setdefault("status", "ok")
    result["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB
    result["blas"] = blas()  # after the work: libraries load some of their pools on first use
    Path(argv[2]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
