"""`python -m vmm` is the `vmm` command."""

import sys

from vmm.cli import main

sys.exit(main())
