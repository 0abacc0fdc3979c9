"""``python -m gateway.cli``: the ``fng-gateway`` command (how ``serve --workers`` starts its
workers, whatever the command is called where it is installed)."""

import contextlib
import sys

from gateway.cli import main

with contextlib.suppress(BrokenPipeError):
    sys.exit(main())
