"""`python -m lymph instance --config FILE`."""

import sys

from lymph.cli import main

sys.exit(main())
