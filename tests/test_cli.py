"""The command line itself: help with defaults, --version, --debug anywhere, one-line failures."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

import chainrule
from chainrule.app import experiment
from chainrule.app.cli import build_parser, main
from chainrule.app.commands import runs
from chainrule.training.config import TrainConfig


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def entry(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The lines --help prints for one option, joined into one."""
    formatter = parser.formatter_class(prog=parser.prog)
    return " ".join(formatter._format_action(action).split())


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_option_with_a_default_shows_it_in_help(command):
    parser = subcommands()[command]
    for action in parser._actions:
        if action.nargs == 0 or action.default in (None, argparse.SUPPRESS):
            continue
        assert "default" in entry(parser, action).lower(), f"{command}: {entry(parser, action)}"


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_json_is_documented_on_every_command_that_has_it(command):
    parser = subcommands()[command]
    for action in parser._actions:
        if "--json" in action.option_strings:
            assert "JSON" in entry(parser, action), command


def test_train_help_shows_the_defaults_of_the_config():
    parser = subcommands()["train"]
    defaults = TrainConfig()
    shown = {a.dest: entry(parser, a) for a in parser._actions}
    for name in ("lr", "epochs", "batch_size", "val_size", "reg", "optimizer", "seed"):
        assert shown[name].endswith(f"(default: {getattr(defaults, name)})"), shown[name]
    assert shown["hidden"].endswith("(default: 100)")
    assert "(default: runs/DATASET-MODEL-TIME)" in shown["out"]
    assert "(default: all)" in shown["max_train"]


def test_every_command_module_is_a_command():
    """commands/NAME.py is `chainrule NAME`: none left out of COMMANDS, none without a module."""
    import pkgutil

    from chainrule.app import commands

    modules = {m.name for m in pkgutil.iter_modules(commands.__path__)} - {"common"}
    listed = [c.__name__.rpartition(".")[2] for c in commands.COMMANDS]
    assert sorted(listed) == sorted(modules) == sorted(subcommands())


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"chainrule {chainrule.__version__}"


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_before_or_after_the_subcommand_shows_the_traceback(where, tmp_path):
    args = ["evaluate", str(tmp_path / "nothing")]
    args = ["--debug", *args] if where == "before" else [*args, "--debug"]
    done = subprocess.run(
        [sys.executable, "-m", "chainrule", *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1 and "Traceback" in done.stderr


def test_without_debug_a_failure_is_one_line(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("chainrule evaluate: error: ")


def test_running_out_of_memory_is_one_line(monkeypatch, capsys):
    def allocate(*args, **kwargs):
        # what NumPy raises when an allocation fails (its _ArrayMemoryError is a MemoryError)
        raise MemoryError("Unable to allocate 77.3 GiB for an array with shape (300000000, 64)")

    monkeypatch.setattr(experiment, "train_run", allocate)
    assert main(["train", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "chainrule train: error: out of memory (Unable to allocate 77.3 GiB for an array with "
        "shape (300000000, 64))\n"
    )


def test_a_python_warning_becomes_one_line_of_ours(monkeypatch, capsys):
    import warnings

    def warn(args):
        warnings.warn("something to know", RuntimeWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(runs, "run", warn)  # main's build_parser looks the handler up then
    assert main(["runs"]) == 0
    assert capsys.readouterr().err == "chainrule runs: warning: something to know\n"


# --- Ctrl-C while Python is still importing: real signals to the process group --------------

ENTRY_POINTS = {
    "script": [str(Path(sys.executable).with_name("chainrule"))],  # the console script
    "module": [sys.executable, "-m", "chainrule"],
}
# The moments, each named by an import Python reports as it ends: argparse (the first import main
# makes) and NumPy (early in what the parser needs). Not the entry module's own: its report wakes
# this process while the child is between that import and main's first line, a few bytecodes
# that no code of ours can cover (nor can it cover Python's own start, before them).
MOMENTS = ["argparse", "numpy"]


@pytest.mark.parametrize("moment", MOMENTS)
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_ctrl_c_while_importing_is_one_line(entry, moment, tmp_path):
    """SIGINT sent to the process group (as a terminal's Ctrl-C is) while the command is still
    importing: exit status 130 and one line, no traceback. Python reports each import as it
    ends (PYTHONPROFILEIMPORTTIME), which says when to send it."""
    import os
    import signal

    assert Path(ENTRY_POINTS["script"][0]).is_file(), "the console script is not installed"
    process = subprocess.Popen(
        [*ENTRY_POINTS[entry], "runs", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"},
        start_new_session=True,
    )
    before = []
    while (line := process.stderr.readline()).rpartition("|")[2].strip() != moment:
        assert line, f"exited before importing {moment}: {''.join(before)}"
        before.append(line)
    os.killpg(process.pid, signal.SIGINT)
    try:
        rest = process.communicate(timeout=60)[1]
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("still running 60 s after SIGINT")
    ours = [x for x in rest.splitlines() if not x.startswith("import time:")]
    assert process.returncode == 130, "".join(before) + rest
    assert ours == ["chainrule: interrupted"], rest
