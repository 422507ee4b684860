"""RESULTS.md, made from results.json: ``python benchmarks/report.py [results.json]``.

run.py calls ``markdown`` at the end of a run; this script makes RESULTS.md again after a change
to the report. RESULTS.md is never edited by hand: tests/test_benchmarks.py checks that the
committed one is what this module makes from the committed results.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import gpu_report
from contenders import ACCURACY_TARGET

LABELS = {
    "chainrule": "chainrule (fit)",
    "baseline": "chainrule, baseline",
    "torch": "PyTorch (CPU, eager)",
    "sklearn": "scikit-learn MLPClassifier",
    "floor": "floor (NumPy matmuls only)",
    "torch-fused": "PyTorch, fused Adam (opt-in)",
}
ACCURACY_CONTENDERS = ("chainrule", "torch", "torch-fused")
# chainrule / other at most this, at 2 threads, on these cases: (other, bound, where it is asked)
TARGETS = [
    ("baseline", 1.05, "redesign: at most 5% slower than before"),
    ("torch", 1.0, "redesign: faster than PyTorch"),
    ("sklearn", 1.0, "redesign: faster than scikit-learn"),
    ("floor", 1.2, "speed work"),
    ("torch", 0.75, "speed work"),
    ("sklearn", 0.6, "speed work"),
]
TARGET_CASES = ("fmnist-128", "cifar-200")


def dumps(results: dict[str, Any]) -> str:
    """results as JSON with one line per top-level value, and per measurement in a list of them."""

    def value(v: Any) -> str:
        if isinstance(v, list) and v and isinstance(v[0], dict):
            return "[\n  " + ",\n  ".join(json.dumps(x) for x in v) + "\n ]"
        if isinstance(v, dict) and any(isinstance(x, list) and len(x) > 3 for x in v.values()):
            return "{\n " + ",\n ".join(f"{json.dumps(k)}: {value(x)}" for k, x in v.items()) + "}"
        return json.dumps(v)

    return "{\n" + ",\n".join(f" {json.dumps(k)}: {value(v)}" for k, v in results.items()) + "\n}\n"


def measurements(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every child's result: the epochs and the accuracy runs."""
    return results.get("runs", []) + results.get("accuracy", {}).get("runs", [])


def describe(run: dict[str, Any]) -> str:
    """One line for the progress log."""
    if run.get("status") != "ok":
        return why(run)
    if "accuracy" in run:
        return (
            f"{len(run['seconds'])} epochs, {sum(run['seconds']):.1f} s, {run['accuracy'][-1]:.4f}"
        )
    return f"{min(run['seconds']):.3f} s/epoch, peak {run['maxrss_mib']:.0f} MiB"


def seconds(run: dict[str, Any] | None) -> float | None:
    """A child's seconds per epoch: its fastest timed epoch (other work only ever adds time, so
    the least disturbed epoch is the best estimate of what the code costs: timeit's rule too)."""
    return min(run["seconds"]) if run and run.get("status") == "ok" else None


def ratio(per_round: dict[int, tuple[float | None, float | None]]) -> dict[str, float] | None:
    """mine / theirs taken within each round, then the median over rounds: a slow spell of the
    machine falls on both sides. Also the range, and each side's fastest over the other's."""
    pairs = [(a, b) for a, b in per_round.values() if a is not None and b is not None]
    if not pairs:
        return None
    ratios = [a / b for a, b in pairs]
    fastest = min(a for a, _ in pairs) / min(b for _, b in pairs)
    return {
        "median": statistics.median(ratios),
        "low": min(ratios),
        "high": max(ratios),
        "fastest": fastest,
    }


