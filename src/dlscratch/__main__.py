"""``python -m dlscratch``: the dlscratch command (see dlscratch.cli)."""

import sys

from dlscratch.cli import main

sys.exit(main())
