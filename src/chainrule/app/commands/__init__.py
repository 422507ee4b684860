"""One module per command: its parser (``add_parser(sub)``) and its handler (``run(args)``,
returning the exit status). ``COMMANDS`` is their order in ``chainrule --help``; ``common``
holds the parser and the options they share.

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
    train,
)

COMMANDS = (circuit, train, evaluate, runs, predict, gradcheck, collapse, show, compare, graph)

__all__ = ["COMMANDS"]
