"""``python -m fastact``: the same command line as the ``fastact`` script."""

import sys

from .cli import main

sys.exit(main())
