"""The command line: ``chainrule COMMAND ...`` (also ``python -m chainrule``).

The entry point and its error handling; each command's parser and handler are in ``commands/``.
Strings from the command line become library objects there and nowhere else. Errors we raise on
purpose print as one line; exit status 2 for a usage error (a bad option, name or expression),
1 for a failure at run time (missing or corrupt data, divergence, no memory, a folder that
cannot be written), 130 after Ctrl-C (128 + the signal's number where a command stops on
SIGTERM too). ``--debug``, before or after the command, shows tracebacks instead.
"""

# Only sys at the top: everything else, chainrule's own modules first, is imported inside main's
# try, so that a Ctrl-C while Python is still importing is a Ctrl-C like any other (one line,
# exit status 130) rather than a traceback from inside an import. typing is one of those imports:
# TYPE_CHECKING is spelled out below, as type checkers allow.
from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

DEBUG_HELP = "show full tracebacks on errors"
DESCRIPTION = "Backpropagation from first principles: gates, gradients and classifiers."


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand (``commands.COMMANDS``, in that order). It
    imports none of matplotlib, scikit-learn, scipy, PIL, tqdm, scikit-image or torch."""
    import argparse

    from chainrule import __version__
    from chainrule.app.commands import COMMANDS, common

    parser = common.Parser(prog="chainrule", description=DESCRIPTION)
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        name = command.__name__.rpartition(".")[2]  # commands/train.py is `chainrule train`
        p = sub.add_parser(name, help=command.HELP, description=command.DESCRIPTION)
        command.add_arguments(p)
        # --debug after the command too (SUPPRESS: not to undo a --debug before it)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
        p.set_defaults(func=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chainrule`` script and of ``python -m chainrule``.

    argv: the arguments after the program's name (default: ``sys.argv[1:]``). Returns the exit
    status (0, 1, 2 or 128 + a signal's number); argparse's SystemExit (--help, --version, a
    usage error: status 2) passes through.
    """
    command = ""
    try:
        args = build_parser().parse_args(argv)
        command = args.command
        return _run(args)
    except KeyboardInterrupt:  # Ctrl-C, from the first import on
        print(f"chainrule{' ' + command if command else ''}: interrupted", file=sys.stderr)
        return 130  # the shell's convention: 128 + SIGINT


def _run(args: argparse.Namespace) -> int:
    """The command's ``run``, with the errors we expect as one line (tracebacks with --debug)
    and Python warnings as one line each."""
    import warnings

    from chainrule.engine.errors import ChainruleError, ConfigError, ExpressionError

    prefix = f"chainrule {args.command}"
    try:
        with warnings.catch_warnings():  # restores how warnings are shown afterwards
            if not args.debug:
                warnings.showwarning = _warning_line(prefix)
            return args.func(args)
    except ChainruleError as e:
        if args.debug:
            raise
        print(f"{prefix}: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, ConfigError | ExpressionError) else 1
    except MemoryError as e:  # NumPy's "Unable to allocate 77 GiB for an array with shape..."
        if args.debug:
            raise
        print(f"{prefix}: error: out of memory ({e})", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (`chainrule ... | head`): nothing to say
        # Python flushes stdout again at exit: point it at /dev/null so that fails silently too
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # the shell's convention: 128 + SIGPIPE
    except OSError as e:  # a folder that cannot be written, a full disk...
        if args.debug:
            raise
        where = f" ({e.filename})" if e.filename else ""
        print(f"{prefix}: error: {e.strerror or e}{where}", file=sys.stderr)
        return 1


def _warning_line(prefix: str) -> Callable[..., None]:
    """A ``warnings.showwarning`` that shows a Python warning from anywhere (a library's,
    NumPy's) as one line of ours: ``chainrule COMMAND: warning: MESSAGE``."""

    def show(message: Warning | str, *where: object) -> None:
        print(f"{prefix}: warning: {message}", file=sys.stderr)

    return show


if __name__ == "__main__":
    sys.exit(main())
