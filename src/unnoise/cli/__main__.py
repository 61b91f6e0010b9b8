"""`python -m unnoise.cli`, as `unnoise`."""

import sys

from . import main

sys.exit(main())