def summarize(runs: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """(case, threads) -> per contender: seconds by round, peak memory, and chainrule / it."""
    cells: dict[tuple[str, int], dict[str, Any]] = {}
    for run in runs:
        cell = cells.setdefault((run["case"], run["threads"]), {})
        entry = cell.setdefault(run["contender"], {"seconds": {}, "peak": 0.0, "why": set()})
        entry["seconds"][run["round"]] = seconds(run)
        if run.get("status") == "ok":
            entry["peak"] = max(entry["peak"], run["maxrss_mib"])
            if "gather_seconds" in run:
                entry.setdefault("gather", []).append(run["gather_seconds"])
        else:
            entry["why"].add(why(run))
    for cell in cells.values():
        mine = cell.get("chainrule", {"seconds": {}})["seconds"]
        for name, entry in cell.items():
            pairs = {r: (mine.get(r), theirs) for r, theirs in entry["seconds"].items()}
            entry["ratio"] = ratio(pairs) if name != "chainrule" else None
    return cells


def why(run: dict[str, Any]) -> str:
    return f"{run.get('status')}: {run.get('reason') or run.get('error')}"


def row(*cells: Any) -> str:
    return "| " + " | ".join(map(str, cells)) + " |"


def cell_text(r: dict[str, float] | None) -> str:
    """'1.26 (1.10-1.57; 1.22)': the median of per-round ratios (their range; fastest/fastest)."""
    return (
        "–"
        if r is None
        else f"{r['median']:.2f} ({r['low']:.2f}-{r['high']:.2f}; {r['fastest']:.2f})"
    )


def verdict(value: float, bound: float) -> str:
    return "yes" if value <= bound else f"no, by {value / bound - 1:.0%}"


def markdown(results: dict[str, Any]) -> str:
    """The whole of RESULTS.md."""
    cells = summarize(results.get("runs", []))
    accuracy = accuracy_summary(results.get("accuracy"))
    out = header(results)
    out += targets(results, cells, accuracy)
    out += epochs(results, cells)
    out += accuracy_section(results.get("accuracy"), accuracy)
    out += blas_section(results)
    out += gpu_report.section(gpu_report.load())  # issue 24: from gpu_results.json
    return "\n".join(out).rstrip() + "\n"


def header(results: dict[str, Any]) -> list[str]:
    s, m = results["settings"], results["machine"]
    load = [", ".join(f"{x:.2f}" for x in avg) for avg in results["load_average"]]
    rows = "full training sets (90% of the training images; 10% are held out for validation)"
    if s["max_rows"][0]:
        rows = f"at most {s['max_rows'][0]:,} training images and {s['max_rows'][1]:,} test images"
    out = ["# Benchmark results", ""]
    if s["quick"]:
        out += [
            "**A `--quick` run**: small subsets, one round. It shows that everything runs; "
            "its timings say nothing about speed.",
            "",
        ]
    out += [
        f"Made by `{results['command']}` at commit {results['revision']}, {results['date']}; "
        "written from results.json by `python benchmarks/report.py` (never edited by hand).",
        "",
        f"Machine: {m['cpu']} ({', '.join(m['simd']) or 'no AVX2'}), {m['cpus']} CPUs, "
        f"{m.get('memory_gib')} GiB, {m['os']}, Python {m['python']}. Load average (1, 5, 15 "
        f"min) at the start {load[0]}, at the end {load[-1]}; the run took "
        f"{results['minutes']:.1f} min.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()) + ".",
        "",
        f"{s['rounds']} round(s), each running every contender in its own process, the order "
        f"rotating from round to round. Per child: a warm-up of {s['warmup_steps']} steps, then "
        f"{s['timed_epochs']} timed epoch(s), of which the fastest counts; {rows}.",
        "",
    ]
    if results.get("baseline"):
        out += [f"Baseline: chainrule at {results['baseline']}, timed beside the commit above.", ""]
    return out + [f"- {note}" for note in results["notes"]] + ([""] if results["notes"] else [])


def targets(results: dict[str, Any], cells: dict[Any, Any], accuracy: dict[str, Any]) -> list[str]:
    out = [
        "## Targets",
        "",
        row("target", "from", "measured", "met?"),
        "| --- | --- | ---: | --- |",
    ]
    for case in TARGET_CASES:
        for other, bound, source in TARGETS:
            r = cells.get((case, 2), {}).get(other, {}).get("ratio")
            if r is not None:
                title = results["cases"][case]["title"]
                what = f"chainrule / {other} <= {bound} on {title} (2 threads)"
                out.append(row(what, source, cell_text(r), verdict(r["median"], bound)))
    r = accuracy.get("torch")
    if r is not None:
        what = "time to 89% on Fashion-MNIST: chainrule / torch < 1"
        out.append(row(what, "speed work", cell_text(r), verdict(r["median"], 1.0)))
    memory = memory_ratio(results, cells, "cifar-200")
    if memory is not None:
        what = "peak memory training on CIFAR-10 (JPEG) <= 1.5x its float32 arrays"
        out.append(row(what, "speed work", f"{memory:.2f}x", verdict(memory, 1.5)))
    if len(out) == 4:
        out.append(row("none measured: they are judged at 2 threads", "", "", ""))
    note = "Measured: the median of the per-round ratios (their range over the rounds; each side's"
    return [*out, "", note + " fastest over the other's fastest).", ""]


def memory_ratio(results: dict[str, Any], cells: dict[Any, Any], case: str) -> float | None:
    """chainrule's largest peak RSS on ``case`` over the size of its data's float32 arrays."""
    peaks = [
        cell.get("chainrule", {}).get("peak", 0.0) for (c, _), cell in cells.items() if c == case
    ]
    if not peaks or not max(peaks):
        return None
    return max(peaks) / results["datasets"][results["cases"][case]["dataset"]]["data_mib"]


def epochs(results: dict[str, Any], cells: dict[Any, Any]) -> list[str]:
    out = [
        "## Seconds per epoch",
        "",
        "Seconds per training epoch over the rounds; peak RSS: `ru_maxrss` of the contender's "
        "process, data included (MiB = 2^20 bytes); last column: chainrule's seconds over this "
        "contender's, as in Targets.",
        "",
    ]
    for name, case in results["cases"].items():
        keys = sorted((k for k in cells if k[0] == name), key=lambda k: -k[1])
        if not keys:
            continue
        data = results["datasets"][case["dataset"]]
        out += [
            f"### {case['title']}: {case['architecture']}, SGD lr {case['learning_rate']:g}, "
            f"reg {case['reg']:g}, {data['train_rows']:,} training rows",
            "",
            row("threads", "contender", "min", "median", "max", "peak RSS MiB", "chainrule / it"),
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        gather = []
        for (_, threads), cell in ((k, cells[k]) for k in keys):
            for who, entry in sorted(cell.items(), key=lambda item: list(LABELS).index(item[0])):
                ok = [s for s in entry["seconds"].values() if s is not None]
                if not ok:
                    out.append(
                        row(threads, LABELS[who], "; ".join(sorted(entry["why"])), "", "", "", "")
                    )
                    continue
                spread = (f"{x:.3f}" for x in (min(ok), statistics.median(ok), max(ok)))
                ratio_text = cell_text(entry["ratio"]) if who != "chainrule" else ""
                out.append(row(threads, LABELS[who], *spread, f"{entry['peak']:,.0f}", ratio_text))
                if entry.get("gather"):
                    gather.append(f"{statistics.median(entry['gather']):.3f} s ({threads} thr.)")
        out.append("")
        if gather:
            text = ", ".join(gather)
            out += [f"Not in the floor: gathering one epoch's shuffled batches takes {text}.", ""]
        memory = memory_ratio(results, cells, name)
        if memory is not None:
            arrays = f"train, validation and test: {data['data_mib']:,.0f} MiB"
            out += [f"chainrule's peak RSS: {memory:.2f}x its float32 arrays ({arrays}).", ""]
    return out


def reached(run: dict[str, Any]) -> bool:
    return run.get("status") == "ok" and run["accuracy"][-1] >= ACCURACY_TARGET


def accuracy_summary(acc: dict[str, Any] | None) -> dict[str, Any]:
    """chainrule over each other contender, per round: the training seconds to the target
    (keyed by the contender's name) and the median seconds per epoch (keyed "NAME per epoch")."""
    to_target: dict[int, dict[str, float | None]] = {}
    per_epoch: dict[int, dict[str, float | None]] = {}
    for run in (acc or {}).get("runs", []):
        ok = run.get("status") == "ok" and bool(run["seconds"])
        to_target.setdefault(run["round"], {})[run["contender"]] = (
            sum(run["seconds"]) if reached(run) else None
        )
        per_epoch.setdefault(run["round"], {})[run["contender"]] = (
            statistics.median(run["seconds"]) if ok else None
        )
    ratios = {}
    for other in ACCURACY_CONTENDERS[1:]:
        for key, table in ((other, to_target), (f"{other} per epoch", per_epoch)):
            ratios[key] = ratio({r: (t.get("chainrule"), t.get(other)) for r, t in table.items()})
    return {k: v for k, v in ratios.items() if v is not None}


def accuracy_section(acc: dict[str, Any] | None, summary: dict[str, Any]) -> list[str]:
    if not acc:
        return []
    out = [
        "## Time to 89% test accuracy on Fashion-MNIST",
        "",
        "One recipe for chainrule and PyTorch: 784-512-10 ReLU net, the same initial weights and "
        "shuffled batches, Adam lr 0.001 (betas 0.9/0.999, eps 1e-8), batch 128, no "
        f"regularization; test accuracy after each epoch, stopping at {ACCURACY_TARGET}; "
        f"{acc['threads']} threads, one process each, interleaved rounds. Seconds count the "
        "training steps only.",
        "",
        "| round | contender | epochs | training s | s/epoch | test accuracy per epoch |",
        "| ---: | --- | ---: | ---: | ---: | --- |",
    ]
    for run in acc["runs"]:
        who = (run["round"], LABELS[run["contender"]])
        if run.get("status") != "ok":
            out.append(row(*who, why(run), "", "", ""))
            continue
        total = f"{sum(run['seconds']):.2f}" if reached(run) else "not reached"
        accuracy = ", ".join(f"{a:.4f}" for a in run["accuracy"])
        per_epoch = f"{statistics.median(run['seconds']):.3f}"
        out.append(row(*who, len(run["seconds"]), total, per_epoch, accuracy))
    out.append("")
    for key, r in summary.items():
        name, _, per_epoch = key.partition(" ")
        out.append(
            f"- chainrule / {LABELS[name]}{', ' + per_epoch if per_epoch else ''}: {cell_text(r)}"
        )
    return [*out, ""]


def blas_section(results: dict[str, Any]) -> list[str]:
    parent = ", ".join(results["blas_env_in_parent"]) or "neither was set"
    out = [
        "## BLAS and threads",
        "",
        "Each child ran with `OMP_NUM_THREADS`, `OPENBLAS_NUM_THREADS` and `MKL_NUM_THREADS` set "
        "to its thread count (and torch.set_num_threads), and without `OPENBLAS_CORETYPE` and "
        f"`OPENBLAS_L2_SIZE` (in the parent's environment: {parent}). At the largest thread count:",
        "",
    ]
    for name, blas in results.get("blas", {}).items():
        mine = name in ("chainrule", "baseline") and "chainrule" in blas
        source = f"; chainrule from {blas['chainrule']}" if mine else ""
        out.append(f"- {LABELS[name]}: {'; '.join(blas['pools']) or 'no BLAS seen'}{source}.")
        if "torch" in blas:
            out.append(f"  {blas['torch']}.")
    return [*out, ""]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", type=Path, nargs="?", default=Path(__file__).parent / "results.json")
    args = p.parse_args(argv)
    try:
        results = json.loads(args.results.read_text())
    except (OSError, ValueError) as err:
        p.error(f"cannot read {args.results}: {err}")
    out = args.results.parent / "RESULTS.md"
    out.write_text(markdown(results))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
