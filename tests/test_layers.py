"""The layers (pyproject's [tool.importlinter] contract): the tree keeps them, and lint-imports
refuses a copy of it with one import that points the wrong way."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = "chainrule layers: app | sklearn > lessons > training > nn | data > engine"


def lint_imports(config: Path, src: Path) -> subprocess.CompletedProcess:
    """lint-imports on the package found first in ``src`` (PYTHONPATH comes before the editable
    install), with the contract in ``config``."""
    script = Path(sys.executable).parent / "lint-imports"
    command = [str(script)] if script.exists() else [shutil.which("lint-imports") or "lint-imports"]
    return subprocess.run(
        [*command, "--no-cache", "--no-logo", str(config)],
        cwd=config.parent,
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_tree_keeps_the_layers():
    done = lint_imports(ROOT / "pyproject.toml", ROOT / "src")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{CONTRACT} KEPT" in done.stdout
    assert "1 kept, 0 broken" in done.stdout


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of src/chainrule and pyproject.toml to break."""
    shutil.copytree(
        ROOT / "src" / "chainrule",
        tmp_path / "src" / "chainrule",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def plant(tree: Path, module: str, code: str) -> None:
    """Append ``code`` to the module ``chainrule/<module>`` of the copy (made if missing)."""
    path = tree / "src" / "chainrule" / module
    text = path.read_text() if path.exists() else ""
    path.write_text(text + "\n" + code + "\n")


# (the module of the copy, the code planted in it, the line lint-imports must print)
UPWARD = [
    (
        "engine/tensor.py",
        "import chainrule.app",
        "chainrule.engine is not allowed to import chainrule.app",
    ),
    (  # an import inside a function counts as much as one at the top
        "training/loop.py",
        "def _figure():\n    from chainrule.lessons import plots\n\n    return plots",
        "chainrule.training is not allowed to import chainrule.lessons",
    ),
    (  # the siblings of one layer are independent: nn may not import data
        "nn/modules.py",
        "from chainrule.data import Dataset",
        "chainrule.nn is not allowed to import chainrule.data",
    ),
    (  # lessons never stand on the application
        "lessons/show.py",
        "from chainrule.app import runfolders",
        "chainrule.lessons is not allowed to import chainrule.app",
    ),
    (  # the estimators to come are app's sibling: checked as soon as the module exists
        "sklearn.py",
        "from chainrule.app import cli",
        "chainrule.sklearn is not allowed to import chainrule.app",
    ),
]


@pytest.mark.parametrize(("module", "code", "refusal"), UPWARD)
def test_an_upward_import_breaks_the_contract(tree: Path, module: str, code: str, refusal: str):
    plant(tree, module, code)
    done = lint_imports(tree / "pyproject.toml", tree / "src")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{CONTRACT} BROKEN" in done.stdout
    assert refusal in done.stdout
    importer = "chainrule." + module.removesuffix(".py").replace("/", ".")
    assert f"- {importer} -> " in done.stdout  # the importing module and the line


def test_a_module_outside_the_layers_breaks_the_contract(tree: Path):
    """Every child of chainrule is in a layer (the contract is exhaustive): a new top-level
    module must be given its place."""
    plant(tree, "stray.py", "X = 1")
    done = lint_imports(tree / "pyproject.toml", tree / "src")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "not listed as layers" in done.stdout and "- chainrule.stray" in done.stdout
