"""What a sweep leaves: the best trial trained again as an ordinary run folder (its test accuracy
the one time the sweep reads the test split), every trial in ``trials.csv``, the figures, and
``summary.json``; and the table of the best trials that the command prints.

The best trial is trained again with its own settings and seed, so its run folder holds the same
model the trial trained (bit for bit with the same BLAS threads) and ``evaluate``, ``predict``
and ``show`` work on it. A run folder made by an earlier start is used as it is.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

from chainrule.app import experiment, runfolders, sweep_storage
from chainrule.app.sweep_figures import save_figures
from chainrule.app.sweep_space import SEARCHED, trial_config
from chainrule.app.sweep_worker import SweepPlan
from chainrule.data import files
from chainrule.engine.errors import ChainruleError

SUMMARY_FILE, TRIALS_FILE = "summary.json", "trials.csv"
TABLE_ROWS = 10
COLUMNS = ("number", *SEARCHED, "val_accuracy", "epochs", "seconds", "state")


def trial_row(trial: Any) -> dict[str, Any]:
    """One trial (a FrozenTrial) as a row: its number, settings, validation accuracy (the best
    epoch's; for a pruned trial the last reported), epochs trained, seconds, state."""
    row: dict[str, Any] = {"number": trial.number}
    row.update({name: trial.params.get(name) for name in SEARCHED})
    state = trial.state.name.lower()
    if trial.user_attrs.get("diverged"):
        state = "diverged"
    row.update(
        val_accuracy=trial.value,
        epochs=trial.user_attrs.get("epochs", 0),
        seconds=trial.user_attrs.get("seconds"),
        state=state,
    )
    return row


def ranked(trials: list[Any]) -> list[dict[str, Any]]:
    """Rows of the COMPLETE and PRUNED trials, best validation accuracy first (completed
    before pruned at equal accuracy, then by number)."""
    scored = [t for t in trials if t.state.name in sweep_storage.COUNTED]
    scored.sort(
        key=lambda t: (
            -(t.value if t.value is not None else -1),
            t.state.name != "COMPLETE",
            t.number,
        )
    )
    return [trial_row(t) for t in scored]


def _cell(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name in ("lr", "reg"):
        return f"{value:.2e}"
    if name == "val_accuracy":
        return f"{value:.4f}"
    if name == "seconds":
        return f"{value:.1f}"
    return str(value)


def table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of rows (``trial_row``'s), columns aligned."""
    cells = [[_cell(c, row[c]) for c in COLUMNS] for row in rows]
    header = ["#", *SEARCHED, "val acc", "epochs", "seconds", "state"]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def write_trials_csv(trials: list[Any], path: Path) -> Path:
    """Every trial (any state, surplus ones left out) as a CSV row, by number, atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for t in sorted(trials, key=lambda t: t.number):
        if not t.user_attrs.get("surplus"):
            writer.writerow(trial_row(t))
    files.atomic_write_text(path, buffer.getvalue())
    return path


def best_run(
    study: Any, plan: SweepPlan, final: dict[str, Any], progress: bool, log: Any
) -> dict[str, Any] | None:
    """The run summary of the best COMPLETE trial, trained again into ``FOLDER/best-trial-N``
    with ``final`` changing its settings (e.g. {"epochs": 30, "max_train": None}: longer, on
    all the data), or read back from there when an earlier start trained the same config.
    None when no trial completed."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if not complete:
        return None
    best = study.best_trial
    run_dir = Path(plan.folder) / f"best-trial-{best.number}"
    config = dataclasses.replace(trial_config(plan.base, best.params, plan.depth), **final)
    summary_file = run_dir / runfolders.SUMMARY_FILE
    if summary_file.exists() and _same_config(run_dir, config):
        summary = json.loads(summary_file.read_text())
    else:
        log(f"training the best trial ({best.number}) again as a run folder: {run_dir}")
        summary = experiment.train_run(config, run_dir, force=True, progress=progress, log=log)
    return {"number": best.number, "params": best.params, "trial_val_accuracy": best.value,
            **summary}  # fmt: skip


def _same_config(run_dir: Path, config: Any) -> bool:
    try:
        return experiment.read_config(run_dir) == config
    except ChainruleError:  # damaged or missing: train it again
        return False


def summarize(
    study: Any,
    plan: SweepPlan,
    where: str,
    seconds: float,
    jobs: int,
    final: dict[str, Any],
    progress: bool,
    log: Any,
) -> dict[str, Any]:
    """Write the sweep's results into its folder and return the summary: study, storage,
    folder, trials asked for and counts by state, the best trial (number, settings, validation
    and test accuracy, run folder), the top rows of the table, figures, timing, workers."""
    folder = Path(plan.folder)
    trials = study.get_trials(deepcopy=False)
    best = best_run(study, plan, final, progress, log)
    counts = sweep_storage.count_trials(study.get_trials(deepcopy=False))
    title = f"{plan.base.model} on {plan.base.dataset}"
    summary = {
        "study": plan.study,
        "storage": where,
        "folder": str(folder),
        "trials": plan.trials,
        **{state: counts[state] for state in ("complete", "pruned", "failed", "running")},
        "best": None if best is None else {
            "number": best["number"],
            "params": best["params"],
            "val_accuracy": best["trial_val_accuracy"],
            "run_val_accuracy": best["val_accuracy"],  # differs with --final-* settings
            "test_accuracy": best["test_accuracy"],
            "run_dir": best["run_dir"],
        },
        "top": ranked(trials)[:TABLE_ROWS],
        "search_space": plan.space.to_json(),
        "settings": {k: v for k, v in plan.base.to_json().items() if k not in SEARCHED},
        "jobs": jobs,
        "threads_per_job": plan.threads,
        "seconds": seconds,
        "trials_csv": str(write_trials_csv(trials, folder / TRIALS_FILE)),
        "figures": [str(p) for p in save_figures(study, folder, title)],
    }  # fmt: skip
    files.atomic_write_text(folder / SUMMARY_FILE, json.dumps(summary, indent=2))
    return summary


def report(summary: dict[str, Any]) -> str:
    """The text the command prints: the table of the best trials, the best trial's test
    accuracy and run folder, the counts and the files written."""
    lines = [table(summary["top"]), ""]
    best = summary["best"]
    counts = ", ".join(f"{summary[k]} {k}" for k in ("complete", "pruned", "failed") if summary[k])
    lines.append(f"{summary['study']}: {counts or 'no trials'} (asked for {summary['trials']})")
    if best is None:
        lines.append("no trial completed: nothing to train again")
    else:
        lines.append(
            f"best: trial {best['number']}, validation {best['val_accuracy']:.4f}; its run "
            f"folder {best['run_dir']}: validation {best['run_val_accuracy']:.4f}, test "
            f"{best['test_accuracy']:.4f}"
        )
    lines.append(f"trials: {summary['trials_csv']}; figures: {', '.join(summary['figures'])}")
    return "\n".join(lines)
