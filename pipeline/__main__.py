"""`python -m pipeline ...` is the `stemforge` command."""

import sys

from pipeline.cli import main

sys.exit(main())
