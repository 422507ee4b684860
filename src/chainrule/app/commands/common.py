"""What the commands share: the parser (one-line usage errors, every default shown in the help,
a record of the options typed) and the options that several commands take alike.

At its top only the standard library is imported: ``chainrule --help`` builds every command's
parser, and it must start fast (see tests/test_cli_outputs.py). A command imports the libraries
it works with inside its ``run``.
"""

from __future__ import annotations

import argparse
import copy
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from pathlib import Path


# --- the parser ------------------------------------------------------------------------------


def _default_note(action: argparse.Action) -> str | None:
    """'(default: X)' for an option that takes a value and has a default, else None."""
    default = action.default
    takes_value = (action.option_strings and action.nargs != 0) or action.nargs in ("?", "*")
    if not takes_value or default is None or default is argparse.SUPPRESS:
        return None
    shown = " ".join(map(str, default)) if isinstance(default, list | tuple) else str(default)
    return f"(default: {shown})".replace("%", "%%")


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default (unless it already says it), and --json says
    what it prints: one place, for every subcommand."""

    def _format_action(self, action: argparse.Action) -> str:
        text = action.help
        if text is not argparse.SUPPRESS:
            if "--json" in action.option_strings and not text:
                text = "print the result as one JSON object"
            note = _default_note(action)
            if note and "default" not in (text or "").lower():
                text = f"{text} {note}" if text else note
            if text != action.help:
                action = copy.copy(action)
                action.help = text
        return super()._format_action(action)


def _note_given(namespace: argparse.Namespace, dest: str) -> None:
    namespace.given_options = given(namespace) | {dest}


class _Store(argparse._StoreAction):
    """argparse's store, noting that the option was given (``given_options``)."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        super().__call__(parser, namespace, values, option_string)
        _note_given(namespace, self.dest)


class _StoreTrue(argparse._StoreTrueAction):
    """argparse's store_true, noting that the flag was given (``given_options``)."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        super().__call__(parser, namespace, values, option_string)
        _note_given(namespace, self.dest)


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error printed as one line (plus where to find help), defaults in
    every option's help, and a record of the options given (to tell `--epochs 50` from none).

    A usage error exits with status 2 (argparse's SystemExit), as every usage error of ours.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.register("action", None, _Store)
        self.register("action", "store", _Store)
        self.register("action", "store_true", _StoreTrue)

    def error(self, message: str) -> NoReturn:
        """Print the usage error as one line, then where to find help; exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message}\n(see {self.prog} --help)\n")


def given(args: argparse.Namespace) -> set[str]:
    """The destinations of the options typed on the command line (not left at their
    defaults), e.g. ``{"epochs", "quiet"}``."""
    return set(getattr(args, "given_options", set()))


def refuse_hidden_layer_options(args: argparse.Namespace) -> None:
    """--hidden and --activation describe a hidden layer: given with a linear model (which has
    none) they are refused, not ignored. Raises ConfigError (exit status 2) naming the option."""
    from chainrule.engine.errors import ConfigError
    from chainrule.training.config import LINEAR_MODELS

    if args.model not in LINEAR_MODELS:
        return
    for name in ("hidden", "activation"):
        if name in given(args):
            raise ConfigError(
                f"--{name} does not apply to --model {args.model}: a linear classifier "
                "has no hidden layer (use --model two-layer or mlp)"
            )


# --- options several commands take -----------------------------------------------------------


def add_run(p: argparse.ArgumentParser) -> None:
    """RUN: the run folder a command reads (evaluate, show)."""
    p.add_argument("run", help="a run folder written by chainrule train")


def add_json(p: argparse.ArgumentParser, help: str | None = None) -> None:
    """--json: print the result as one JSON object (or what ``help`` says) on stdout."""
    p.add_argument("--json", action="store_true", help=help)


def add_quiet(p: argparse.ArgumentParser, help: str) -> None:
    """--quiet: no progress on stderr (``help`` says which kind the command has)."""
    p.add_argument("--quiet", action="store_true", help=help)


