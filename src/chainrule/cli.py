"""The command line: ``chainrule SUBCOMMAND ...`` (also ``python -m chainrule``).

Strings from the command line become library objects here and nowhere else. Errors we raise on
purpose print as one line; exit status 2 for a usage error (a bad option, name or expression),
1 for a failure at run time (missing or corrupt data, divergence). ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from chainrule.errors import ChainruleError, ConfigError, ExpressionError

USAGE_ERRORS = (ConfigError, ExpressionError)


def cmd_circuit(args: argparse.Namespace) -> int:
    """Run an expression through the gate engine and print the forward and backward passes."""
    from chainrule import circuit

    values = circuit.parse_assignments(args.values)
    result = circuit.run(args.expression, values)
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(result.table())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="chainrule",
        description="Backpropagation from first principles: gates, gradients and classifiers.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "circuit",
        help="forward and backward pass of an expression, gate by gate",
        description="Build EXPR as a circuit of gates, run it forward with the given values, then "
        "backward, and print every gate's value and gradient. Example: "
        'chainrule circuit "(x+y)*z" x=-2 y=5 z=-4',
    )
    p.add_argument("expression", help="e.g. '(x+y)*z'; + - * / **, exp log relu sigmoid tanh max")
    p.add_argument("values", nargs="*", metavar="NAME=VALUE", help="a value for each variable")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=cmd_circuit)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chainrule`` script. Returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ChainruleError as e:
        if args.debug:
            raise
        print(f"chainrule {args.command}: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, USAGE_ERRORS) else 1
    except KeyboardInterrupt:
        print(f"chainrule {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
