"""Summaries of the raw runs, and RESULTS.md written from them."""

from __future__ import annotations

import statistics
from typing import Any

from cases import CASES

CONTENDERS = ("chainrule", "torch", "sklearn", "floor")
LABELS = {
    "chainrule": "chainrule (fit)",
    "torch": "PyTorch (CPU, eager)",
    "sklearn": "scikit-learn MLPClassifier",
    "floor": "floor (NumPy matmuls only)",
    "torch-fused": "PyTorch, fused Adam (opt-in)",
}
RATIOS = ("floor", "torch", "sklearn")  # chainrule / each of these


def round_seconds(run: dict[str, Any]) -> float | None:
    """A run's seconds per epoch: the fastest of its timed epochs (None if it did not run).

    The fastest, not the mean: on a shared machine other work only ever adds time, so the
    least disturbed epoch is the best estimate of what the code costs (timeit's rule too).
    """
    seconds = run.get("epoch_seconds") if run.get("status") == "ok" else None
    return min(seconds) if seconds else None


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per case and thread count: each contender's s/epoch over rounds, and the median ratios.

    A ratio is taken within each round (chainrule's epoch over the other contender's epoch in
    the same round), then the median over rounds: a slow spell of the machine hits both sides.
    """
    table: dict[str, dict[str, Any]] = {}
    for run in runs:
        cell = table.setdefault(run["case"], {}).setdefault(str(run["threads"]), {})
        cell.setdefault(run["contender"], {})[run["round"]] = run
    summary: dict[str, Any] = {}
    for case, by_threads in table.items():
        for threads, by_contender in by_threads.items():
            contenders: dict[str, Any] = {}
            for name, by_round in by_contender.items():
                rounds = sorted(by_round)
                seconds = [round_seconds(by_round[r]) for r in rounds]
                ok = [s for s in seconds if s is not None]
                entry: dict[str, Any] = {"rounds": dict(zip(rounds, seconds))}
                if ok:
                    entry |= {"min": min(ok), "median": statistics.median(ok), "max": max(ok)}
                    entry["maxrss_mib"] = _max(by_round.values(), "maxrss_mib")
                    entry["train_peak_mib"] = _max(by_round.values(), "train_peak_mib")
                    entry["data_mib"] = _max(by_round.values(), "data_mib")
                    gathers = [
                        r["gather_seconds"] for r in by_round.values() if "gather_seconds" in r
                    ]
                    if gathers:
                        entry["gather_seconds_median"] = statistics.median(gathers)
                else:
                    reasons = {r.get("reason") or r.get("error") for r in by_round.values()}
                    entry["status"] = "; ".join(sorted(str(x) for x in reasons if x))
                contenders[name] = entry
            ratios = {}
            mine = contenders.get("chainrule", {}).get("rounds", {})
            for other in RATIOS:
                theirs = contenders.get(other, {}).get("rounds", {})
                per_round = {
                    r: mine[r] / theirs[r]
                    for r in mine
                    if mine[r] is not None and theirs.get(r) is not None
                }
                if per_round:
                    ratios[f"chainrule/{other}"] = {
                        "per_round": per_round,
                        "median": statistics.median(per_round.values()),
                        "low": min(per_round.values()),
                        "high": max(per_round.values()),
                        # Each side's fastest epoch over all rounds: other work on a shared
                        # machine only ever adds time, so this is the least disturbed estimate.
                        "fastest": min(m for m in mine.values() if m is not None)
                        / min(t for t in theirs.values() if t is not None),
                    }
            summary.setdefault(case, {})[threads] = {"contenders": contenders, "ratios": ratios}
    return summary


def _max(runs: Any, key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return max(values) if values else None


def _f(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _mib(x: float | None) -> str:
    return "–" if x is None else f"{x:,.0f}"


def _blas_line(pools: list[dict[str, Any]]) -> str:
    parts = []
    for p in pools:
        if p.get("user_api") != "blas":
            continue
        arch = f", {p['architecture']} kernel" if p.get("architecture") else ""
        parts.append(
            f"{p.get('internal_api')} {p.get('version')} ({p.get('file')}{arch}, "
            f"{p.get('num_threads')} threads)"
        )
    return "; ".join(parts) or "no BLAS pool seen by threadpoolctl"


def markdown(results: dict[str, Any]) -> str:
    """RESULTS.md: the tables, then the conditions they were measured under."""
    s = results["settings"]
    m = results["machine"]
    out = [
        "# Benchmark results",
        "",
        f"Produced by `{results['command']}` on {m['date']} (chainrule at "
        f"{results.get('git_revision') or 'unknown revision'}).",
        "",
        f"Machine: {m['cpu_model']} ({', '.join(m['simd']) or 'no AVX'}), "
        f"{m['usable_cpus']} usable CPUs of {m['logical_cpus']}, {m['memory_gib']} GiB, "
        f"{m['os']}, Python {m['python']}.",
        "",
        "Load average (1, 5, 15 min) at the start: "
        + ", ".join(f"{x:.2f}" for x in results["load_average_start"])
        + "; at the end: "
        + ", ".join(f"{x:.2f}" for x in results.get("load_average_end", ()))
        + f" (on {m['usable_cpus']} CPUs: above that, other work competed for them). "
        + f"The whole run took {results.get('total_seconds', 0) / 60:.1f} min.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items() if v) + ".",
        "",
        f"Rounds: {s['rounds']} (contenders interleaved within each round, each in its own "
        f"process; the order rotates from round to round). Per child: a warm-up of "
        f"{s['warmup_steps']} steps, then {s['timed_epochs']} timed epoch(s), of which the "
        "fastest counts (other work on a shared machine only ever adds time). "
        + (
            f"Training rows capped at {s['max_train']} (test at {s['max_test']})."
            if s.get("max_train")
            else "Full training sets (90% of the training images; 10% are held out for validation)."
        ),
        "",
    ]
    if results.get("notes"):
        out += ["**Notes**", ""] + [f"- {n}" for n in results["notes"]] + [""]

    out += _targets_section(results)
    out += ["## Seconds per epoch", ""]
    out += [
        "Seconds per training epoch (min / median / max over rounds). Peak RSS: `ru_maxrss` of "
        "the contender's process over its whole life, loading included; training peak: the "
        "peak after the data were loaded (Linux `VmHWM`, reset after loading). MiB = 2^20 bytes.",
        "",
    ]
    for case_name, by_threads in results["summary"].items():
        case = CASES[case_name]
        out += [
            f"### {case.title}: {case.architecture}, SGD lr {case.learning_rate:g}, "
            f"reg {case.reg:g}",
            "",
            "| threads | contender | min | median | max | peak RSS MiB | training peak MiB |",
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for threads, cell in by_threads.items():
            for name in CONTENDERS:
                entry = cell["contenders"].get(name)
                if entry is None:
                    continue
                if "median" not in entry:
                    out.append(f"| {threads} | {LABELS[name]} | skipped: {entry['status']} |||||")
                    continue
                out.append(
                    f"| {threads} | {LABELS[name]} | {_f(entry['min'])} | "
                    f"{_f(entry['median'])} | {_f(entry['max'])} | {_mib(entry['maxrss_mib'])} | "
                    f"{_mib(entry['train_peak_mib'])} |"
                )
        out.append("")
        gathers = [
            (t, c["contenders"]["floor"].get("gather_seconds_median"))
            for t, c in by_threads.items()
            if "floor" in c["contenders"]
        ]
        gathers = [(t, g) for t, g in gathers if g is not None]
        if gathers:
            out += [
                "Not in the floor: gathering one epoch of shuffled batches (`X[idx]`) costs "
                + ", ".join(f"{g:.3f} s ({t} thread{'s' if t != '1' else ''})" for t, g in gathers)
                + ".",
                "",
            ]

    out += [
        "## Ratios (median over rounds of the per-round ratio)",
        "",
        "Above 1: chainrule is slower by that factor. Each cell: the median of the per-round "
        "ratios, then in brackets their range over the rounds and the ratio of the two sides' "
        "fastest epochs over all the rounds each ran (on a shared machine other work only adds "
        "time, so that one is the least disturbed estimate; the targets are judged on the median).",
        "",
        "| case | threads | chainrule / floor | chainrule / torch | chainrule / sklearn |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for case_name, by_threads in results["summary"].items():
        for threads, cell in by_threads.items():
            r = cell["ratios"]
            out.append(
                f"| {CASES[case_name].title} | {threads} | "
                + " | ".join(_ratio_cell(r.get(f"chainrule/{o}", {})) for o in RATIOS)
                + " |"
            )
    out.append("")

    memory = results.get("memory", {})
    if memory:
        out += ["## Memory of chainrule against its data", ""]
        for case_name, m_ in memory.items():
            out.append(
                f"- {CASES[case_name].title}: the float32 train + val + test arrays take "
                f"{_mib(m_['data_mib'])} MiB; chainrule's peak RSS was {_mib(m_['maxrss_mib'])} "
                f"MiB, **{m_['maxrss_ratio']:.2f}x** the data"
                + (
                    f" (training peak {_mib(m_['train_peak_mib'])} MiB, "
                    f"{m_['train_peak_ratio']:.2f}x)."
                    if m_.get("train_peak_ratio")
                    else "."
                )
            )
        out.append("")

    out += _accuracy_section(results.get("accuracy"))
    out += _scalar_section(results.get("scalar"))
    out += _blas_section(results)
    return "\n".join(out).rstrip() + "\n"


def _ratio_cell(ratio: dict[str, Any]) -> str:
    """'1.31 (1.23-1.50; 1.26)': median (per-round range; fastest over fastest)."""
    if "median" not in ratio:
        return "–"
    if "low" not in ratio:  # results.json from before the range was recorded
        return _f(ratio["median"], 2)
    return f"{ratio['median']:.2f} ({ratio['low']:.2f}-{ratio['high']:.2f}; {ratio['fastest']:.2f})"


# The targets, at 2 threads: (case, ratio, at most).
RATIO_TARGETS = [
    ("fmnist-128", "floor", 1.2),
    ("cifar-200", "floor", 1.2),
    ("fmnist-128", "torch", 0.75),
    ("cifar-200", "torch", 0.75),
    ("fmnist-128", "sklearn", 0.6),
    ("cifar-200", "sklearn", 0.6),
]


def _targets_section(results: dict[str, Any]) -> list[str]:
    """Each target of the speed issue against what this run measured, and by how much it missed."""
    out = [
        "## Targets",
        "",
        "| target | measured | met? | fastest over fastest |",
        "| --- | ---: | --- | ---: |",
    ]

    def verdict(value: float | None, limit: float, strict: bool = False) -> str:
        if value is None:
            return "not measured"
        if value < limit or (value == limit and not strict):
            return "yes"
        miss = value / limit - 1
        return f"no, by {miss:.0%}" if miss >= 0.005 else f"no, by {miss:.1%}"

    for case_name, other, limit in RATIO_TARGETS:
        cell = results["summary"].get(case_name, {}).get("2", {})
        ratio = cell.get("ratios", {}).get(f"chainrule/{other}", {})
        value = ratio.get("median")
        out.append(
            f"| chainrule / {other} <= {limit} on {CASES[case_name].title} (2 threads) | "
            f"{_f(value, 2)} | {verdict(value, limit)} | {_f(ratio.get('fastest'), 2)} |"
        )
    acc = results.get("accuracy") or {}
    if acc:
        out.append(_accuracy_target_row(acc, verdict))
    for case_name, m_ in results.get("memory", {}).items():
        if case_name == "cifar-200":
            ratio = m_["maxrss_ratio"]
            out.append(
                f"| peak memory training on CIFAR-10 (JPEG) < 1.5x its float32 arrays | "
                f"{ratio:.2f}x | {verdict(ratio, 1.5)} | |"
            )
    return [*out, "", *_what_a_miss_would_take(results)]


def _accuracy_target_row(acc: dict[str, Any], verdict: Any) -> str:
    """The Targets row for the time to 89%: chainrule against torch's default Adam."""
    rounds = accuracy_rounds(acc)
    summary = acc.get("summary") or accuracy_summary(rounds)
    ratio, times = summary["ratios"].get("chainrule/torch"), summary["contenders"]
    label = "time to 89% on Fashion-MNIST below PyTorch's (chainrule / torch < 1)"
    if ratio:
        mine, theirs = times["chainrule"], times["torch"]
        epochs = " vs ".join(f"{statistics.median(t['epochs']):g}" for t in (mine, theirs))
        return (
            f"| {label} | {ratio['median']:.2f}: {mine['median']:.2f} s vs "
            f"{theirs['median']:.2f} s ({epochs} epochs) | "
            f"{verdict(ratio['median'], 1.0, strict=True)} | {ratio['fastest']:.2f} |"
        )
    pair = ("chainrule", "torch")
    ran = [n for n in pair if any(r.get(n, {}).get("status") == "ok" for r in rounds)]
    tried = max((r.get(n, {}).get("epochs_run", 0) for r in rounds for n in ran), default=0)
    if len(ran) < 2:
        idle = " and ".join(n for n in pair if n not in ran)
        return f"| {label} | {idle} did not run | not measured | |"
    if "chainrule" not in times:
        return f"| {label} | chainrule did not reach it in {tried} epochs | no | |"
    if "torch" not in times:
        return (
            f"| {label} | {times['chainrule']['median']:.2f} s; torch did not reach it in "
            f"{tried} epochs | yes | |"
        )
    # Training is deterministic (same seed, same batches), so this needs a failed child.
    return f"| {label} | both reached it, but never in the same round | not measured | |"


