"""``python -m gateway.cli``: the ``fng-gateway`` command (how ``serve --workers`` starts its
workers, whatever the command is called where it is installed)."""

import sys

from gateway.command import main

sys.exit(main())
