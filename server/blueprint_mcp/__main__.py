"""`python -m blueprint_mcp`: the same command line as `blueprint-mcp`."""

import sys

from .cli import main

sys.exit(main())