def _what_a_miss_would_take(results: dict[str, Any]) -> list[str]:
    """For each missed ratio target, what meeting it would need, in multiples of the floor."""
    lines = []
    for case_name, other, limit in RATIO_TARGETS:
        ratios = results["summary"].get(case_name, {}).get("2", {}).get("ratios", {})
        to_floor = ratios.get("chainrule/floor", {}).get("median")
        to_other = ratios.get(f"chainrule/{other}", {}).get("median")
        if to_floor is None or to_other is None or to_other <= limit:
            continue
        title = CASES[case_name].title
        if other == "floor":
            lines.append(
                f"- chainrule / floor on {title}: {to_floor:.2f}, {to_floor - limit:.2f} of the "
                "floor's time above the target (where it goes: the profile in "
                "benchmarks/README.md)."
            )
            continue
        other_to_floor = to_floor / to_other  # the ratio of the two medians: an estimate
        needed = limit * other_to_floor
        line = (
            f"- chainrule / {other} on {title}: {other} ran at about {other_to_floor:.2f}x the "
            f"floor, so {limit} of its time is {needed:.2f}x the floor; chainrule ran at "
            f"{to_floor:.2f}x."
        )
        if needed < 1:
            line += " Below the floor: no program doing these five products on this BLAS can."
        lines.append(line)
    if not lines:
        return []
    return ["What each missed ratio target would take (2 threads):", "", *lines, ""]


