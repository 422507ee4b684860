"""The command line as a whole: what starting it imports, and where its commands write."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chainrule.app import runfolders
from chainrule.engine.errors import ConfigError
from chainrule.training.config import TrainConfig

# Libraries that take a large part of a second (or more) to import: only commands that use them
# may import them, never `chainrule --help` or the parser.
HEAVY = ("matplotlib", "sklearn", "scipy", "PIL", "tqdm", "skimage", "torch")

SHOW_EVERY_HELP = """
import argparse, json, sys
from chainrule.app import cli
parser = cli.build_parser()
commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
for args in (["--help"], *[[c, "--help"] for c in commands]):
    try:
        cli.main(args)
    except SystemExit:
        pass
with open(sys.argv[1], "w") as f:
    json.dump({"modules": sorted(sys.modules), "commands": sorted(commands)}, f)
"""


def test_help_imports_no_heavy_library(tmp_path):
    """chainrule --help (and every command's --help) starts in well under a second: measured by
    what it imports, not by a clock."""
    report = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", SHOW_EVERY_HELP, str(report)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(report.read_text())
    assert "compare" in seen["commands"] and "predict" in seen["commands"]
    assert "usage: chainrule" in done.stdout
    heavy = sorted({m.split(".")[0] for m in seen["modules"]} & set(HEAVY))
    assert heavy == [], f"--help imported {heavy}"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chainrule", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def test_check_output_parent(tmp_path):
    assert runfolders.check_output_parent("fig.png") == Path("fig.png")  # the current folder
    assert runfolders.check_output_parent(tmp_path / "new") == tmp_path / "new"
    with pytest.raises(ConfigError, match=r"--svg .*nope/c\.svg: the folder .*nope does not exist"):
        runfolders.check_output_parent(tmp_path / "nope" / "c.svg", "--svg")
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="file is not a folder"):
        runfolders.check_output_parent(tmp_path / "file" / "c.svg")


# Every command that writes a file the user names: a missing folder above it is a usage error
# (exit 2, one line), checked before any work, and no folder is made.
MISSING_PARENT = [
    ("circuit", ["x*y", "x=1", "y=2", "--svg", "a/b/c.svg"], "--svg a/b/c.svg"),
    ("circuit", ["x*y", "x=1", "y=2", "--dot", "a/c.dot"], "--dot a/c.dot"),
    ("graph", ["--svg", "a/b/g.svg"], "--svg a/b/g.svg"),
    ("graph", ["--out", "a/b"], "--out a/b"),
    ("collapse", ["--out", "a/spiral.png"], "--out a/spiral.png"),
    ("collapse", ["--out", "a/b"], "--out a/b"),
    ("compare", ["--dataset", "digits", "--out", "a/b"], "--out a/b"),
]


@pytest.mark.parametrize(("command", "args", "named"), MISSING_PARENT)
def test_a_missing_folder_above_an_output_is_an_error(tmp_path, command, args, named):
    done = run_cli(command, *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    folder = str(Path(named.split()[1]).parent)
    assert done.stderr.splitlines() == [
        f"chainrule {command}: error: {named}: the folder {folder} does not exist; expected "
        "an existing folder (create it first)"
    ]
    assert list(tmp_path.iterdir()) == []  # nothing made


def test_show_refuses_a_missing_folder_above_its_output(tmp_path):
    from chainrule.app import experiment

    run = tmp_path / "run"
    experiment.train_run(TrainConfig(model="softmax", epochs=1), run, progress=False)
    done = run_cli("show", str(run), "--out", "x/y", cwd=tmp_path)
    assert done.returncode == 2 and "--out x/y: the folder x does not exist" in done.stderr
    done = run_cli("show", str(run), "--compare", str(run), "--out", "x/f.png", cwd=tmp_path)
    assert done.returncode == 2 and "--out x/f.png: the folder x does not exist" in done.stderr
    done = run_cli("show", str(run), "--out", "pictures", cwd=tmp_path)  # one new level: fine
    assert done.returncode == 0 and (tmp_path / "pictures" / "templates.png").is_file()
    assert not (tmp_path / "x").exists()


def test_figures_go_to_the_current_folder_or_out(tmp_path):
    done = run_cli("collapse", "--epochs", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "spiral.png").is_file() and "figure: spiral.png" in done.stdout
    done = run_cli("collapse", "--epochs", "1", "--out", "figs", cwd=tmp_path)  # a new folder
    assert (tmp_path / "figs" / "spiral.png").is_file()
    done = run_cli("graph", "--out", "steps", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "steps").iterdir()) == [
        "two-layer.dot",
        "two-layer.svg",
    ]
    done = run_cli("circuit", "x*y", "x=1", "y=2", "--svg", "c.svg", cwd=tmp_path)
    assert done.returncode == 0 and (tmp_path / "c.svg").is_file()
