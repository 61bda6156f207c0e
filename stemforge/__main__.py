"""`python -m stemforge ...` is the `stemforge` command."""

import sys

from stemforge.pipeline.cli import main

sys.exit(main())