def main(argv: list[str] | None = None) -> int:
    """Write RESULTS.md again from a results.json (after a change to this report)."""
    import argparse
    import json
    from pathlib import Path

    here = Path(__file__).resolve().parent
    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("results", type=Path, nargs="?", default=here / "results.json")
    p.add_argument("--out", type=Path, help="default: RESULTS.md beside the results file")
    args = p.parse_args(argv)
    results = json.loads(args.results.read_text())
    if results.get("runs"):  # the summary again from the raw rounds, with whatever it now holds
        results["summary"] = summarize(results["runs"])
    if results.get("accuracy"):
        acc = results["accuracy"]
        acc["summary"] = accuracy_summary(accuracy_rounds(acc))
    out = args.out or args.results.parent / "RESULTS.md"
    out.write_text(markdown(results))
    print(f"wrote {out}")
    return 0


def accuracy_rounds(acc: dict[str, Any]) -> list[dict[str, Any]]:
    """The time-to-accuracy runs as a list of rounds, each {contender: result}.

    results.json written before the rounds existed held one run per contender under "runs".
    """
    return acc.get("rounds") or [acc.get("runs", {})]


# The time-to-accuracy contenders: the target is judged against torch as
# torch.optim.Adam(params, lr) runs by default; its opt-in fused kernel is shown beside it.
ACCURACY_CONTENDERS = ("chainrule", "torch", "torch-fused")


