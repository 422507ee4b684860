"""``chainrule circuit EXPR NAME=VALUE...``: an expression's forward and backward pass, gate by
gate, as a table (and drawn as SVG or DOT)."""

from __future__ import annotations

import argparse
import json

from chainrule.app.commands import common

HELP = "forward and backward pass of an expression, gate by gate"
DESCRIPTION = (
    "Build EXPR as a circuit of gates, run it forward with the given values, then "
    "backward, and print every gate's value and gradient. Example: "
    'chainrule circuit "(x+y)*z" x=-2 y=5 z=-4'
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``circuit``'s arguments and options."""
    p.add_argument("expression", help="e.g. '(x+y)*z'; + - * / **, exp log relu sigmoid tanh max")
    p.add_argument("values", nargs="*", metavar="NAME=VALUE", help="a value for each variable")
    common.add_json(p, "print one JSON object instead of a table")
    p.add_argument("--svg", metavar="FILE", help="also draw the circuit: values and gradients")
    p.add_argument("--dot", metavar="FILE", help="also write it as DOT text (for graphviz)")
    p.add_argument(
        "--html",
        metavar="FILE",
        help="also write an explorer page: step through the passes gate by gate in a browser",
    )


def run(args: argparse.Namespace) -> int:
    """Run the expression through the gate engine; print every gate's value and gradient (or one
    JSON object) and the drawings written. Returns 0. Raises ExpressionError (exit status 2) for
    a bad expression or value, ConfigError when the folder of --svg, --dot or --html is missing,
    OSError (exit status 1) for a file that cannot be written."""
    from chainrule.lessons import circuit

    common.check_outputs((args.svg, "--svg"), (args.dot, "--dot"), (args.html, "--html"))
    values = circuit.parse_assignments(args.values)
    drawings = []
    if args.html:
        from chainrule.lessons import explorer

        shown = explorer.from_circuit(args.expression, values)
        drawings.append(str(shown.save(args.html)))
        result = shown.circuit
    else:
        result = circuit.run(args.expression, values)
    if args.svg or args.dot:
        from chainrule.lessons import graph

        drawings[:0] = common.write_drawings(graph.from_circuit(result), args.svg, args.dot)
    if args.json:
        print(
            json.dumps({**result.to_json(), "drawings": drawings} if drawings else result.to_json())
        )
    else:
        print(result.table())
        for path in drawings:
            print(f"drawing: {path}")
    return 0
