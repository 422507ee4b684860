"""The explorer as one self-contained HTML page: the drawing, the data, the script and the style.

Nothing is fetched: the script and the style are package files (``show.js`` and ``explorer.js``
in one function scope, ``explorer.css``) pasted in, the drawing is ``render.to_svg``'s inline
SVG, the data a JSON script element. A Content-Security-Policy (``default-src 'none'``) tells
the browser to refuse any request the page might still try, so it works from disk with no
network at all.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any

from chainrule.lessons.graph.build import Graph
from chainrule.lessons.graph.render import to_svg

CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"

KEYS = "→ step forward · ← step backward · space play/pause · r reset"


def _asset(name: str) -> str:
    """A file of this package (the page's script or style) as text."""
    return resources.files("chainrule.lessons.explorer").joinpath(name).read_text("utf-8")


def _json_for_script(data: Any) -> str:
    """``data`` as JSON that cannot end its script element early ("</" and "<!--" escaped)."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def page(graph: Graph, data: dict[str, Any]) -> str:
    """The whole page (text, UTF-8): ``graph`` drawn as SVG and ``data`` (``explorer_data``)
    for the script that steps through the forward and backward passes."""
    title = html.escape(graph.title)
    note = f'<p class="note" id="note">{html.escape(data["note"])}</p>' if data["note"] else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>chainrule explorer: {title}</title>
<style>
{_asset("explorer.css")}
</style>
</head>
<body>
<header>
<h1>{title}</h1>
{note}
<nav class="controls" aria-label="steps">
<button id="reset" type="button" title="r">⟲ reset</button>
<button id="forward" type="button" title="→">step forward ▶</button>
<button id="backward" type="button" title="←">◀ step backward</button>
<button id="play" type="button" title="space">▶▶ play</button>
<span id="position" class="position"></span>
<span class="keys">{KEYS}</span>
</nav>
<p class="legend"><span class="ring" style="border: 3px solid #1b7f2a"></span> the gate computing
forward · <span class="ring" style="border: 3px solid #c62828"></span> the gate stepping backward ·
<span class="ring" style="border: 3px dashed #e08a00"></span> the inputs it sends gradients to ·
hover a node for its numbers</p>
</header>
<main>
<section id="drawing" class="drawing">
{to_svg(graph)}
</section>
<section id="panel" class="panel" aria-live="polite"></section>
<section id="summary" class="summary"></section>
</main>
<div id="tooltip" class="tooltip" hidden></div>
<script type="application/json" id="chainrule-data">{_json_for_script(data)}</script>
<script>
"use strict";
(function () {{
{_asset("show.js")}
{_asset("explorer.js")}
}})();
</script>
</body>
</html>
"""


def iframe(document: str, height: int = 640) -> str:
    """``document`` (a whole page) inside an iframe's srcdoc, for a notebook's output: the page
    keeps its own script, style and CSP, apart from the notebook's. height: px."""
    return (
        f'<iframe srcdoc="{html.escape(document, quote=True)}" '
        f'style="width: 100%; height: {height}px; border: 1px solid #ddd" '
        'sandbox="allow-scripts" title="chainrule explorer"></iframe>'
    )