def accuracy_summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each contender's training seconds over the rounds, and chainrule / each other per round.

    As for the epochs, a ratio is taken within each round and judged by its median: a slow
    spell of the machine then hits both sides rather than deciding the race. A round in which
    one side did not reach the target gives no ratio: with the seeds fixed, every round trains
    the same way, so who reaches it does not change between rounds (the Targets row says who).
    """
    contenders: dict[str, Any] = {}
    for name in ACCURACY_CONTENDERS:
        done = [r[name] for r in rounds if r.get(name, {}).get("reached")]
        if done:
            seconds = [res["train_seconds"] for res in done]
            contenders[name] = {
                "train_seconds": seconds,
                "median": statistics.median(seconds),
                "epochs": [res["epochs"] for res in done],
            }
    ratios: dict[str, Any] = {}
    for other in ACCURACY_CONTENDERS[1:]:
        per_round = [
            r["chainrule"]["train_seconds"] / r[other]["train_seconds"]
            for r in rounds
            if r.get("chainrule", {}).get("reached") and r.get(other, {}).get("reached")
        ]
        if per_round:
            ratios[f"chainrule/{other}"] = {
                "per_round": per_round,
                "median": statistics.median(per_round),
                "low": min(per_round),
                "high": max(per_round),
                "fastest": min(contenders["chainrule"]["train_seconds"])
                / min(contenders[other]["train_seconds"]),
            }
    return {"contenders": contenders, "ratios": ratios}


def _accuracy_section(acc: dict[str, Any] | None) -> list[str]:
    if not acc:
        return []
    r = acc["recipe"]
    rounds = accuracy_rounds(acc)
    out = [
        f"## Time to {r['target']:.0%} test accuracy on Fashion-MNIST",
        "",
        "One recipe for chainrule and PyTorch: "
        f"{r['input_size']}-{r['hidden_size']}-{r['num_classes']} ReLU net, "
        f"the same initial weights, Adam lr {r['learning_rate']:g} (betas 0.9/0.999, "
        f"eps 1e-8), batch {r['batch_size']}, reg {r['reg']:g}, the same shuffled batches; "
        f"test accuracy after each epoch, stop at >= {r['target']}; at most {r['max_epochs']} "
        f"epochs; {acc['threads']} thread(s); {len(rounds)} interleaved round(s), one process "
        "each. Seconds count training steps only, not the evaluations.",
        "",
        "| round | contender | reached | epochs | training seconds | s/epoch (median) | "
        "test accuracy per epoch |",
        "| ---: | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for number, runs in enumerate(rounds, 1):
        for name, res in runs.items():
            if res.get("status") != "ok":
                reason = res.get("reason") or res.get("error")
                out.append(f"| {number} | {LABELS[name]} | skipped: {reason} |||||")
                continue
            per_epoch = statistics.median(res["epoch_seconds"]) if res["epoch_seconds"] else None
            accs = ", ".join(f"{a:.4f}" for a in res["test_accuracy"])
            out.append(
                f"| {number} | {LABELS[name]} | {'yes' if res['reached'] else 'not reached'} | "
                f"{res['epochs'] if res['reached'] else res['epochs_run']} | "
                f"{_f(res['train_seconds'], 2) if res['reached'] else '–'} | {_f(per_epoch)} | "
                f"{accs} |"
            )
    ratios = (acc.get("summary") or accuracy_summary(rounds))["ratios"]
    if ratios:
        out += ["", "Training seconds, chainrule over each, median of the per-round ratios:", ""]
        out += [
            f"- {LABELS[key.split('/')[1]]}: {_ratio_cell(ratio)}" for key, ratio in ratios.items()
        ]
        out += [
            "",
            "In brackets: the range over the rounds; each side's fastest run over the other's. "
            "The target is judged against PyTorch's default Adam, what `torch.optim.Adam(params, "
            "lr)` runs; the fused kernel (`fused=True`) is PyTorch's opt-in, shown for context.",
        ]
    return [*out, ""]


def _scalar_section(sc: dict[str, Any] | None) -> list[str]:
    if not sc:
        return []
    if sc.get("status") != "ok":
        return ["## Scalar engine", "", f"Not run: {sc.get('reason') or sc.get('error')}", ""]
    n, depth = sc["terms"], sc["depth"]
    out = [
        "## Scalar engine: chainrule's 0-d Tensors against micrograd",
        "",
        f"`sum(tanh(a_i*b_i + c_i))` over {n:,} terms: build the graph (forward) and "
        f"back-propagate it; a chain of {depth:,} multiplications `y = y * 1.0`. Seconds, "
        f"min / median over {sc['rounds']} round(s). micrograd 0.1.0 has no tanh: the benchmark "
        "adds one in micrograd's own style (a closure `_backward`).",
        "",
        "| engine | graph | build s | backward s | total s (min / median) |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    graphs = {
        "python_sum": f"Python `sum` of {n:,} terms (depth {n:,})",
        "tree_sum": f"pairwise sum of {n:,} terms",
        "deep": f"chain of depth {depth:,}",
    }
    for engine, per in sc["summary"].items():
        for kind, label in graphs.items():
            st = per[kind]
            if st["ok"] == 0:
                build = st.get("build_seconds", {}).get("median")
                out.append(f"| {engine} | {label} | {_f(build)} | {'; '.join(st['errors'])} | – |")
                continue
            out.append(
                f"| {engine} | {label} | {_f(st['build_seconds']['median'])} | "
                f"{_f(st['backward_seconds']['median'])} | {_f(st['seconds']['min'])} / "
                f"{_f(st['seconds']['median'])} |"
            )
    out.append("")
    raised = sc.get("micrograd_python_sum_raised_limit")
    if raised:
        if "seconds" in raised:
            out.append(
                f"- micrograd back-propagates the Python-sum graph only with the recursion "
                f"limit raised to {raised['recursion_limit']:,} (and a large thread stack): "
                f"then build {raised['build_seconds']:.3f} s, "
                f"backward {raised['backward_seconds']:.3f} s."
            )
        else:
            out.append(f"- micrograd with a raised recursion limit: {raised.get('error')}.")
    if "micrograd_deepest_chain" in sc:
        out.append(
            f"- The deepest chain micrograd back-propagates at the default recursion limit "
            f"({sc['recursion_limit']}): {sc['micrograd_deepest_chain']:,} multiplications."
        )
    ag = sc.get("agreement", {})
    if "max_abs_diff" in ag:
        out.append(
            f"- Gradients agree: on {ag['terms']} terms the largest difference between the "
            f"engines' gradients (of every a_i, b_i, c_i) is {ag['max_abs_diff']:.2e} "
            f"(largest gradient {ag['max_abs_grad']:.3f}; both compute in float64)."
        )
    out += [f"- {note}" for note in sc.get("notes", [])]
    return [*out, ""]


def _blas_section(results: dict[str, Any]) -> list[str]:
    out = [
        "## BLAS and threads each contender ran on",
        "",
        f"Each child ran with {', '.join(f'`{v}`' for v in results['thread_env'])} set to the "
        f"thread count, torch.set_num_threads likewise, and without "
        f"{' or '.join(f'`{v}`' for v in results['blas_env_removed'])} (in the parent's "
        f"environment: {results['blas_env_in_parent'] or 'neither was set'}).",
        "",
    ]
    for name, info in results.get("blas", {}).items():
        out.append(f"- {LABELS[name]}: {_blas_line(info['pools'])}.")
        tc = info.get("torch_config")
        if tc:
            out.append(
                f"  torch's own matmuls: BLAS_INFO={tc['build'].get('BLAS_INFO')} "
                f"({'; '.join(tc['libraries'])}), CPU capability {tc['cpu_capability']}, "
                f"mkldnn available {tc['mkldnn_available']}, parallel backend "
                f"{tc['parallel_backend']}, {tc['num_threads']} threads."
            )
    out.append("")
    out += [
        "## How the contenders were set up",
        "",
        "- **chainrule**: `chainrule.fit` with `SGD`, `softmax_loss`, `reg`, a fresh permutation "
        "per epoch; its `EpochRecord.seconds` (the training steps, not the per-epoch "
        "evaluation) is the time.",
        "- **PyTorch**: `nn.Linear`-`ReLU`-`nn.Linear` with chainrule's initial weights copied "
        "in, `F.cross_entropy` + reg * sum(W**2) over the weights, `torch.optim.SGD` (plain), "
        "the same permutations (from the same seed) and fancy-indexed batches of the same "
        "float32 arrays (`torch.from_numpy`, no copy); `loss.item()` every step as chainrule "
        "reads its loss. Timed: the whole epoch loop.",
        "- **scikit-learn**: `MLPClassifier(solver='sgd', momentum=0, nesterovs_momentum=False, "
        "learning_rate='constant', shuffle=True)`, `alpha = 2 * reg * batch_size` (it adds "
        "alpha/2 * ||W||^2 / n_batch to each batch's loss, so its weight gradient gets "
        "alpha * W / n_batch against chainrule's 2 * reg * W), one `partial_fit` = one epoch; "
        "float32 kept. Its own Glorot-uniform initialization (not settable). Timed: the "
        "`partial_fit` call, its input validation included.",
        "- **floor**: only the matrix products of a step in NumPy float32, on contiguous slices "
        "of the training array and into buffers allocated once: five per step for the "
        "two-layer net (X·W1ᵀ, H·W2ᵀ, dSᵀ·H, dS·W2, dHᵀ·X), two for the linear classifier "
        "(X·Wᵀ, dSᵀ·X). No ReLU, loss, bias, update or batch gathering.",
    ]
    return [*out, ""]


if __name__ == "__main__":
    import sys

    sys.exit(main())
