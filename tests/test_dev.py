"""./dev: the extras it installs cover every command's imports, and it runs commands in the
caller's folder (relative paths are the user's, not the repository's)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "dev"


def dev_extras(command: str) -> set[str]:
    """The extras ``./dev COMMAND`` installs, read from the script itself."""
    text = DEV.read_text()
    variables = dict(re.findall(r'^([A-Z_]+)="([^"$]*)"$', text, re.MULTILINE))
    block = re.search(rf"^  {command}\)\n(.*?);;", text, re.MULTILINE | re.DOTALL)
    assert block, f"dev has no {command} command"
    [spec] = re.findall(r'install "([^"]*)"', block.group(1))
    for name, value in variables.items():
        spec = spec.replace(f"${name}", value)
    return {e for e in spec.split(",") if e}


def requirement_closure(name: str, extras: set[str]) -> set[str]:
    """Every distribution that installing ``name[extras]`` brings in (installed metadata)."""
    found: set[str] = set()
    stack = [(name, frozenset(extras))]
    seen = set()
    while stack:
        dist, wanted = stack.pop()
        key = (canonicalize_name(dist), wanted)
        if key in seen:
            continue
        seen.add(key)
        found.add(canonicalize_name(dist))
        for text in metadata.requires(dist) or []:
            requirement = Requirement(text)
            if requirement.marker is not None and not any(
                requirement.marker.evaluate({"extra": extra}) for extra in (wanted or {""})
            ):
                continue
            stack.append((requirement.name, frozenset(requirement.extras)))
    return found


def test_the_extras_of_run_and_train_are_in_pyproject():
    declared = set(metadata.metadata("chainrule").get_all("Provides-Extra") or [])
    for command in ("run", "train", "test", "bench"):
        assert dev_extras(command) <= declared, command
    assert dev_extras("run") == dev_extras("train")  # one set: every documented command
    assert dev_extras("test") >= dev_extras("run")  # ./dev test serves ./dev run too


# One quick call of every subcommand, in one process; then the modules it imported. The modules
# of distributions a fresh ./dev run would not install (sys.argv[2]) are hidden, as they would be
# missing there: a library's optional import of one (scikit-learn's of rich, which import-linter
# brings into the test venv) then takes its ImportError path, and a command that needs one fails.
EVERY_COMMAND = """
import importlib.abc, json, sys
hidden, refused = set(json.loads(sys.argv[2])), set()
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in hidden:
            refused.add(name.partition(".")[0])
            raise ModuleNotFoundError(f"No module named {name!r} (hidden)", name=name)
        return None
sys.meta_path.insert(0, Hide())
before = set(sys.modules)
from chainrule.app.cli import main
out = sys.argv[1]
calls = [
    ["circuit", "(x+y)*z", "x=-2", "y=5", "z=-4", "--svg", f"{out}/c.svg"],
    ["train", "--epochs", "1", "--out", f"{out}/run", "--quiet"],
    ["evaluate", f"{out}/run"],
    ["predict", f"{out}/run", f"{out}/digit.png"],
    ["gradcheck"],
    ["collapse", "--epochs", "1", "--out", f"{out}/spiral.png"],
    ["show", f"{out}/run", "--out", f"{out}/shown"],
    ["compare", "--dataset", "digits", "--max-train", "200", "--max-test", "40", "--epochs",
     "1", "--out", f"{out}/cmp", "--no-cache", "--workers", "1", "--quiet"],
    ["graph", "--out", f"{out}/graph"],
]
import numpy as np
from PIL import Image
Image.fromarray(np.zeros((8, 8), np.uint8)).save(f"{out}/digit.png")
status = {c[0]: main(c) for c in calls}
modules = sorted(set(sys.modules) - before)
json.dump({"status": status, "modules": modules, "refused": sorted(refused)}, sys.stderr)
"""


def test_the_extras_dev_installs_cover_every_command(tmp_path):
    """Each subcommand's imports come from chainrule's core dependencies plus the extras that
    ./dev run installs: what a fresh clone gets (the report: compare needed scikit-image)."""
    owners = metadata.packages_distributions()
    allowed = requirement_closure("chainrule", dev_extras("run"))
    hidden = sorted(
        module
        for module, dists in owners.items()
        if not {canonicalize_name(d) for d in dists} & allowed
    )
    done = subprocess.run(
        [sys.executable, "-c", EVERY_COMMAND, str(tmp_path), json.dumps(hidden)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CHAINRULE_CACHE": str(tmp_path / "cache")},
    )
    *errors, last = done.stderr.strip().splitlines()
    report = json.loads(last)
    assert set(report["status"].values()) == {0}, (report["status"], errors[-20:])
    used = {
        canonicalize_name(dist)
        for module in report["modules"]
        for dist in owners.get(module.split(".")[0], [])
    }
    assert "scikit-image" in used  # compare's HOG: the case of the report
    assert used - allowed == set(), f"imported but not installed by ./dev run: {used - allowed}"


def dev(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # The venv running these tests, so that ./dev finds everything installed.
    env = {**os.environ, "CHAINRULE_VENV": sys.prefix}
    return subprocess.run(
        [str(DEV), *args], capture_output=True, text=True, timeout=600, cwd=cwd, env=env
    )


@pytest.fixture
def installed_stamp():
    """./dev installs only when its stamp lacks the extras asked for; the suite may run in a
    venv that ./dev test did not set up, so the stamp is written as ./dev test would."""
    stamp = Path(sys.prefix) / ".chainrule-installed"
    if not stamp.exists():
        pytest.skip("not in a venv set up by ./dev")
    return stamp


def test_dev_runs_commands_in_the_callers_folder(tmp_path, installed_stamp):
    """./dev run and ./dev train from another folder: relative paths are the caller's."""
    if dev_extras("run") - set(installed_stamp.read_text().split()[1:]):
        pytest.skip("this venv lacks the extras of ./dev run (installing would take minutes)")
    done = dev("train", "--epochs", "2", "--out", "myrun", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "run folder: myrun" in done.stdout
    assert (tmp_path / "myrun" / "model.safetensors").is_file()
    assert not (ROOT / "myrun").exists()
    from PIL import Image

    Image.new("L", (8, 8)).save(tmp_path / "my.png")
    done = dev("run", "predict", "myrun", "my.png", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("my.png: "), done.stderr
    done = dev("run", "circuit", "x*y", "x=2", "y=3", "--svg", "c.svg", cwd=tmp_path)
    assert done.returncode == 0 and (tmp_path / "c.svg").is_file()
    assert "drawing: c.svg" in done.stdout


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("CHAINRULE_FRESH_VENV"),
    reason="set CHAINRULE_FRESH_VENV=1: installs every dependency into a new venv (minutes)",
)
def test_a_fresh_clone_runs_compare_as_the_readme_says(tmp_path):
    """A copy of the tracked files, no venv: ./dev run compare --dataset digits installs what it
    needs and runs, from another folder."""
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    clone = tmp_path / "clone"
    for name in files:
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, clone / name)
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("CHAINRULE_VENV", "VIRTUAL_ENV")}
    env["CHAINRULE_CACHE"] = str(tmp_path / "cache")
    args = ["run", "compare", "--dataset", "digits", "--epochs", "1", "--out", "table"]
    done = subprocess.run(
        [str(clone / "dev"), *args], cwd=work, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (work / "table" / "compare.md").is_file() and "2-layer net" in done.stdout
