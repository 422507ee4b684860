"""One module per command, named as the command: its one-line ``HELP`` and ``DESCRIPTION``,
``add_arguments(parser)`` and its handler ``run(args)``, which returns the exit status (``cli``
makes the subcommand's parser from these). ``COMMANDS`` is their order in ``chainrule --help``;
``common`` holds the parser class and the options several commands share.

A command module imports at its top only what building its parser needs (the standard library,
the tables of names): ``chainrule --help`` builds them all. The libraries a command works
with (matplotlib, scikit-learn, Pillow, tqdm) are imported inside its ``run``.
"""

from chainrule.app.commands import (
    circuit,
    collapse,
    compare,
    evaluate,
    gradcheck,
    graph,
    predict,
    runs,
    show,
    sweep,
    train,
)

COMMANDS = (
    circuit, train, evaluate, runs, predict, gradcheck, collapse, show, compare, graph, sweep
)  # fmt: skip

__all__ = ["COMMANDS"]
