"""``python -m chainrule`` runs the command line."""

import sys

from chainrule.app.cli import main

sys.exit(main())
