"""A sweep's three figures, drawn from its trials with matplotlib (Agg), written atomically:

- ``history.png``: validation accuracy of each trial in the order they were made, and the best so
  far (Optuna's optimization-history plot);
- ``importances.png``: how much of the variation in validation accuracy each searched setting
  explains (``optuna.importance.get_param_importances``, PED-ANOVA by default);
- ``lr_reg.png``: validation accuracy over learning rate and regularization, both on log axes
  (the plot of the CS231n notes' hyperparameter search, Karpathy, cs231n.github.io/neural-
  networks-3/#hyperparameter-optimization).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

HISTORY, IMPORTANCES, LR_REG = "history.png", "importances.png", "lr_reg.png"


def _scored(trials: list[Any]) -> list[Any]:
    """COMPLETE and PRUNED trials that have a validation accuracy."""
    return [t for t in trials if t.state.name in ("COMPLETE", "PRUNED") and t.value is not None]


def plot_history(trials: list[Any], path: Path, title: str) -> Path:
    """Validation accuracy per trial number (completed: filled, pruned: hollow) and the best of
    the completed ones so far, as a step line. trials: FrozenTrials."""
    from chainrule.lessons import plots

    fig, ax = plots.plt.subplots(figsize=(7, 4))
    for state, style in (("COMPLETE", {"color": "C0"}), ("PRUNED", {"facecolors": "none"})):
        shown = [t for t in _scored(trials) if t.state.name == state]
        if shown:
            ax.scatter(
                [t.number for t in shown],
                [t.value for t in shown],
                edgecolors="C0",
                label=state.lower(),
                **style,
            )
    complete = sorted((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.number)
    if complete:
        best = np.maximum.accumulate([t.value for t in complete])
        ax.step([t.number for t in complete], best, where="post", color="C1", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("validation accuracy")
    ax.set_title(f"{title}: optimization history")
    ax.legend(loc="lower right")
    return plots.save_figure(fig, path)


def plot_importances(study: Any, path: Path, title: str) -> Path | None:
    """A bar per searched setting: its share of the variation of validation accuracy, from
    Optuna's importance evaluator over the completed trials. None (nothing drawn) when the
    completed trials do not differ in their settings."""
    import optuna

    from chainrule.lessons import plots

    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len({tuple(sorted(t.params.items())) for t in complete}) < 2:
        return None  # nothing varied: no setting can explain anything
    try:
        importances = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError):  # every setting fixed, or one value throughout
        return None
    if not importances:
        return None
    names = list(importances)[::-1]  # the most important at the top
    fig, ax = plots.plt.subplots(figsize=(6, 0.5 * len(names) + 1.5))
    ax.barh(names, [importances[n] for n in names], color="C0")
    ax.set_xlabel("importance (share of the variation in validation accuracy)")
    ax.set_title(f"{title}: which settings mattered ({len(complete)} trials)")
    return plots.save_figure(fig, path)


def plot_lr_reg(trials: list[Any], path: Path, title: str) -> Path | None:
    """Each scored trial at (learning rate, regularization) on log axes, coloured by validation
    accuracy; the best marked. None when the trials have no lr and reg drawn."""
    from chainrule.lessons import plots

    shown = [t for t in _scored(trials) if "lr" in t.params and "reg" in t.params]
    if not shown:
        return None
    lr = [t.params["lr"] for t in shown]
    reg = [t.params["reg"] for t in shown]
    val = [t.value for t in shown]
    fig, ax = plots.plt.subplots(figsize=(6.5, 5))
    points = ax.scatter(lr, reg, c=val, cmap="viridis", s=60, edgecolors="k", linewidths=0.4)
    best = int(np.argmax(val))
    ax.scatter([lr[best]], [reg[best]], marker="*", s=300, color="red", label="best")
    ax.set_xscale("log")
    ax.set_yscale("log")
    log_ticks(ax.xaxis, lr)
    log_ticks(ax.yaxis, reg)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("regularization strength")
    ax.set_title(f"{title}: validation accuracy over lr and reg")
    fig.colorbar(points, ax=ax, label="validation accuracy")
    ax.legend(loc="best")
    return plots.save_figure(fig, path)


def log_ticks(axis: Any, values: list[float]) -> None:
    """Readable labels on a log axis (a matplotlib Axis) over ``values`` (positive, at least
    one). Under two decades: marks at 1, 2 and 5 times each power of ten, each labelled, in one
    notation for the axis (0.02, 0.05; or 2e-05, 5e-05 once the smallest value is below 1e-3);
    matplotlib's own choice there labels some minor marks, which run into each other (3x10^-3
    over 4x10^-3), or leaves a single label. Where fewer than two such marks fall in view,
    matplotlib's locator falls back to evenly spaced ones, labelled the same way. Wider spans
    keep its labels at each power of ten. Never a label on a minor mark."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    if max(values) / min(values) < 100:
        style = "g" if min(values) >= 1e-3 else ".0e"
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda value, _: format(value, style)))
    axis.set_minor_formatter(NullFormatter())


def save_figures(study: Any, folder: Path, title: str) -> list[Path]:
    """The sweep's figures in ``folder`` (those there is something to draw for)."""
    trials = study.get_trials(deepcopy=False)
    drawn = [
        plot_history(trials, folder / HISTORY, title),
        plot_importances(study, folder / IMPORTANCES, title),
        plot_lr_reg(trials, folder / LR_REG, title),
    ]
    return [p for p in drawn if p is not None]
