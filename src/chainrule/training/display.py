"""Jupyter's rich display of a training ``History``: a table of the epochs and a small plot.

``History._repr_html_`` calls ``history_html``. The plot is inline SVG drawn here (two panels:
the training loss, and the training and validation accuracy, per epoch), so it needs no
matplotlib backend, no script and no file: a notebook shows it as it is.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from chainrule.engine.display import cell

LOSS_COLOUR = "#3a5a8c"
TRAIN_COLOUR = "#e08a00"
VAL_COLOUR = "#1b7f2a"
WIDTH, HEIGHT, PAD = 260, 150, 34  # one panel, px; PAD: room for the axes' numbers

COLUMNS = (
    ("epoch", "epoch", "{:d}"),
    ("loss", "loss", "{:.4f}"),
    ("train_accuracy", "train acc", "{:.4f}"),
    ("val_accuracy", "val acc", "{:.4f}"),
    ("learning_rate", "learning rate", "{:.3g}"),
    ("seconds", "seconds", "{:.2f}"),
)


def history_html(history: Any) -> str:
    """A ``training.loop.History`` as HTML: the plot (``history_svg``) above one table row per
    epoch (epoch, mean training loss, training and validation accuracy in [0, 1], learning
    rate, seconds), the kept epoch in bold, and a line naming it. An empty history gives a
    line saying so."""
    epochs = list(history.epochs)
    if not epochs:
        return "<p>no epochs trained yet</p>"
    head = "".join(cell(title, "th") for _, title, _ in COLUMNS)
    rows = []
    for r in epochs:
        style = "font-weight: bold" if r.epoch == history.best_epoch else ""
        cells = "".join(cell(form.format(getattr(r, name))) for name, _, form in COLUMNS)
        rows.append(f'<tr style="{style}">{cells}</tr>' if style else f"<tr>{cells}</tr>")
    kept = (
        f"<p>kept: epoch {history.best_epoch} (validation accuracy "
        f"{history.best_val_accuracy:.4f})" + ("; stopped early" if history.stopped_early else "")
    )
    return (
        f'<div class="chainrule-history">{history_svg(history)}'
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"{kept}</p></div>"
    )


def history_svg(history: Any) -> str:
    """Two panels side by side, as inline SVG (px): the training loss per epoch, and the
    training and validation accuracy per epoch on a 0..1 axis."""
    epochs = [r.epoch for r in history.epochs]
    loss = [r.loss for r in history.epochs]
    low, high = min(loss), max(loss)
    if high == low:
        low, high = low - 0.5, high + 0.5
    panels = [
        _panel(0, "training loss", epochs, [(loss, LOSS_COLOUR)], low, high),
        _panel(
            WIDTH,
            "accuracy (train, validation)",
            epochs,
            [
                ([r.train_accuracy for r in history.epochs], TRAIN_COLOUR),
                ([r.val_accuracy for r in history.epochs], VAL_COLOUR),
            ],
            0.0,
            1.0,
        ),
    ]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * WIDTH}" height="{HEIGHT}" '
        'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="10">'
        + "".join(panels)
        + "</svg>"
    )


def _panel(
    left: float,
    title: str,
    epochs: Sequence[int],
    series: Sequence[tuple[Sequence[float], str]],
    low: float,
    high: float,
) -> str:
    """One panel at x offset ``left``: a frame, the y range's ends, the epochs' ends, and a
    polyline (with a dot per epoch) per (values, colour) in ``series``."""
    x0, x1, y0, y1 = left + PAD, left + WIDTH - 10, HEIGHT - 22, 18
    first, last = epochs[0], epochs[-1]
    span = (last - first) or 1

    def point(epoch: int, value: float) -> tuple[float, float]:
        x = x0 + (x1 - x0) * ((epoch - first) / span if last != first else 0.5)
        return x, y0 + (y1 - y0) * (value - low) / (high - low)

    parts = [
        f'<text x="{x0:.0f}" y="12" font-size="11">{html.escape(title)}</text>',
        f'<rect x="{x0:.0f}" y="{y1}" width="{x1 - x0:.0f}" height="{y0 - y1}" fill="none" '
        'stroke="#bbb"/>',
        f'<text x="{x0 - 3:.0f}" y="{y1 + 8}" text-anchor="end">{high:.3g}</text>',
        f'<text x="{x0 - 3:.0f}" y="{y0}" text-anchor="end">{low:.3g}</text>',
        f'<text x="{x0:.0f}" y="{y0 + 13}">epoch {first}</text>',
        f'<text x="{x1:.0f}" y="{y0 + 13}" text-anchor="end">{last}</text>',
    ]
    for values, colour in series:
        points = [point(e, v) for e, v in zip(epochs, values)]
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>' for x, y in points]
    return "".join(parts)
