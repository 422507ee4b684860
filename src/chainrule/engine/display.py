"""Jupyter's rich display of the engine's results: a gradient check report as an HTML table.

``GradcheckReport._repr_html_`` calls ``gradcheck_html``. Plain HTML with inline style, no
script: a notebook shows it as it is, and so does a page that allows no script.
"""

from __future__ import annotations

import html
from typing import Any

PASS_COLOUR = "#1b7f2a"
FAIL_COLOUR = "#c62828"


def cell(text: Any, tag: str = "td", style: str = "") -> str:
    """One table cell with ``text`` escaped; style: inline CSS, "" for none."""
    styled = f' style="{style}"' if style else ""
    return f"<{tag}{styled}>{html.escape(str(text))}</{tag}>"


def gradcheck_html(report: Any) -> str:
    """A ``gradcheck.GradcheckReport`` as an HTML table: one row per input (name, shape,
    coordinates checked, max absolute and relative error, pass/FAIL), then the verdict with the
    tolerance and the cost of the numerical gradient against one forward + backward pass
    (seconds). Errors to 3 significant digits, as ``GradcheckReport.table`` prints them."""
    head = "".join(
        cell(h, "th") for h in ("input", "shape", "checked", "max abs err", "max rel err", "result")
    )
    rows = []
    for c in report.inputs:
        colour = PASS_COLOUR if c.ok else FAIL_COLOUR
        rows.append(
            "<tr>"
            + cell(c.name)
            + cell("×".join(map(str, c.shape)) or "scalar")
            + cell(c.checked)
            + cell(f"{c.max_abs_error:.2e}")
            + cell(f"{c.max_rel_error:.2e}")
            + cell("pass" if c.ok else "FAIL", style=f"color: {colour}; font-weight: bold")
            + "</tr>"
        )
    verdict = "pass" if report.ok else "FAIL"
    colour = PASS_COLOUR if report.ok else FAIL_COLOUR
    caption = (
        f'<p><b style="color: {colour}">gradient check: {verdict}</b> (max rel err '
        f"{report.max_rel_error:.2e}, tolerance {report.tol:.0e}); {report.forward_passes} "
        f"forward passes in {report.seconds_numerical:.3f} s for the numerical gradient vs "
        f"{report.seconds_analytic:.4f} s for one forward+backward</p>"
    )
    return (
        '<div class="chainrule-gradcheck">'
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"{caption}</div>"
    )