def progress_enabled(args: argparse.Namespace) -> bool:
    """Whether to show progress on stderr: not with --quiet, nor with --json (whose reader
    wants one object, and may read stderr too)."""
    return not (args.quiet or args.json)


def ignore_signals() -> None:
    """Ignore SIGINT and SIGTERM from now on: for a command that is ending because of one, so
    that a second Ctrl-C does not interrupt its way out (stopping its workers, its last line)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def add_named(
    p: argparse.ArgumentParser, name: str, default: str | None = None, help: str | None = None
) -> None:
    """--NAME for a setting that is a name (``--model``, ``--loss``...): its choices are the
    names in the one table, ``training.config.SETTINGS[name].choices``, never typed here."""
    from chainrule.training.config import SETTINGS

    flag = "--" + name.replace("_", "-")
    p.add_argument(flag, default=default, choices=SETTINGS[name].choices, help=help)


def add_small_model_options(p: argparse.ArgumentParser, **hidden: Any) -> None:
    """gradcheck's and graph's options: a small model on a few 8x8 digits, its names and defaults
    from the one table (``training.config.SETTINGS``). hidden: how --hidden is read (one size,
    or several: argparse's add_argument keywords)."""
    from chainrule.training.config import TrainConfig

    defaults = TrainConfig()
    add_named(p, "model", defaults.model)
    p.add_argument("--hidden", type=int, **hidden)
    add_named(p, "activation", defaults.activation)
    add_named(p, "loss")
    p.add_argument("--batch", type=int, default=8, help="number of examples (default 8)")
    p.add_argument("--reg", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)


def add_data_options(
    p: argparse.ArgumentParser, dataset: str, data_dir_help: str, limit_note: str = ""
) -> None:
    """train's and compare's data options: --dataset (default ``dataset``), --data-dir,
    --root, --max-train and --max-test. limit_note: added to the help of the two limits."""
    add_named(p, "dataset", dataset)
    p.add_argument("--data-dir", help=data_dir_help)
    p.add_argument("--root", help="folder or archive of an image-folder dataset")
    for split, images in (("train", "training images"), ("test", "test images")):
        p.add_argument(
            f"--max-{split}", type=int, help=f"use at most this many {images}{limit_note}"
        )


# --- output paths ----------------------------------------------------------------------------


def check_outputs(*named: tuple[str | None, str]) -> None:
    """Check each (path, option) pair whose path was given, before any work: the folder it goes
    in must exist (``runfolders.check_output_parent``). Raises ConfigError (exit status 2)
    naming the first option whose folder is missing."""
    from chainrule.app import runfolders

    for path, option in named:
        if path:
            runfolders.check_output_parent(path, option)


def figure_path(out: str | None, default_name: str) -> Path:
    """Where a figure goes: ``default_name`` in the current folder, or --out as a file (it has
    a suffix) or a folder (it exists or has none; one level is made, at write time). Checked
    before any work: the folder above must exist (ConfigError, exit status 2, if not)."""
    from pathlib import Path

    from chainrule.app import runfolders

    path = Path(out) if out else Path(default_name)
    if path.is_dir() or (out and not path.suffix):
        runfolders.check_output_parent(path, "--out")
        return path / default_name
    return runfolders.check_output_parent(path, "--out")


def write_drawings(drawn: Any, svg: str | None, dot: str | None) -> list[str]:
    """Write a ``lessons.graph.Graph`` as SVG and/or DOT, atomically, to the paths given (their
    folders checked before, by ``check_outputs``); returns the paths written, SVG first.
    Raises OSError when a file cannot be written."""
    from chainrule.data import files
    from chainrule.lessons import graph

    written = []
    for path, render in ((svg, graph.to_svg), (dot, graph.to_dot)):
        if path:
            files.atomic_write_text(path, render(drawn))
            written.append(str(path))
    return written
