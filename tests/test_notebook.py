"""docs/tour.ipynb: made from docs/tour.md by jupytext, and run top to bottom by nbclient.

The notebook runs in a real Jupyter kernel (ipykernel, in this Python's environment) from the
repository's root, as a reader runs it; any error in a cell fails the test (a `%%bash` cell
fails on a command's non-zero exit). Its rich outputs are the chainrule objects' own: the
explorer inline, a gradient check and a training history as HTML.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext", reason="the notebook extra is not installed")
nbformat = pytest.importorskip("nbformat", reason="the notebook extra is not installed")
nbclient = pytest.importorskip("nbclient", reason="the notebook extra is not installed")
# Looked up, not imported (see EXECUTE below)
if importlib.util.find_spec("ipykernel") is None:
    pytest.skip("the notebook extra is not installed", allow_module_level=True)

REPO = Path(__file__).resolve().parents[1]
TOUR_MD, TOUR_IPYNB = REPO / "docs" / "tour.md", REPO / "docs" / "tour.ipynb"


def cells(notebook) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source) for c in notebook.cells]


def test_the_notebook_is_the_tour():
    from_md = jupytext.read(TOUR_MD)
    ipynb = nbformat.read(TOUR_IPYNB, as_version=4)
    assert cells(ipynb) == cells(from_md), (
        "docs/tour.ipynb and docs/tour.md differ: run `jupytext --sync docs/tour.md`"
    )
    assert from_md.metadata["jupytext"]["formats"] == "ipynb,md"
    code = [source for kind, source in cells(from_md) if kind == "code"]
    assert any("cr.explore(" in c for c in code) and any("%%bash" in c for c in code)


# Run in a child process: finding the kernel imports ipykernel, and an ipykernel in this process
# would make fit's progress think it runs in Jupyter for every test after this one.
EXECUTE = """
import sys, nbclient, nbformat
notebook = nbformat.read(sys.argv[1], as_version=4)
client = nbclient.NotebookClient(
    notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": sys.argv[3]}}
)
try:
    client.execute()
finally:
    nbformat.write(notebook, sys.argv[2])
"""


def test_the_notebook_runs_top_to_bottom(tmp_path):
    executed = tmp_path / "tour.ipynb"
    # timeout 120 s per cell; the whole notebook takes well under two minutes
    done = subprocess.run(
        [sys.executable, "-c", EXECUTE, str(TOUR_IPYNB), str(executed), str(REPO)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]  # CellExecutionError names the cell
    notebook = nbformat.read(executed, as_version=4)
    html = [
        o["data"]["text/html"]
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if "text/html" in o.get("data", {})
    ]
    explorers = [h for h in html if h.startswith("<iframe srcdoc=")]
    assert len(explorers) == 2 and all("chainrule-data" in h for h in explorers)
    assert any("gradient check: pass" in h for h in html)
    assert any("chainrule-history" in h and "<polyline" in h for h in html)
    text = "".join(
        o.get("text", "") for c in notebook.cells for o in c.get("outputs", []) if "text" in o
    )
    assert "df/dx = -4   df/dy = -4   df/dz = 3" in text
    assert "drawing: runs/tour/two-layer-step.html" in text
