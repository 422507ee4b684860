"""``python -m chainrule`` runs the command line (``app.cli.main``: Ctrl-C from the first import
on is one line and exit status 130 there)."""

import sys

from chainrule.app.cli import main

sys.exit(main())
